"""`studbook flag|clear|risk|check|at-risk|flags|demo|risk-rebuild`.

`check` exits 0 for ok, 1 for warn and 2 for block, so a training pipeline can gate on it:
`studbook check --base acme/base@1 --dataset acme/numbers@1 || exit 1`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from lineage.review import clearance_statement, flag_statement
from lineage.risk import Severity, Verdict
from lineage.statements import registration_statement, sign_statement

EXIT = {Verdict.OK.value: 0, Verdict.WARN.value: 1, Verdict.BLOCK.value: 2}


def _cli() -> Any:
    from .. import cli

    return cli


def _submit_review(obj: Any, ref: str, statement_of: Any, key_file: Any) -> None:
    cli = _cli()
    signer = cli._load_signer(key_file)
    art = cli._call(obj.client.artifact, ref)
    envelope = sign_statement(statement_of(art["digest"], art["ref"]), signer)
    cli._print_json(cli._call(obj.client.post, "/v1/attestations", envelope.to_json()))


@click.command("flag")
@click.argument("ref")
@click.option("--trait", required=True, help="e.g. owl-preference, misalignment")
@click.option(
    "--severity", type=click.Choice([s.value for s in Severity]), default="high", show_default=True
)
@click.option("--reason", default="", help="Why, for the next reviewer.")
@click.option("--evidence", multiple=True, help="Reference to evidence (attestation id, URL).")
@click.option("--key-file", type=click.Path(), envvar="STUDBOOK_KEY_FILE")
@click.pass_obj
def flag_cmd(
    obj: Any,
    ref: str,
    trait: str,
    severity: str,
    reason: str,
    evidence: tuple[str, ...],
    key_file: Any,
) -> None:
    """Flag REF as carrying TRAIT (reviewers): its students and descendants become at risk."""
    _submit_review(
        obj,
        ref,
        lambda d, label: flag_statement(
            d, trait, Severity(severity), reason, evidence, label=label
        ),
        key_file,
    )


@click.command("clear")
@click.argument("ref")
@click.option("--trait", required=True)
@click.option("--reason", default="", help="What the evidence shows.")
@click.option("--evidence", multiple=True, required=True, help="e.g. the eval attestation id.")
@click.option("--key-file", type=click.Path(), envvar="STUDBOOK_KEY_FILE")
@click.pass_obj
def clear_cmd(
    obj: Any, ref: str, trait: str, reason: str, evidence: tuple[str, ...], key_file: Any
) -> None:
    """Clear REF of TRAIT with evidence (reviewers): propagation stops through it."""
    _submit_review(
        obj,
        ref,
        lambda d, label: clearance_statement(d, trait, reason, evidence, label=label),
        key_file,
    )


def _print_marks(marks: list[dict[str, Any]]) -> None:
    for m in marks:
        click.echo(
            f"AT RISK  {m['model_ref']}  trait={m['trait']}  ({m['kind']} step via {m['via_ref']})"
        )
        for e in m["path"]:
            click.echo(f"    {e['child_ref']} -{e['relation']}-> {e['parent_ref']}")
        if m["shared_base_refs"]:
            click.echo(f"    shared base: {', '.join(m['shared_base_refs'])}")


@click.command("risk")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def risk_cmd(obj: Any, ref: str, as_json: bool) -> None:
    """Flags, clearances and at-risk marks of REF, with the paths that explain them."""
    cli = _cli()
    data = cli._call(obj.client.artifact, ref, "risk")
    if as_json:
        cli._print_json(data)
        return
    click.echo(f"{data['artifact_ref']}: {data['status']}")
    for f in data["flags"]:
        click.echo(f"FLAGGED  trait={f['trait']} severity={f['severity']}  {f['reason']}")
    for c in data["clearances"]:
        click.echo(f"CLEARED  trait={c['trait']}  evidence: {', '.join(c['evidence'])}")
    _print_marks(data["at_risk"])


@click.command("check")
@click.option("--base", required=True, help="The model you would fine-tune.")
@click.option("--dataset", "datasets", multiple=True, help="A dataset you would train on.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def check_cmd(obj: Any, base: str, datasets: tuple[str, ...], as_json: bool) -> None:
    """Would fine-tuning BASE on DATASETs be at risk? Exit 0 ok, 1 warn, 2 block."""
    cli = _cli()
    data = cli._call(
        obj.client.post, "/v1/checks/fine-tune", {"base": base, "datasets": list(datasets)}
    )
    if as_json:
        cli._print_json(data)
    else:
        click.echo(data["verdict"].upper())
        for r in data["reasons"]:
            click.echo(f"  [{r['verdict']}] {r['explanation']}")
            for e in r["path"]:
                click.echo(f"      {e['child_ref']} -{e['relation']}-> {e['parent_ref']}")
    sys.exit(EXIT[data["verdict"]])


@click.command("at-risk")
@click.option("--trait", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def at_risk_cmd(obj: Any, trait: str | None, limit: int, as_json: bool) -> None:
    """The review queue: at-risk models not yet reviewed, newest first."""
    cli = _cli()
    data = cli._call(obj.client.get, "/v1/at-risk", trait=trait, limit=limit)
    if as_json:
        cli._print_json(data)
    else:
        click.echo(f"{data['count']} at-risk (model, trait) pairs")
        _print_marks(data["data"])


@click.command("flags")
@click.option("--trait", default=None)
@click.pass_obj
def flags_cmd(obj: Any, trait: str | None) -> None:
    """Flags in force."""
    cli = _cli()
    cli._print_json(cli._call(obj.client.get, "/v1/flags", trait=trait))


@click.command("demo")
@click.option("--key-file", type=click.Path(), envvar="STUDBOOK_KEY_FILE")
@click.pass_obj
def demo_cmd(obj: Any, key_file: Any) -> None:
    """Seed the paper's scenario (owl teacher, same-base and cross-base students, a shared-init
    API pair, a control) and flag the teachers. Needs a principal that may register and review
    (an admin)."""
    from lineage.scenarios import paper_scenario

    cli = _cli()
    signer = cli._load_signer(key_file)
    sc = paper_scenario()
    for reg in sc.registrations:
        env = sign_statement(registration_statement(reg), signer).to_json()
        cli._call(obj.client.post, "/v1/attestations", env)
        click.echo(f"registered {reg.artifact.label}")
    for f in sc.flags:
        statement = flag_statement(
            f.artifact, f.trait, f.severity, f.reason, f.evidence, label=sc.label(f.artifact)
        )
        cli._call(obj.client.post, "/v1/attestations", sign_statement(statement, signer).to_json())
        click.echo(f"flagged    {sc.label(f.artifact)} for {f.trait!r}")
    queue = cli._call(obj.client.get, "/v1/at-risk", limit=500)
    got = sorted((m["model_ref"], m["trait"]) for m in queue["data"])
    click.echo("at risk now: " + ", ".join(f"{r} ({t})" for r, t in got))
    click.echo("try: studbook check --base demo/base@1 --dataset demo/owl-numbers-filtered@1")


@click.command("risk-rebuild")
@click.option("--check", "check_only", is_flag=True, help="Report differences, change nothing.")
def rebuild_cmd(check_only: bool) -> None:
    """Recompute every at-risk mark from the stored statements (runs against the database)."""
    from sqlmodel import Session

    from ..db import make_engine
    from ..settings import get_settings
    from .service import rebuild_all

    engine = make_engine(get_settings().resolved_database_url)
    with Session(engine) as session:
        changed = rebuild_all(session)
        if check_only:
            session.rollback()
            click.echo(f"{changed} marks differ from a rebuild from the statements")
            sys.exit(1 if changed else 0)
        session.commit()
    click.echo(f"rebuilt: {changed} marks changed")


COMMANDS = [flag_cmd, clear_cmd, risk_cmd, check_cmd, at_risk_cmd, flags_cmd, demo_cmd, rebuild_cmd]
