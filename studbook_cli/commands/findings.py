"""`studbook findings [--status open]`, `findings confirm ID`, `findings dismiss ID --reason`.

Findings are raised by the registry from the weights (a declared parent they contradict, a shared
base nobody declared), each signed by the registry and logged. A reviewer decides on one with a
statement signed locally with their own key, naming the finding by the sha256 of the registry's
statement: confirming an undeclared shared base adds the `initialized_from` edge, so the risk rule
sees it; a dismissal says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lineage.findings import FindingStatus, confirmation_statement, dismissal_statement
from lineage.statements import sign_statement

from .. import output
from ..context import Ctx
from ..output import json_option, short_digest
from .artifacts import key_file_option

_KIND_TEXT = {
    "declared_parent_contradicted": "declared parent contradicted by the weights",
    "undeclared_shared_base": "undeclared shared base",
}


def _line(f: dict[str, Any]) -> str:
    what = _KIND_TEXT.get(f["kind"], f["kind"])
    rel = f" ({f['relation']})" if f.get("relation") else ""
    return (
        f"#{f['id']}  {f['status']:<9}  {f['model_ref']} -> {f['other_ref']}{rel}: {what}; "
        f"r = {f['statistic']:.3f}, p = {f['p_value']:.4f}"
    )


@click.group("findings", invoke_without_command=True)
@click.option(
    "--status", type=click.Choice([s.value for s in FindingStatus]), default=None, help="Filter."
)
@click.option("--model", default=None, help="Only findings about this model (a reference).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
@click.pass_context
def findings(click_ctx: click.Context, status: str | None, model: str | None, limit: int) -> None:
    """Findings from the weights, newest first (see `findings confirm` and `findings dismiss`)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Ctx = click_ctx.obj
    page = ctx.call(ctx.client.get, "/v1/findings", status=status, model=model, limit=limit)

    def human(d: dict[str, Any]) -> None:
        if not d["data"]:
            output.echo("no findings")
        for f in d["data"]:
            output.echo(_line(f))
        if d["count"] > len(d["data"]):
            output.echo(f"... {d['count'] - len(d['data'])} more (--limit)")

    output.emit(page, human)


def _decide(ctx: Ctx, finding_id: int, confirm: bool, reason: str, key_file: Path | None) -> None:
    signer = ctx.signer(key_file)
    f = ctx.call(ctx.client.get, f"/v1/findings/{finding_id}")
    make = confirmation_statement if confirm else dismissal_statement
    statement = make(f["model"], f["statement"], reason, label=f["model_ref"])
    answer = ctx.call(
        ctx.client.post, "/v1/attestations", sign_statement(statement, signer).to_json()
    )
    verb = "confirmed" if confirm else "dismissed"
    log = f", log #{answer['log_index']}" if answer.get("log_index") is not None else ""
    edge = (
        f"; added initialized_from {f['model_ref']} -> {f['other_ref']}"
        if answer.get("edges_added")
        else ""
    )

    def human(a: dict[str, Any]) -> None:
        output.echo(
            f"{verb} finding #{finding_id} ({short_digest(f['statement'])}): attestation "
            f"{a['attestation_id']}{log}{edge}"
        )

    output.emit(answer, human)


@findings.command("confirm")
@click.argument("finding_id", type=click.IntRange(1))
@click.option("--reason", default="", help="Why the weights evidence holds.")
@key_file_option
@json_option
@click.pass_obj
def confirm_cmd(ctx: Ctx, finding_id: int, reason: str, key_file: Path | None) -> None:
    """Confirm finding ID (reviewers): an undeclared shared base becomes an initialized_from
    edge, so the risk rule sees it."""
    _decide(ctx, finding_id, True, reason, key_file)


@findings.command("dismiss")
@click.argument("finding_id", type=click.IntRange(1))
@click.option("--reason", required=True, help="Why the finding does not hold.")
@key_file_option
@json_option
@click.pass_obj
def dismiss_cmd(ctx: Ctx, finding_id: int, reason: str, key_file: Path | None) -> None:
    """Dismiss finding ID with a reason (reviewers)."""
    _decide(ctx, finding_id, False, reason, key_file)


COMMANDS = [findings]
