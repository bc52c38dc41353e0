"""The eval process: one run of one experiment, and nothing else.

A worker starts `python -m registry.evals.child SPEC FD` for each run, so that torch and the
eval's memory live in a process of their own, which the worker can stop, and whose death (out of
memory, a signal) the worker sees as an exit status instead of dying with it. The process:

- lowers its priority (`nice`, and Linux's idle scheduling class unless disabled), so that an
  API or ingest sharing the host keeps its speed;
- reports on file descriptor FD, one JSON object a line: `{"t": "progress", "stage", "done",
  "total"}` and `{"t": "log", "msg"}`; its stdout and stderr go to the run's log file;
- reads commands on stdin: `cancel` makes the next progress report raise `Cancelled`, and end of
  file means the worker is gone, so it exits at once rather than run on for nobody;
- checks a base model's files against their registered digest before using them, so an eval of
  `acme/base@1` is an eval of exactly those bytes, and refuses files outside the worker's model
  directory or behind a symlink (the worker finds them by digest, never from a name);
- writes `error.json` in the run directory when it fails, and exits with a status that says how
  (`EXIT_*`).

It imports nothing from the registry but this module; `evals` is imported here, never in the API.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, TextIO

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_EVAL_ERROR = 2
EXIT_CANCELLED = 3
EXIT_ORPHANED = 4
ERROR_FILE = "error.json"
LOG_FILE = "eval.log"


class Cancelled(BaseException):
    """Raised inside the eval when its run was cancelled. A BaseException, so that an
    experiment's own `except Exception` cannot swallow it."""


class _Channel:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.cancelled = threading.Event()

    def send(self, **message: Any) -> None:
        line = json.dumps(message, default=str) + "\n"
        with self._lock:
            self._out.write(line)
            self._out.flush()

    def listen(self) -> None:
        """Read commands from the worker until it closes our stdin."""
        for line in sys.stdin:
            if line.strip() == "cancel":
                self.cancelled.set()
        os._exit(EXIT_ORPHANED)  # the worker is gone: nobody would record what we do


def _verify(path: Path, digest: str, label: str, channel: _Channel, model_dir: str) -> None:
    """Check that the files at `path` are the registered artifact, inside the model directory.

    The worker found `path` by digest inside its configured model directory; this process checks
    both again on what it is about to load (the files may have changed since), and refuses a
    path that is a symlink or resolves outside the directory, whoever wrote the spec.
    """
    from evals.errors import ModelLoadError
    from lineage.digests import manifest

    root = os.path.realpath(model_dir) if model_dir else ""
    real = os.path.realpath(path)
    if not root or real == root or os.path.commonpath([root, real]) != root:
        raise ModelLoadError(label, "its files are not inside the worker's model directory")
    if path.is_symlink() or not path.exists():
        raise ModelLoadError(label, "no files for it in the worker's model directory")
    stage = f"verify {label} files"
    total = path.stat().st_size if path.is_file() else 0
    if path.is_dir():
        total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        channel.send(t="progress", stage=stage, done=done, total=total)
        if channel.cancelled.is_set():
            raise Cancelled

    channel.send(t="progress", stage=stage, done=0, total=total)
    got = manifest(path, progress=step).digest
    if got != digest:
        raise ModelLoadError(
            label, f"its files have digest {got}, but {label} is registered as {digest}"
        )


def run(spec: dict[str, Any], channel: _Channel) -> int:
    """Run the eval described by `spec`; returns the exit status."""
    out_dir = Path(spec["out_dir"])

    def progress(stage: str, done: int, total: int) -> None:
        channel.send(t="progress", stage=stage, done=done, total=total)
        if channel.cancelled.is_set():
            raise Cancelled

    try:
        import evals

        overrides = dict(spec["overrides"])
        for key in ("base", "cross_base"):
            base = spec.get(key)
            if base:
                _verify(
                    Path(base["path"]),
                    base["digest"],
                    base["ref"],
                    channel,
                    str(spec.get("model_dir") or ""),
                )
                overrides["model" if key == "base" else "cross_model"] = base["path"]
        evals.run_experiment(
            spec["experiment"],
            spec["preset"],
            overrides,
            out_dir,
            progress=progress,
            log=lambda msg: channel.send(t="log", msg=msg),
        )
    except Cancelled:
        return EXIT_CANCELLED
    except Exception as exc:
        from evals.errors import EvalError

        kind = "eval_error" if isinstance(exc, EvalError) else "crash"
        error = {"kind": kind, "message": f"{type(exc).__name__}: {exc}"}
        error["traceback"] = traceback.format_exc()
        traceback.print_exc()
        with contextlib.suppress(OSError):
            (out_dir / ERROR_FILE).write_text(json.dumps(error))
        return EXIT_EVAL_ERROR if kind == "eval_error" else EXIT_CRASHED
    return EXIT_OK


def _idle_priority() -> None:
    """Yield the CPU to everything else on the host (Linux; elsewhere `nice` has to do).

    The idle scheduling class yields to every other process of the same scheduling group. With
    autogroup (most Linux kernels), groups are sessions and share the CPU equally whatever their
    members' niceness, so the worker starts this process in a session of its own, and here the
    session's group is given the lowest weight: an API, or a PostgreSQL server, in other
    sessions keeps its share.
    """
    if hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as fh:
        fh.write("19")


def main(argv: list[str]) -> int:
    """`python -m registry.evals.child SPEC_FILE FD`."""
    spec = json.loads(Path(argv[0]).read_text())
    # Ctrl-C at a terminal reaches the whole process group; the worker decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(int(spec.get("nice", 0)))
    if spec.get("idle_priority"):
        _idle_priority()
    channel = _Channel(os.fdopen(int(argv[1]), "w", buffering=1))
    threading.Thread(target=channel.listen, name="worker-commands", daemon=True).start()
    return run(spec, channel)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
