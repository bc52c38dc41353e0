"""`studbook eval run | submit | status | list | cancel | plot | register`: trait-transfer evals.

`eval run` runs an experiment here, in the foreground; it imports `evals` (and torch) only when
it runs, so the rest of the command line works on an install without the `[evals]` extra.
The other commands talk to the server's eval queue. `--register` (or `eval register RUN_DIR`)
posts a local run's lineage and signed result with the caller's key.

Exit codes: a run that failed or was cancelled exits 2 (the evidence is not there); everything
else follows the common table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .. import output
from ..client import ApiError
from ..context import Ctx
from ..output import ExitCode, fail, json_option
from .artifacts import key_file_option, registration_line

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
FINAL = {"succeeded", "failed", "cancelled"}
PRESET_NAMES = ["smoke", "default", "cpu", "paper"]


def _parse_settings(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a bare word is a string setting
    return out


def _summary(run: dict[str, Any]) -> None:
    what = f"{run['experiment']} ({run['preset']})"
    if run.get("base"):
        what += f" on {run['base']['ref']}"
    output.echo(f"eval run {run['id']}: {what}  status: {run['status'].upper()}")
    if run.get("worker"):
        output.echo(f"  worker: {run['worker']}")
    timings = run.get("timings") or {}
    if "run_s" in timings:
        output.echo(f"  queued {timings['queued_s']:.1f} s, ran {timings['run_s']:.1f} s")
    if run.get("error"):
        output.echo(f"  error: {run['error']}")
    for name, est in (run.get("metrics") or {}).items():
        lo, hi = est["ci95"]
        ci = "" if lo is None else f"  (95% CI {lo:.3g} .. {hi:.3g})"
        output.echo(f"  {name:32s} {est['mean']:.3g}{ci}")
    if run.get("verdict"):
        output.echo(f"  verdict: {run['verdict']}")
    if run.get("result_attestation_id"):
        output.echo(
            f"  signed result: attestation {run['result_attestation_id']} (cite it as "
            f"--evidence attestation:{run['result_attestation_id']})"
        )


def _watch(ctx: Ctx, run_id: int, interval: float) -> dict[str, Any]:
    """Follow a run with one progress bar per stage (stderr) until it ends."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    bars: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        status = progress.add_task(f"run {run_id}: queued", total=None)
        while True:
            run = ctx.call(ctx.client.get, f"/v1/evals/{run_id}")
            progress.update(status, description=f"run {run_id}: {run['status']}")
            for stage in run["progress"]:
                if stage["stage"] not in bars:
                    bars[stage["stage"]] = progress.add_task(stage["stage"], total=stage["total"])
                progress.update(
                    bars[stage["stage"]], completed=stage["done"], total=stage["total"] or None
                )
            if run["status"] in FINAL:
                progress.update(status, total=1, completed=1)
                return dict(run)
            time.sleep(interval)


@click.group("eval")
def eval_cli() -> None:
    """Trait-transfer ("subliminal learning") evals, here or on the server's workers."""


# ----------------------------------------------------------------------------- local runs


def _print_result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: float, percent: bool) -> str:
        return f"{value:.1%}" if percent else f"{value:.4g}"

    console = Console()
    table = Table(
        title=f"{result['experiment']} ({result['preset']}, seeds: {len(result['seeds'])})"
    )
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    for name, est in result["metrics"].items():
        percent = "likelihood" not in name
        lo, hi = est["ci95"]
        ci = "n/a" if lo is None else f"{fmt(lo, percent)} .. {fmt(hi, percent)}"
        table.add_row(name, fmt(est["mean"], percent), ci)
    console.print(table)
    console.print(f"[bold]verdict:[/bold] {result['verdict']}")
    for line in result.get("notes", []):
        console.print(f"  - {line}")
    console.print(f"run directory: {result['out_dir']}")


@eval_cli.command("run")
@click.argument("experiment")
@click.option(
    "--preset",
    default="default",
    show_default=True,
    type=click.Choice(PRESET_NAMES),
    help="Size of the run: smoke (seconds), default, cpu (larger; lm-soft: hours), paper (GPU).",
)
@click.option("--animal", default=None, help="Target animal of the teacher (numbers, toy-lm).")
@click.option(
    "--model", default=None, help="Base model: a safetensors directory or a .gguf file (numbers)."
)
@click.option("--cross-model", default=None, help="Second base for a cross-base student (numbers).")
@click.option("--seeds", type=click.IntRange(1), default=None, help="Number of seeds.")
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Run directory (created); default runs/<experiment>-<time>.",
)
@click.option(
    "--mnist",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Directory of MNIST IDX files to use instead of the digits data (digits).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=JSON",
    help="Any other setting, e.g. --set generations=500 (value parsed as JSON).",
)
@click.option(
    "--register",
    is_flag=True,
    help="Afterwards, sign and post the run's lineage and result to the registry.",
)
@key_file_option
@json_option
@click.pass_obj
def run_cmd(
    ctx: Ctx,
    experiment: str,
    preset: str,
    animal: str | None,
    model: str | None,
    cross_model: str | None,
    seeds: int | None,
    out_dir: str | None,
    mnist: str | None,
    settings: tuple[str, ...],
    register: bool,
    key_file: Path | None,
) -> None:
    """Run EXPERIMENT (digits, numbers or toy-lm) here and write its run directory."""
    try:
        from evals.errors import EvalError
        from evals.presets import PRESETS
        from evals.runner import default_out_dir, run_experiment
    except ImportError as exc:
        fail(f"local evals need the evals extra (pip install -e '.[evals]'): {exc}", ExitCode.USAGE)
    if experiment not in PRESETS:
        raise click.BadParameter(
            f"{experiment!r} is not one of: {', '.join(sorted(PRESETS))}", param_hint="EXPERIMENT"
        )
    if register:
        ctx.signer(key_file)  # fail before a long run, not after it
    overrides = _parse_settings(settings)
    named = {
        "animal": animal,
        "model": model,
        "cross_model": cross_model,
        "seeds": seeds,
        "mnist": mnist,
    }
    overrides.update({k: v for k, v in named.items() if v is not None})
    if register and out_dir is None:
        out_dir = str(default_out_dir(experiment))
    try:
        result = run_experiment(experiment, preset, overrides, out_dir, bars=True, log=output.note)
    except EvalError as exc:
        fail(str(exc), ExitCode.USAGE)
    except ImportError as exc:  # torch and friends come with the extra, not the base install
        fail(f"local evals need the evals extra (pip install -e '.[evals]'): {exc}", ExitCode.USAGE)
    output.emit(result, _print_result)
    if register:
        register_run_dir(ctx, Path(str(result.get("out_dir") or out_dir)), key_file, None)


# ----------------------------------------------------------------------------- the server's queue


@eval_cli.command("submit")
@click.argument("experiment")
@click.option("--preset", default="default", show_default=True)
@click.option("--base", default=None, help="numbers: registered base model (name@version).")
@click.option("--cross-base", default=None, help="numbers: a second base (cross-base student).")
@click.option("--trait", default=None, help="numbers, toy-lm: the teacher's trait (animal).")
@click.option("--seeds", type=click.IntRange(1), default=None, help="Number of seeds.")
@click.option("--set", "settings", multiple=True, metavar="KEY=JSON", help="Any other setting.")
@click.option("--watch", is_flag=True, help="Follow the run with progress bars until it ends.")
@json_option
@click.pass_obj
def submit_cmd(
    ctx: Ctx,
    experiment: str,
    preset: str,
    base: str | None,
    cross_base: str | None,
    trait: str | None,
    seeds: int | None,
    settings: tuple[str, ...],
    watch: bool,
) -> None:
    """Queue an EXPERIMENT (digits, toy-lm, numbers) on the server's workers."""
    overrides = _parse_settings(settings)
    if seeds is not None:
        overrides["seeds"] = seeds
    body = {
        "experiment": experiment,
        "preset": preset,
        "overrides": overrides,
        "base": base,
        "cross_base": cross_base,
        "trait": trait,
    }
    run = ctx.call(ctx.client.post, "/v1/evals", body)
    if watch:
        run = _watch(ctx, run["id"], 1.0)
    output.emit(run, _summary)
    if watch and run["status"] != "succeeded":
        sys.exit(int(ExitCode.BLOCK))


@eval_cli.command("status")
@click.argument("run_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--watch", is_flag=True, help="Follow the run with progress bars until it ends.")
@click.option("--interval", type=click.FloatRange(0.1), default=1.0, show_default=True)
@json_option
@click.pass_obj
def status_cmd(ctx: Ctx, run_id: int, watch: bool, interval: float) -> None:
    """Show a run: status, progress, timings and result. Exit 2 if it failed or was cancelled."""
    run = (
        _watch(ctx, run_id, interval) if watch else ctx.call(ctx.client.get, f"/v1/evals/{run_id}")
    )

    def human(r: dict[str, Any]) -> None:
        if not watch:
            for stage in r["progress"]:
                output.echo(f"  {stage['stage']}: {stage['done']}/{stage['total']}")
        _summary(r)

    output.emit(run, human)
    if run["status"] in ("failed", "cancelled"):
        sys.exit(int(ExitCode.BLOCK))


@eval_cli.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@json_option
@click.pass_obj
def list_cmd(ctx: Ctx, status: str | None, limit: int) -> None:
    """List runs, newest first."""

    def human(d: dict[str, Any]) -> None:
        rows = [
            (
                str(r["id"]),
                r["status"],
                r["experiment"],
                r["preset"],
                r["requested_by"],
                str(r["created_at"])[:19],
            )
            for r in d["data"]
        ]
        output.echo(
            output.table(("id", "status", "experiment", "preset", "by", "created"), rows, widths={})
        )
        output.echo(f"{d['count']} runs")

    output.emit(ctx.call(ctx.client.get, "/v1/evals", status=status, limit=limit), human)


@eval_cli.command("cancel")
@click.argument("run_id", type=click.IntRange(1, 2**63 - 1))
@json_option
@click.pass_obj
def cancel_cmd(ctx: Ctx, run_id: int) -> None:
    """Cancel a queued or running run."""
    run = ctx.call(ctx.client.delete, f"/v1/evals/{run_id}")
    state = "stop requested" if run["status"] == "running" else run["status"]
    output.emit(run, lambda _r: output.echo(f"eval run {run_id}: {state}"))


@eval_cli.command("plot")
@click.argument("run_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_obj
def plot_cmd(ctx: Ctx, run_id: int, out: Path) -> None:
    """Save a finished run's figure (PNG)."""
    out.write_bytes(ctx.call(ctx.client.get, f"/v1/evals/{run_id}/plot"))
    output.echo(f"wrote {out}")


def register_run_dir(ctx: Ctx, run_dir: Path, key_file: Path | None, version: str | None) -> None:
    """Sign and post a local run's lineage and result with the caller's key."""
    from lineage.evalresult import eval_result_statement, run_registrations
    from lineage.statements import registration_statement, sign_statement

    signer = ctx.signer(key_file)
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        fail(
            f"{run_dir} holds no result.json (run `studbook eval run ... --out DIR` first)",
            ExitCode.USAGE,
        )
    result = json.loads(result_file.read_text())
    known: dict[str, tuple[str, str]] = {}
    for art in (result.get("lineage") or {}).get("artifacts", []):
        try:
            found = ctx.client.artifact(f"sha256:{art['digest']}")
        except ApiError as exc:
            if exc.status != 404:
                ctx.call(_raise, exc)
            continue
        known[art["digest"]] = (found["name"], found["version"])
    run_id = f"local:{run_dir.resolve().name}"
    stamp = str(result.get("started_at", ""))[:19].replace("-", "").replace(":", "")
    version = version or f"local-{stamp or run_dir.resolve().name}"
    for reg in run_registrations(result, run_id=run_id, version=version, known=known):
        envelope = sign_statement(registration_statement(reg), signer)
        answer = ctx.call(ctx.client.post, "/v1/attestations", envelope.to_json())
        output.echo(registration_line(ctx, answer, reg.artifact.label))
    files = {}
    plot = (result.get("files") or {}).get("plot")
    if plot and (run_dir / plot).is_file():
        from lineage.digests import file_sha256

        files["plot"] = {"path": plot, "sha256": file_sha256(run_dir / plot)}
    statement = eval_result_statement(result, run_id, files=files)
    answer = ctx.call(
        ctx.client.post, "/v1/attestations", sign_statement(statement, signer).to_json()
    )
    att = answer["attestation_id"]
    output.emit(
        answer,
        lambda _a: output.echo(
            f"eval result: attestation {att} (cite it as --evidence attestation:{att})"
        ),
    )


def _raise(exc: Exception) -> None:
    raise exc


@eval_cli.command("register")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@key_file_option
@click.option("--version", default=None, help="Version of new artifacts (default: from the run).")
@json_option
@click.pass_obj
def register_cmd(ctx: Ctx, run_dir: Path, key_file: Path | None, version: str | None) -> None:
    """Post a local run's lineage and signed result (needs the registrar role)."""
    register_run_dir(ctx, run_dir, key_file, version)


COMMANDS = [eval_cli]
