"""`studbook fingerprint PATH` and `studbook compare A B`: shared-base evidence from weights.

Both run locally on weights (a `.safetensors` file or folder, or a `.gguf` file); `compare`
also takes a registered reference, whose signed fingerprint is read from its registration's
metadata. `compare` exits 0 when the comparison ran (the answer is in its output and in `--json`:
`comparable`, `statistic`, `p_value`, `shared`), and 3 when the two cannot be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import output
from ..context import Ctx
from ..output import ExitCode, fail, json_option


def _fingerprint_of(ctx: Ctx, source: str) -> Any:
    """A local path's fingerprint, or the signed one a registered artifact carries."""
    from lineage.fingerprint import Fingerprint, FingerprintError, fingerprint_path

    path = Path(source)
    try:
        if path.exists():
            return fingerprint_path(path)
        art = ctx.call(ctx.client.artifact, source)
        doc = (art.get("metadata") or {}).get("fingerprint")
        if doc is None:
            fail(f"{source} was registered without a fingerprint", ExitCode.NOT_FOUND)
        return Fingerprint.from_json(doc)
    except FingerprintError as exc:
        fail(f"{source}: {exc}", ExitCode.USAGE)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@json_option
@click.pass_obj
def fingerprint(ctx: Ctx, path: Path) -> None:
    """Fingerprint the weights at PATH (what `register` signs with a model)."""
    from lineage.fingerprint import FingerprintError, fingerprint_path

    try:
        fp = fingerprint_path(path)
    except FingerprintError as exc:
        fail(f"{path}: {exc}", ExitCode.USAGE)
    doc = fp.to_json()

    def human(d: dict[str, Any]) -> None:
        output.echo(f"scheme:  {d['scheme']}")
        output.echo(f"tensor:  {d['tensor']} (domain {d['domain']}, {len(d['indices'])} inputs)")
        output.echo(f"sha256:  {d['sha256']}")

    output.emit(doc, human)


@click.command()
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_obj
def compare(ctx: Ctx, a: str, b: str) -> None:
    """Do A and B share a base? Each is a weights path or a registered reference."""
    from lineage.fingerprint import shared_base

    result = shared_base(_fingerprint_of(ctx, a), _fingerprint_of(ctx, b)).to_json()

    def human(d: dict[str, Any]) -> None:
        if not d["comparable"]:
            output.echo(f"not comparable: {d['reason']}")
            return
        verdict = "SHARED BASE" if d["shared"] else "no shared base shown"
        output.echo(f"{verdict}: r = {d['statistic']:.3f}, p = {d['p_value']:.4f}")
        output.echo(d["reason"])

    output.emit(result, human)
    if not result["comparable"]:
        raise SystemExit(int(ExitCode.USAGE))


COMMANDS = [fingerprint, compare]
