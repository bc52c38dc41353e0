"""`studbook log ...` and `studbook verify`: checkpoints, offline proofs, and the audit.

`log checkpoint`, `log verify` and `verify` talk to a server and check everything it says on this
machine (`registry.log.offline`); pin the log key with `--vkey` or `STUDBOOK_LOG_VKEY`. `log audit`
runs where the database is (like `studbook migrate`): it reads every entry and table directly.

Exit status: 0 when every check passed, 1 when one failed (the message says which and why),
2 when the server could not be reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from lineage import dsse
from lineage.errors import LineageError

from ..client import ApiError
from . import offline

VKEY_HELP = "The log's verifier key (<name>+<id>+<key>) or a file holding it; default: the key "
VKEY_HELP += "the server advertises (not pinned)."


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _guard(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a check, turning refusals into a message and an exit status."""
    try:
        return fn(*args, **kw)
    except ApiError as exc:
        _fail(str(exc), 2 if exc.status == 0 else 1)
    except LineageError as exc:
        _fail(f"verification FAILED: {exc.message}")
    except (KeyError, TypeError, ValueError) as exc:  # an answer without the fields we check
        _fail(f"verification FAILED: the server's answer is malformed ({exc!r})")


def _vkey(obj: Any, given: str | None) -> str:
    if given:
        path = Path(given)
        return path.read_text().strip() if path.is_file() else given.strip()
    advertised = str(_guard(obj.client.get, "/v1/log")["vkey"])
    click.echo(
        f"warning: trusting the log key the server advertises ({advertised}); pin it with "
        "--vkey or STUDBOOK_LOG_VKEY",
        err=True,
    )
    return advertised


@click.group("log")
def log_cli() -> None:
    """The transparency log: checkpoints, consistency and inclusion proofs, audit."""


@log_cli.command("info")
@click.pass_obj
def info(obj: Any) -> None:
    """Show the log's origin, verifier key, size, root and checkpoint."""
    click.echo(json.dumps(_guard(obj.client.get, "/v1/log"), indent=2))


@log_cli.command("checkpoint")
@click.option("--out", type=click.Path(path_type=Path), help="Save it here (default: print).")
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help=VKEY_HELP)
@click.pass_obj
def checkpoint(obj: Any, out: Path | None, vkey: str | None) -> None:
    """Fetch the current signed checkpoint, verify it, and save it for a later `log verify`."""
    cp, note = _guard(offline.live_checkpoint, obj.client, _vkey(obj, vkey))
    if out is None:
        click.echo(note, nl=False)
        return
    out.write_text(note)
    click.echo(f"checkpoint of {cp.size} entries saved to {out}", err=True)


@log_cli.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A checkpoint saved earlier.",
)
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help=VKEY_HELP)
@click.option("--update", is_flag=True, help="On success, save the live checkpoint over FILE.")
@click.pass_obj
def verify_log(obj: Any, checkpoint_file: Path, vkey: str | None, update: bool) -> None:
    """Prove the live log extends a saved checkpoint (nothing recorded was rewritten)."""
    saved = checkpoint_file.read_text()
    result = _guard(offline.check_consistency, obj.client, saved, _vkey(obj, vkey))
    click.echo(
        f"consistent: the log of {result.new.size} entries extends the saved checkpoint of "
        f"{result.old.size} entries ({result.old.origin})"
    )
    if update:
        checkpoint_file.write_text(result.new_note)


@log_cli.command("audit")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Saved checkpoint the log must be consistent with (repeatable).",
)
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help="Log key; default: the configured one.")
@click.option("--no-rebuild", is_flag=True, help="Skip re-verifying signatures and the rebuild.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def audit_cmd(
    checkpoint_files: tuple[Path, ...], vkey: str | None, no_rebuild: bool, as_json: bool
) -> None:
    """Re-read every entry, recompute the tree, re-verify every signature and rebuild the
    derived tables; report every discrepancy. Runs against the database
    (STUDBOOK_DATABASE_URL), not through the API."""
    from sqlmodel import Session

    from ..app import create_app
    from ..db import make_engine
    from ..settings import get_settings
    from .audit import audit
    from .service import stored_notary

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        # Install every domain exactly as a server does, so the replay applies each envelope
        # with the same predicate handlers and hooks that accepted it.
        create_app(settings, engine=engine)
        if vkey is None:
            with Session(engine) as session:
                notary = stored_notary(session, settings)
            vkey = notary.vkey if notary is not None else None
        elif Path(vkey).is_file():
            vkey = Path(vkey).read_text().strip()
        if checkpoint_files and vkey is None:
            _fail("the log has no key yet, and no --vkey was given to check checkpoints with")
        report = audit(
            engine,
            vkey=vkey,
            checkpoints=[p.read_text() for p in checkpoint_files],
            rebuild=not no_rebuild,
            progress=lambda stage, n: click.echo(f"  {stage}: {n}", err=True),
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([_finding_json(f) for f in report.findings], indent=2))
    else:
        _print_report(report)
    sys.exit(0 if report.ok else 1)


def _finding_json(finding: Any) -> dict[str, Any]:
    return {
        "kind": str(finding.kind),
        "where": finding.where,
        "message": finding.message,
        "log_index": finding.log_index,
        "attestation_id": finding.attestation_id,
    }


def _print_report(report: Any) -> None:
    from .leaf import b64

    click.echo(f"log size {report.tree_size}, entries read {report.entries}")
    click.echo(f"root recomputed from the entries: {b64(report.root_hash)}")
    if report.stored_root != report.root_hash:
        click.echo(f"root folded from the stored nodes: {b64(report.stored_root)}")
    for cp in report.checkpoints:
        click.echo(f"consistent with the saved checkpoint of size {cp.size}")
    if report.replay is not None:
        click.echo(
            f"replayed {report.replay.replayed} attestations, {report.replay.applied} applied; "
            + ", ".join(
                f"{t}: {s} stored / {r} rebuilt" for t, (s, r) in report.replay.tables.items()
            )
        )
    if report.ok:
        click.echo("audit passed: no findings")
        return
    click.echo(f"audit FAILED: {len(report.findings)} findings")
    for finding in report.findings:
        click.echo(f"  {finding}")


@click.command("verify")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help=VKEY_HELP)
@click.option(
    "--public-key",
    default=None,
    help="The signer's public key (base64 or PEM); default: the registry's key list.",
)
@click.pass_obj
def verify_cmd(obj: Any, envelope: Path, vkey: str | None, public_key: str | None) -> None:
    """Check ENVELOPE's signature and prove it is in the log, under a signed checkpoint."""
    try:
        env = offline.load_json(envelope.read_bytes(), str(envelope))
    except ValueError as exc:
        _fail(str(exc))
    if not isinstance(env, dict):
        _fail(f"{envelope} must hold a DSSE envelope (a JSON object)")
    if public_key is not None:
        key = _guard(dsse.load_public_key, public_key)
        keys, owners = {dsse.keyid(key): key}, {}
    else:
        listed = _guard(obj.client.get, "/v1/keys")["data"]
        keys = {k["keyid"]: dsse.load_public_key(k["public_key"]) for k in listed}
        owners = {k["keyid"]: k for k in listed}
    verified = _guard(offline.verify_signature, env, keys)
    owner = owners.get(verified.keyid)
    who = ""
    if owner is not None:
        revoked = ", revoked since" if owner["revoked_at"] else ""
        who = f" of {owner['principal']}{revoked}"
    click.echo(f"signature: valid, key {verified.keyid}{who}")
    result = _guard(offline.check_inclusion, obj.client, env, _vkey(obj, vkey))
    click.echo(
        f"log: included as entry {result.index} of {result.checkpoint.size} "
        f"(envelope digest {result.envelope_digest}, checkpoint of {result.checkpoint.origin})"
    )
