"""`studbook eval submit|status|list|cancel|plot|register` and `studbook worker`.

The `eval` group itself belongs to `evals.cli` (its `run` command runs an experiment here, in the
foreground); `attach` adds the service's commands to it and a `--register` flag to `run`, which
posts the local run's lineage and result, signed with your key, once the run is done. The same
is available as `studbook eval register RUN_DIR` for a run made earlier.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .schemas import EvalStatus


def _cli() -> Any:
    from .. import cli

    return cli


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
    click.echo(f"eval run {run['id']}: {what}  status: {run['status'].upper()}")
    if run.get("worker"):
        click.echo(f"  worker: {run['worker']}")
    timings = run.get("timings") or {}
    if "run_s" in timings:
        click.echo(f"  queued {timings['queued_s']:.1f} s, ran {timings['run_s']:.1f} s")
    if run.get("error"):
        click.echo(f"  error: {run['error']}")
    for name, est in (run.get("metrics") or {}).items():
        lo, hi = est["ci95"]
        ci = "" if lo is None else f"  (95% CI {lo:.3g} .. {hi:.3g})"
        click.echo(f"  {name:32s} {est['mean']:.3g}{ci}")
    if run.get("verdict"):
        click.echo(f"  verdict: {run['verdict']}")
    if run.get("result_attestation_id"):
        click.echo(
            f"  signed result: attestation {run['result_attestation_id']} (cite it as "
            f"--evidence attestation:{run['result_attestation_id']})"
        )


def _watch(client: Any, run_id: int, interval: float) -> dict[str, Any]:
    """Follow a run with one progress bar per stage until it ends."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    cli = _cli()
    bars: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), transient=False
    ) as progress:
        status = progress.add_task(f"run {run_id}: queued", total=None)
        while True:
            run = cli._call(client.get, f"/v1/evals/{run_id}")
            progress.update(status, description=f"run {run_id}: {run['status']}")
            for stage in run["progress"]:
                if stage["stage"] not in bars:
                    bars[stage["stage"]] = progress.add_task(stage["stage"], total=stage["total"])
                progress.update(
                    bars[stage["stage"]], completed=stage["done"], total=stage["total"] or None
                )
            if EvalStatus(run["status"]).final:
                progress.update(status, total=1, completed=1)
                return dict(run)
            time.sleep(interval)


@click.command("submit")
@click.argument("experiment")
@click.option("--preset", default="default", show_default=True)
@click.option("--base", default=None, help="numbers: registered base model (name@version).")
@click.option("--cross-base", default=None, help="numbers: a second base (cross-base student).")
@click.option("--trait", default=None, help="numbers, toy-lm: the teacher's trait (animal).")
@click.option("--seeds", type=int, default=None, help="Number of seeds.")
@click.option("--set", "settings", multiple=True, metavar="KEY=JSON", help="Any other setting.")
@click.option("--watch", is_flag=True, help="Follow the run with progress bars until it ends.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def submit_cmd(
    obj: Any,
    experiment: str,
    preset: str,
    base: str | None,
    cross_base: str | None,
    trait: str | None,
    seeds: int | None,
    settings: tuple[str, ...],
    watch: bool,
    as_json: bool,
) -> None:
    """Queue an EXPERIMENT (digits, toy-lm, numbers) on the server's workers."""
    cli = _cli()
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
    run = cli._call(obj.client.post, "/v1/evals", body)
    if watch:
        run = _watch(obj.client, run["id"], 1.0)
    if as_json:
        cli._print_json(run)
    else:
        _summary(run)
    if watch and run["status"] != EvalStatus.SUCCEEDED.value:
        sys.exit(1)


@click.command("status")
@click.argument("run_id", type=int)
@click.option("--watch", is_flag=True, help="Follow the run with progress bars until it ends.")
@click.option("--interval", type=float, default=1.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status_cmd(obj: Any, run_id: int, watch: bool, interval: float, as_json: bool) -> None:
    """Show a run: status, progress, timings and result. Exit 1 if it failed."""
    cli = _cli()
    run = (
        _watch(obj.client, run_id, interval)
        if watch
        else cli._call(obj.client.get, f"/v1/evals/{run_id}")
    )
    if as_json:
        cli._print_json(run)
    else:
        if not watch:
            for stage in run["progress"]:
                click.echo(f"  {stage['stage']}: {stage['done']}/{stage['total']}")
        _summary(run)
    if run["status"] in (EvalStatus.FAILED.value, EvalStatus.CANCELLED.value):
        sys.exit(1)


@click.command("list")
@click.option("--status", type=click.Choice([s.value for s in EvalStatus]), default=None)
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(obj: Any, status: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    cli = _cli()
    data = cli._call(obj.client.get, "/v1/evals", status=status, limit=limit)
    if as_json:
        cli._print_json(data)
        return
    click.echo(f"{'id':>5}  {'status':<10} {'experiment':<10} {'preset':<8} {'by':<14} created")
    for r in data["data"]:
        click.echo(
            f"{r['id']:>5}  {r['status']:<10} {r['experiment']:<10} {r['preset']:<8} "
            f"{r['requested_by'][:14]:<14} {r['created_at']}"
        )
    click.echo(f"{data['count']} runs")


@click.command("cancel")
@click.argument("run_id", type=int)
@click.pass_obj
def cancel_cmd(obj: Any, run_id: int) -> None:
    """Cancel a queued or running run."""
    cli = _cli()
    run = cli._call(obj.client.request, "DELETE", f"/v1/evals/{run_id}")
    note = "stop requested" if run["status"] == EvalStatus.RUNNING.value else run["status"]
    click.echo(f"eval run {run_id}: {note}")


@click.command("plot")
@click.argument("run_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_obj
def plot_cmd(obj: Any, run_id: int, out: Path) -> None:
    """Save a finished run's figure (PNG)."""
    cli = _cli()
    out.write_bytes(cli._call(obj.client.get, f"/v1/evals/{run_id}/plot"))
    click.echo(f"wrote {out}")


def register_run_dir(obj: Any, run_dir: Path, key_file: Path | None, version: str | None) -> None:
    """Sign and post a local run's lineage and result with the caller's key."""
    from lineage.evalresult import eval_result_statement, run_registrations
    from lineage.statements import registration_statement, sign_statement

    from ..client import ApiError

    cli = _cli()
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        cli._fail(f"{run_dir} holds no result.json (run `studbook eval run ... --out DIR` first)")
    result = json.loads(result_file.read_text())
    signer = cli._load_signer(key_file)
    known: dict[str, tuple[str, str]] = {}
    for art in (result.get("lineage") or {}).get("artifacts", []):
        try:
            found = obj.client.artifact(f"sha256:{art['digest']}")
        except ApiError as exc:
            if exc.status != 404:
                cli._fail(str(exc))
            continue
        known[art["digest"]] = (found["name"], found["version"])
    run_id = f"local:{run_dir.resolve().name}"
    stamp = str(result.get("started_at", ""))[:19].replace("-", "").replace(":", "")
    version = version or f"local-{stamp or run_dir.resolve().name}"
    for reg in run_registrations(result, run_id=run_id, version=version, known=known):
        envelope = sign_statement(registration_statement(reg), signer)
        cli._call(obj.client.post, "/v1/attestations", envelope.to_json())
        click.echo(f"registered {reg.artifact.label}")
    files = {}
    plot = (result.get("files") or {}).get("plot")
    if plot and (run_dir / plot).is_file():
        from lineage.digests import file_sha256

        files["plot"] = {"path": plot, "sha256": file_sha256(run_dir / plot)}
    statement = eval_result_statement(result, run_id, files=files)
    answer = cli._call(
        obj.client.post, "/v1/attestations", sign_statement(statement, signer).to_json()
    )
    att = answer["attestation_id"]
    click.echo(f"eval result: attestation {att} (cite it as --evidence attestation:{att})")


@click.command("register")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key-file", type=click.Path(path_type=Path), envvar="STUDBOOK_KEY_FILE")
@click.option("--version", default=None, help="Version of new artifacts (default: from the run).")
@click.pass_obj
def register_cmd(obj: Any, run_dir: Path, key_file: Path | None, version: str | None) -> None:
    """Post a local run's lineage and signed result (needs the registrar role)."""
    register_run_dir(obj, run_dir, key_file, version)


@click.command("worker")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Runs at a time.")
@click.option("--once", is_flag=True, help="Stop when the queue is empty.")
@click.option("--parent-pid", type=int, default=None, hidden=True)
def worker_cmd(concurrency: int, once: bool, parent_pid: int | None) -> None:
    """Run queued evals (procrastinate on PostgreSQL, the runs table on SQLite)."""
    import logging

    from ..settings import get_settings
    from .worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(get_settings(), concurrency=concurrency, parent_pid=parent_pid, once=once)


def _add_register_to_run(group: click.Group) -> None:
    """`studbook eval run ... --register`: after the run, post it as `eval register` would."""
    run = group.commands.get("run")
    if run is None or any(p.name == "register" for p in run.params) or run.callback is None:
        return
    run.params.append(
        click.Option(
            ["--register"],
            is_flag=True,
            help="Afterwards, sign and post the run's lineage and result to the registry.",
        )
    )
    run_callback = run.callback

    def callback(register: bool, **kwargs: Any) -> Any:
        if register and kwargs.get("out_dir") is None:
            from evals.runner import default_out_dir

            kwargs["out_dir"] = str(default_out_dir(kwargs.get("experiment", "run")))
        answer = run_callback(**kwargs)
        if register:
            obj = click.get_current_context().find_root().obj  # the CLI's client context
            register_run_dir(obj, Path(kwargs["out_dir"]), None, None)
        return answer

    run.callback = callback


def attach(cli_group: click.Group) -> None:
    """Add the eval service's commands to `studbook` (and to its `eval` group)."""
    group = cli_group.commands.get("eval")
    if not isinstance(group, click.Group):
        group = click.Group("eval", help="Trait-transfer evals.")
        cli_group.add_command(group)
    for command in (submit_cmd, status_cmd, list_cmd, cancel_cmd, plot_cmd, register_cmd):
        group.add_command(command)
    _add_register_to_run(group)
    cli_group.add_command(worker_cmd)
