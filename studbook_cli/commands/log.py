"""`studbook log info | checkpoint | verify` and `studbook verify`: hold the log to its word.

Everything the server says is checked on this machine with `lineage.offline`: checkpoints under
the log's verifier key, consistency proofs against a checkpoint saved earlier, inclusion proofs
against the envelope in hand. Pin the log key with `--vkey` or `STUDBOOK_LOG_VKEY` (from
`studbook log info`, fetched once from a source you trust). `log audit` runs where the database
is, so it lives with the server (`registry.commands`) and joins this group by entry point.

A failed check exits 2 (block), like a blocking `check`: the record does not hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click

from lineage import dsse, offline
from lineage.errors import LineageError

from .. import output
from ..client import ApiError
from ..context import Ctx
from ..groups import LazyGroup
from ..output import ExitCode, exit_code_for_status, fail, json_option

VKEY_HELP = "The log's verifier key (<name>+<id>+<key>) or a file holding it; default: the key "
VKEY_HELP += "the server advertises (not pinned)."


def _failed(message: str) -> NoReturn:
    fail(f"verification FAILED: {message}", ExitCode.BLOCK)


def guard(ctx: Ctx, fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a check, turning refusals into a message and the documented exit code."""
    try:
        return fn(*args, **kw)
    except ApiError as exc:
        fail(str(exc), exit_code_for_status(exc.status))
    except LineageError as exc:
        _failed(exc.message)
    except (KeyError, TypeError, ValueError) as exc:  # an answer without the fields we check
        _failed(f"the server's answer is malformed ({exc!r})")


def vkey_of(ctx: Ctx, given: str | None) -> str:
    """The pinned key (a value or a file), else the advertised one, with a warning."""
    if given:
        path = Path(given)
        return path.read_text().strip() if path.is_file() else given.strip()
    advertised = str(guard(ctx, ctx.client.get, "/v1/log")["vkey"])
    output.note(
        f"warning: trusting the log key the server advertises ({advertised}); pin it with "
        "--vkey or STUDBOOK_LOG_VKEY"
    )
    return advertised


@click.group("log", cls=LazyGroup)
def log_cli() -> None:
    """The transparency log: checkpoints, consistency and inclusion proofs, audit."""


@log_cli.command("info")
@json_option
@click.pass_obj
def info(ctx: Ctx) -> None:
    """Show the log's origin, verifier key (vkey), size, root and checkpoint."""

    def human(d: dict[str, Any]) -> None:
        for key in ("origin", "vkey", "tree_size", "root_hash"):
            if key in d:
                output.echo(f"{key + ':':<11} {d[key]}")
        if d.get("checkpoint"):
            output.echo("checkpoint:")
            output.echo("  " + str(d["checkpoint"]).rstrip("\n").replace("\n", "\n  "))

    output.emit(ctx.call(ctx.client.get, "/v1/log"), human)


@log_cli.command("checkpoint")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Save it here.")
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help=VKEY_HELP)
@json_option
@click.pass_obj
def checkpoint(ctx: Ctx, out: Path | None, vkey: str | None) -> None:
    """Fetch the current signed checkpoint, verify it, and save it for a later `log verify`."""
    cp, note = guard(ctx, offline.live_checkpoint, ctx.client, vkey_of(ctx, vkey))
    if out is not None:
        out.write_text(note)
        output.note(f"checkpoint of {cp.size} entries saved to {out}")
    if output.wants_json():
        output.print_json({"origin": cp.origin, "size": cp.size, "note": note})
    elif out is None:
        click.echo(note, nl=False)


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
@json_option
@click.pass_obj
def verify_log(ctx: Ctx, checkpoint_file: Path, vkey: str | None, update: bool) -> None:
    """Prove the live log extends a saved checkpoint (nothing recorded was rewritten)."""
    saved = checkpoint_file.read_text()
    result = guard(ctx, offline.check_consistency, ctx.client, saved, vkey_of(ctx, vkey))
    if update:
        checkpoint_file.write_text(result.new_note)
    output.emit(
        {"consistent": True, "old_size": result.old.size, "new_size": result.new.size},
        lambda _d: output.echo(
            f"consistent: the log of {result.new.size} entries extends the saved checkpoint of "
            f"{result.old.size} entries ({result.old.origin})"
        ),
    )


@click.command("verify")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help=VKEY_HELP)
@click.option(
    "--public-key",
    default=None,
    help="The signer's public key (base64 or PEM); default: the registry's key list.",
)
@json_option
@click.pass_obj
def verify_cmd(ctx: Ctx, envelope: Path, vkey: str | None, public_key: str | None) -> None:
    """Check ENVELOPE's signature and prove it is in the log, under a signed checkpoint.

    ENVELOPE is a DSSE envelope as `register --save-envelope` or `attestation get --envelope-out`
    writes it.
    """
    try:
        env = offline.load_json(envelope.read_bytes(), str(envelope))
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)
    if not isinstance(env, dict):
        fail(f"{envelope} must hold a DSSE envelope (a JSON object)", ExitCode.USAGE)
    keys: dict[str, dsse.PublicKey] = {}
    owners: dict[str, dict[str, Any]] = {}
    if public_key is not None:
        try:
            key = dsse.load_public_key(public_key)
        except LineageError as exc:
            fail(f"--public-key: {exc.message}", ExitCode.USAGE)
        keys[dsse.keyid(key)] = key
    else:
        listed = ctx.call(ctx.client.get, "/v1/keys")["data"]
        for k in listed:
            try:
                keys[k["keyid"]] = dsse.load_public_key(k["public_key"])
            except LineageError:  # a key this verifier cannot read cannot have signed for it
                continue
            owners[k["keyid"]] = k
    verified = guard(ctx, offline.verify_signature, env, keys)
    owner = owners.get(verified.keyid)
    who = ""
    if owner is not None:
        revoked = ", revoked since" if owner["revoked_at"] else ""
        who = f" of {owner['principal']}{revoked}"
    result = guard(ctx, offline.check_inclusion, ctx.client, env, vkey_of(ctx, vkey))

    def human(_d: Any) -> None:
        output.echo(f"signature: valid, key {verified.keyid}{who}")
        output.echo(
            f"log: included as entry {result.index} of {result.checkpoint.size} "
            f"(envelope digest {result.envelope_digest}, checkpoint of {result.checkpoint.origin})"
        )

    output.emit(
        {
            "signature": "valid",
            "keyid": verified.keyid,
            "principal": owner["principal"] if owner else None,
            "log_index": result.index,
            "tree_size": result.checkpoint.size,
            "envelope_digest": result.envelope_digest,
            "origin": result.checkpoint.origin,
        },
        human,
    )


COMMANDS = [log_cli, verify_cmd]
