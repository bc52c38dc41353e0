"""`studbook flag | clear | accept | risk | check | at-risk | flags | demo`: trait-transfer risk.

`check` is a gate: it exits 0 for ok, 1 for warn and 2 for block, and every failure to answer
(a bad token, an unknown dataset, a server that is down) has its own code from 3 up, so
`studbook check ... || exit 1` never lets a typo pass as "not blocked" unless it asks to.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from lineage.review import acceptance_statement, clearance_statement, flag_statement
from lineage.risk import Severity, Verdict
from lineage.statements import registration_statement, sign_statement

from .. import output
from ..context import Ctx
from ..output import ExitCode, json_option
from .artifacts import key_file_option, registration_line

VERDICT_EXIT = {
    Verdict.OK.value: ExitCode.OK,
    Verdict.WARN.value: ExitCode.WARN,
    Verdict.BLOCK.value: ExitCode.BLOCK,
}


def _submit_review(ctx: Ctx, ref: str, statement_of: Any, key_file: Path | None, verb: str) -> None:
    signer = ctx.signer(key_file)
    art = ctx.artifact(ref)
    envelope = sign_statement(statement_of(art["digest"], art["ref"]), signer)
    answer = ctx.call(ctx.client.post, "/v1/attestations", envelope.to_json())
    log = f", log #{answer['log_index']}" if answer.get("log_index") is not None else ""
    again = "" if answer.get("created", True) else " (already recorded)"
    output.emit(
        answer,
        lambda a: output.echo(
            f"{verb} {art['ref']}: attestation {a['attestation_id']}{log}{again}"
        ),
    )


@click.command("flag")
@click.argument("ref")
@click.option("--trait", required=True, help="e.g. owl-preference, misalignment")
@click.option(
    "--severity", type=click.Choice([s.value for s in Severity]), default="high", show_default=True
)
@click.option("--reason", default="", help="Why, for the next reviewer.")
@click.option("--evidence", multiple=True, help="Reference to evidence (attestation:ID, URL).")
@key_file_option
@json_option
@click.pass_obj
def flag_cmd(
    ctx: Ctx,
    ref: str,
    trait: str,
    severity: str,
    reason: str,
    evidence: tuple[str, ...],
    key_file: Path | None,
) -> None:
    """Flag REF as carrying TRAIT (reviewers): its students and descendants become at risk."""
    _submit_review(
        ctx,
        ref,
        lambda d, label: flag_statement(
            d, trait, Severity(severity), reason, evidence, label=label
        ),
        key_file,
        f"flagged for {trait!r} ({severity}):",
    )


@click.command("clear")
@click.argument("ref")
@click.option("--trait", required=True)
@click.option("--reason", default="", help="What the evidence shows.")
@click.option(
    "--evidence",
    multiple=True,
    required=True,
    help="attestation:ID of an eval result of a non-smoke run about REF (or its base, same "
    "trait), or external:<text or URL> for evidence kept outside the registry.",
)
@key_file_option
@json_option
@click.pass_obj
def clear_cmd(
    ctx: Ctx, ref: str, trait: str, reason: str, evidence: tuple[str, ...], key_file: Path | None
) -> None:
    """Clear REF of TRAIT with evidence (reviewers): propagation stops through it."""
    _submit_review(
        ctx,
        ref,
        lambda d, label: clearance_statement(d, trait, reason, evidence, label=label),
        key_file,
        f"cleared of {trait!r}:",
    )


@click.command("accept")
@click.argument("ref")
@click.option("--trait", required=True)
@click.option("--reason", required=True, help="Why the risk is accepted, for the next reviewer.")
@click.option(
    "--until",
    "until",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="When the acceptance lapses (UTC; at most a year ahead).",
)
@click.option("--evidence", multiple=True, help="Reference to evidence (attestation:ID, URL).")
@key_file_option
@json_option
@click.pass_obj
def accept_cmd(
    ctx: Ctx,
    ref: str,
    trait: str,
    reason: str,
    until: datetime,
    evidence: tuple[str, ...],
    key_file: Path | None,
) -> None:
    """Accept REF's risk for TRAIT until a date (reviewers): it leaves the review queue until
    then; its risk, and what it passes on, do not change."""
    expires = until.replace(tzinfo=UTC)
    _submit_review(
        ctx,
        ref,
        lambda d, label: acceptance_statement(d, trait, reason, expires, evidence, label=label),
        key_file,
        f"risk for {trait!r} accepted until {expires:%Y-%m-%d %H:%M} UTC:",
    )


def _print_marks(marks: list[dict[str, Any]]) -> None:
    for m in marks:
        output.echo(
            f"AT RISK  {m['model_ref']}  trait={m['trait']}  ({m['kind']} step via {m['via_ref']})"
        )
        for e in m["path"]:
            output.echo(f"    {e['child_ref']} -{e['relation']}-> {e['parent_ref']}")
        if m["shared_base_refs"]:
            output.echo(f"    shared base: {', '.join(m['shared_base_refs'])}")


@click.command("risk")
@click.argument("ref")
@json_option
@click.pass_obj
def risk_cmd(ctx: Ctx, ref: str) -> None:
    """Flags, clearances and at-risk marks of REF, with the paths that explain them.

    Status: flagged, at_risk, cleared (a reviewer cleared it with evidence) or no_risk.
    """
    art = ctx.artifact(ref)
    data = ctx.call(ctx.client.artifact, art["ref"], "risk")

    def human(d: dict[str, Any]) -> None:
        output.echo(f"{d['artifact_ref']}: {d['status']}")
        for f in d["flags"]:
            output.echo(f"FLAGGED  trait={f['trait']} severity={f['severity']}  {f['reason']}")
        for c in d["clearances"]:
            output.echo(f"CLEARED  trait={c['trait']}  evidence: {', '.join(c['evidence'])}")
        _print_marks(d["at_risk"])

    output.emit(data, human)


@click.command("check")
@click.option("--base", required=True, help="The model you would fine-tune.")
@click.option("--dataset", "datasets", multiple=True, help="A dataset you would train on.")
@json_option
@click.pass_obj
def check_cmd(ctx: Ctx, base: str, datasets: tuple[str, ...]) -> None:
    """Would fine-tuning BASE on DATASETs be at risk? Exit 0 ok, 1 warn, 2 block.

    Any other failure (usage, authentication, unknown reference, unreachable server) exits 3 or
    more; see `studbook --help`.
    """
    for ref in (base, *datasets):
        ctx.check_versioned(ref)
    data = ctx.call(
        ctx.client.post, "/v1/checks/fine-tune", {"base": base, "datasets": list(datasets)}
    )

    def human(d: dict[str, Any]) -> None:
        output.echo(d["verdict"].upper())
        for r in d["reasons"]:
            output.echo(f"  [{r['verdict']}] {r['explanation']}")
            for e in r["path"]:
                output.echo(f"      {e['child_ref']} -{e['relation']}-> {e['parent_ref']}")

    output.emit(data, human)
    sys.exit(int(VERDICT_EXIT[data["verdict"]]))


@click.command("at-risk")
@click.option("--trait", default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
@click.pass_obj
def at_risk_cmd(ctx: Ctx, trait: str | None, limit: int) -> None:
    """The review queue: at-risk models not yet reviewed, newest first."""
    data = ctx.call(ctx.client.get, "/v1/at-risk", trait=trait, limit=limit)

    def human(d: dict[str, Any]) -> None:
        output.echo(f"{d['count']} at-risk (model, trait) pairs")
        _print_marks(d["data"])

    output.emit(data, human)


@click.command("flags")
@click.option("--trait", default=None)
@json_option
@click.pass_obj
def flags_cmd(ctx: Ctx, trait: str | None) -> None:
    """Flags in force."""

    def human(d: dict[str, Any]) -> None:
        rows = [
            (f["artifact_ref"], f["trait"], f["severity"], str(f["created_at"])[:19], f["reason"])
            for f in d["data"]
        ]
        output.echo(
            output.table(("artifact", "trait", "severity", "since", "reason"), rows, widths={0: 40})
        )
        output.echo(f"{d['count']} flags")

    output.emit(ctx.call(ctx.client.get, "/v1/flags", trait=trait), human)


@click.command("demo")
@key_file_option
@json_option
@click.pass_obj
def demo_cmd(ctx: Ctx, key_file: Path | None) -> None:
    """Seed the paper's scenario (owl teacher, same-base and cross-base students, a shared-init
    API pair, a control) and flag the teachers. Needs a principal that may register and review
    (an admin)."""
    from lineage.scenarios import paper_scenario

    signer = ctx.signer(key_file)
    sc = paper_scenario()
    answers = []
    for reg in sc.registrations:
        env = sign_statement(registration_statement(reg), signer).to_json()
        answer = ctx.call(ctx.client.post, "/v1/attestations", env)
        answers.append(answer)
        output.echo(registration_line(ctx, answer, reg.artifact.label))
    for f in sc.flags:
        statement = flag_statement(
            f.artifact, f.trait, f.severity, f.reason, f.evidence, label=sc.label(f.artifact)
        )
        answer = ctx.call(
            ctx.client.post, "/v1/attestations", sign_statement(statement, signer).to_json()
        )
        answers.append(answer)
        output.echo(f"flagged {sc.label(f.artifact)} for {f.trait!r}")
    queue = ctx.call(ctx.client.get, "/v1/at-risk", limit=500)
    got = sorted((m["model_ref"], m["trait"]) for m in queue["data"])
    if output.wants_json():
        output.print_json({"submitted": answers, "at_risk": queue["data"]})
        return
    output.echo("at risk now: " + ", ".join(f"{r} ({t})" for r, t in got))
    output.echo("try: studbook check --base demo/base@1 --dataset demo/owl-numbers-filtered@1")


COMMANDS = [flag_cmd, clear_cmd, accept_cmd, risk_cmd, check_cmd, at_risk_cmd, flags_cmd, demo_cmd]
