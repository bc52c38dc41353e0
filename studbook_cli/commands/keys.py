"""`studbook keygen` and `studbook keys register | list | revoke`.

`keygen` writes the private key readable by its owner only from the moment the file exists
(`lineage.private_files.write_private`), and never widens the mode of a file it replaces.
`keys register` sends a proof of possession: a DSSE envelope, signed by the new key, naming the
key and the principal it is registered for, so nobody can register a key they do not hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lineage import dsse

from .. import output
from ..context import Ctx
from ..output import ExitCode, fail, json_option
from .artifacts import key_file_option


def _write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Create `path` readable by its owner only; `--force` replaces it without widening its mode.

    A folder that does not exist yet is created 0700 (the data folder usually); an existing one
    is left as it is: the key file itself is 0600 (or narrower) from the moment it exists.
    """
    from lineage.private_files import PrivateFileError, ensure_private_dir, write_private

    if path.exists() and not force:
        fail(f"{path} exists; use --force to replace it", ExitCode.USAGE)
    try:
        if not path.parent.exists():
            ensure_private_dir(path.parent)
        write_private(path, data, overwrite=force)
    except FileExistsError:
        fail(f"{path} exists; use --force to replace it", ExitCode.USAGE)
    except (PrivateFileError, OSError) as exc:
        fail(f"cannot write the key to {path}: {exc}", ExitCode.USAGE)


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="STUDBOOK_KEY_FILE",
    default=None,
    help="Private key file (default STUDBOOK_KEY_FILE or the data folder's signing-key.pem).",
)
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@click.option(
    "--algorithm",
    type=click.Choice([a.value for a in dsse.KeyAlgorithm]),
    default=dsse.KeyAlgorithm.ED25519.value,
    show_default=True,
    help="Ed25519, or ECDSA P-256/P-384 (the curves OpenSSF model-signing signs with).",
)
@json_option
@click.pass_obj
def keygen(ctx: Ctx, out: Path | None, force: bool, algorithm: str) -> None:
    """Create a signing key (PEM, mode 0600) and print its public key."""
    path = ctx.key_path(out)
    key = dsse.generate_private_key(algorithm)
    _write_private(path, dsse.private_key_pem(key), force=force)
    info = {
        "private_key_file": str(path),
        "algorithm": algorithm,
        "keyid": dsse.keyid(key.public_key()),
        "public_key": dsse.public_key_text(key.public_key()),
    }

    def human(d: dict[str, Any]) -> None:
        output.echo(f"private key: {d['private_key_file']}")
        output.echo(f"keyid:       {d['keyid']}")
        output.echo(f"public key:  {d['public_key']}")
        output.echo("register it with: studbook keys register")

    output.emit(info, human)


@click.group()
def keys() -> None:
    """Register, list and revoke signing keys."""


@keys.command("register")
@key_file_option
@click.option("--principal", default=None, help="Owner (admins only); default: you.")
@json_option
@click.pass_obj
def keys_register(ctx: Ctx, key_file: Path | None, principal: str | None) -> None:
    """Register the public half of your signing key, with proof that you hold it."""
    signer = ctx.signer(key_file)
    owner = principal or ctx.call(ctx.client.get, "/v1/me")["name"]
    proof = dsse.key_possession_proof(signer, owner)
    body = {
        "public_key": signer.public_key_text,
        "principal": principal,
        "proof": proof.to_json(),
    }
    answer = ctx.call(ctx.client.post, "/v1/keys", body)
    output.emit(
        answer,
        lambda a: output.echo(f"registered key {a['keyid']} for {a.get('principal', owner)}"),
    )


def _print_keys(page: dict[str, Any]) -> None:
    rows = [
        (
            k["keyid"],  # whole: it is what `keys revoke` takes
            k["principal"],
            str(k.get("created_at", ""))[:19],
            "revoked " + str(k["revoked_at"])[:19] if k.get("revoked_at") else "active",
        )
        for k in page["data"]
    ]
    output.echo(output.table(("keyid", "principal", "registered", "status"), rows, widths={}))


@keys.command("list")
@click.option("--principal", default=None)
@json_option
@click.pass_obj
def keys_list(ctx: Ctx, principal: str | None) -> None:
    """List registered keys."""
    output.emit(ctx.call(ctx.client.get, "/v1/keys", principal=principal), _print_keys)


@keys.command("revoke")
@click.argument("keyid")
@json_option
@click.pass_obj
def keys_revoke(ctx: Ctx, keyid: str) -> None:
    """Revoke a key: it can sign nothing new."""
    answer = ctx.call(ctx.client.post, f"/v1/keys/{keyid}/revoke")
    output.emit(answer, lambda a: output.echo(f"revoked key {a.get('keyid', keyid)}"))


COMMANDS = [keygen, keys]
