"""`studbook attestation get`: a stored statement, and its envelope for `studbook verify`.

The registry keeps every accepted envelope verbatim; writing it to a file lets anyone check its
signature and its place in the log offline, without trusting the server's word for either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .. import output
from ..context import Ctx
from ..output import ExitCode, fail, json_option


def _print_attestation(att: dict[str, Any]) -> None:
    statement = att.get("statement") or {}
    subjects = ", ".join(
        s.get("name", "")
        + " sha256:"
        + output.short_digest((s.get("digest") or {}).get("sha256", ""))
        for s in statement.get("subject", [])
    )
    rows = [
        ("attestation", str(att["id"])),
        ("predicate", att["predicate_type"]),
        ("principal", att["principal"]),
        ("signer key", att["signer_keyid"]),
        ("received", str(att["received_at"])),
        ("subjects", subjects or "-"),
    ]
    for key, value in rows:
        output.echo(f"{key:<12} {value}")


@click.group()
def attestation() -> None:
    """Read stored attestations (signed statements)."""


@attestation.command("get")
@click.argument("attestation_id", type=click.IntRange(1, 2**63 - 1), required=False)
@click.option("--artifact", "artifact_ref", default=None, help="The registration of this artifact.")
@click.option(
    "--envelope-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the DSSE envelope here, for `studbook verify FILE`.",
)
@json_option
@click.pass_obj
def attestation_get(
    ctx: Ctx, attestation_id: int | None, artifact_ref: str | None, envelope_out: Path | None
) -> None:
    """Show attestation ATTESTATION_ID (or an artifact's registration) and save its envelope."""
    if (attestation_id is None) == (artifact_ref is None):
        fail("give an ATTESTATION_ID or --artifact REF (one of them)", ExitCode.USAGE)
    if attestation_id is None:
        attestation_id = int(ctx.artifact(str(artifact_ref))["attestation_id"])
    att = ctx.call(ctx.client.get, f"/v1/attestations/{attestation_id}")
    if envelope_out is not None:
        envelope_out.write_text(json.dumps(att["envelope"], indent=2) + "\n")
        output.note(f"envelope of attestation {attestation_id} written to {envelope_out}")
    output.emit(att, _print_attestation)


COMMANDS = [attestation]
