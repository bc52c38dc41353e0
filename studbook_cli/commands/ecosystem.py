"""`studbook import hf | oms` and `studbook export bom`: meet the ecosystem.

- `import hf PATH...` reads Hugging Face model cards (model folders, folders of cards, a local
  Hub cache) with `lineage.hf`, signs one registration per artifact with your key and submits
  them parents first as batches (`POST /v1/attestations/batch`, one transaction each), then
  prints what was added, what was already there and what was skipped, with the reason; an entry
  the registry refuses is reported and the rest of the batch is sent again without it.
- `import oms MODEL_DIR` checks a folder signed with OpenSSF model-signing locally with
  model-signing's verifier (every file against the signed manifest), then submits the bundle
  with your signed registration of the model under that digest; the server checks the bundle's
  signature against your registered keys and keeps it as evidence (`show`, and
  `GET /v1/artifacts/<ref>/signatures`).
- `export bom REF --format spdx3|cyclonedx [--signed] [--out FILE]` writes the model's ML-BOM
  (its whole upstream lineage, with flags and at-risk marks); `--signed` wraps it in a DSSE
  envelope signed with the registry's log key; `export verify FILE --vkey KEY` checks such a
  file later, offline, against the pinned log key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, Registration

from .. import output
from ..client import ApiError
from ..context import Ctx
from ..output import ExitCode, fail, json_option
from .artifacts import key_file_option, parse_parent

# ----------------------------------------------------------------------------- import hf


BATCH = 1000  # the registry's largest batch (POST /v1/attestations/batch)


def _entry(reg: Any) -> dict[str, Any]:
    return {
        "ref": reg.artifact.label,
        "kind": reg.artifact.kind.value,
        "digest": reg.artifact.digest,
        "parents": [f"{p.relation.value} sha256:{p.digest}" for p in reg.parents],
    }


def _classify(entry: dict[str, Any], answer: dict[str, Any], summary: dict[str, Any]) -> None:
    """Added (this statement created the artifact) or existing (known, maybe amended)."""
    art = answer.get("artifact") or {}
    if answer.get("created") and art.get("attestation_id") in (None, answer.get("attestation_id")):
        summary["added"].append(entry)
    else:
        entry["edges_added"] = int(answer.get("edges_added") or 0)
        summary["existing"].append(entry)


def submit_plan(
    post: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]],
    plan: Any,
    signer: Any,
    post_batch: Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Sign and submit a `lineage.hf.ImportPlan`, parents first; returns the summary.

    With `post_batch`, the plan goes as batches (`POST /v1/attestations/batch`, all or nothing,
    each written in one transaction): a batch refused because of one envelope is sent again
    without it, that entry reported with the registry's reason, so one bad entry never holds
    back the rest. Without it (or when the server has no batch route), one envelope at a time.

    Args:
        post: sends one envelope, returns (HTTP status, JSON body); never raises for a refusal.
        plan: the import plan.
        signer: the importer's `lineage.dsse.Signer`.
        post_batch: sends a list of envelopes, returns (HTTP status, JSON body).

    Returns:
        `{"cards": n, "added": [...], "existing": [...], "skipped": [{"path"|"ref", "reason"}]}`.
    """
    summary: dict[str, Any] = {
        "cards": len(plan.cards),
        "added": [],
        "existing": [],
        "skipped": [{"path": s.path, "reason": s.reason} for s in plan.skipped],
        "batches": 0,
    }
    signed = [
        (reg, sign_statement(registration_statement(reg), signer).to_json())
        for reg in plan.registrations
    ]
    pending = list(range(len(signed)))
    while pending and post_batch is not None:
        chunk = pending[:BATCH]
        status, body = post_batch([signed[i][1] for i in chunk])
        summary["batches"] += 1
        if status in (200, 201):
            for i, answer in zip(chunk, body["data"], strict=True):
                _classify(_entry(signed[i][0]), answer, summary)
            pending = pending[len(chunk) :]
        elif status in (404, 405):  # a registry without the batch route
            break
        elif isinstance(body.get("index"), int) and 0 <= body["index"] < len(chunk):
            bad = chunk[body["index"]]
            reason = str(body.get("detail", f"HTTP {status}"))
            reason = reason.split(" (nothing of the batch was applied")[0]
            reason = reason.removeprefix(f"envelopes[{body['index']}]: ")
            summary["skipped"].append(
                {"ref": signed[bad][0].artifact.label, "reason": f"refused ({status}): {reason}"}
            )
            pending.remove(bad)
        else:
            for i in chunk:
                summary["skipped"].append(
                    {"ref": signed[i][0].artifact.label, "reason": f"batch refused ({status})"}
                )
            pending = pending[len(chunk) :]
    # One at a time: every entry is sent, even after a refusal (a refused amendment of another
    # principal's node leaves that node registered; a missing parent is refused by name).
    for i in pending:
        reg, envelope = signed[i]
        status, body = post(envelope)
        if status in (200, 201):
            _classify(_entry(reg), body, summary)
        else:
            reason = str(body.get("detail", f"HTTP {status}"))
            summary["skipped"].append(
                {"ref": reg.artifact.label, "reason": f"refused ({status}): {reason}"}
            )
    return summary


def _summary_text(summary: dict[str, Any]) -> None:
    output.echo(
        f"{summary['cards']} cards: {len(summary['added'])} added, "
        f"{len(summary['existing'])} already registered, {len(summary['skipped'])} skipped"
    )
    for a in summary["added"]:
        parents = "; ".join(a["parents"]) or "no parents"
        output.echo(f"  + {a['ref']}  {a['kind']}  {output.short_digest(a['digest'])}  {parents}")
    for e in summary["existing"]:
        more = f", {e['edges_added']} new edges" if e.get("edges_added") else ""
        output.echo(f"  = {e['ref']}  already registered{more}")
    for s in summary["skipped"]:
        output.echo(f"  - {s.get('path') or s.get('ref')}: {s['reason']}")


def _plan_text(summary: dict[str, Any]) -> None:
    output.echo(f"{summary['cards']} cards; would submit {len(summary['planned'])} registrations")
    for p in summary["planned"]:
        output.echo(f"  {p['ref']}  {p['kind']}  {'; '.join(p['parents']) or 'no parents'}")
    for s in summary["skipped"]:
        output.echo(f"  - {s['path']}: {s['reason']}")


@click.group("import")
def import_cli() -> None:
    """Bring in lineage and signatures from Hugging Face and OpenSSF model-signing."""


@import_cli.command("hf")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@key_file_option
@click.option("--dry-run", is_flag=True, help="Plan and print; submit nothing.")
@json_option
@click.pass_obj
def import_hf(ctx: Ctx, paths: tuple[Path, ...], key_file: Path | None, dry_run: bool) -> None:
    """Import Hugging Face model trees from model cards under PATHS.

    PATHS: model folders (README.md), folders of cards (org--name.md or org/name/README.md), a
    Hub cache repository (models--org--name) or cache root. Bases and datasets not registered
    yet become `hf:org/name` artifacts whose digest derives from the Hub id.
    """
    from lineage import hf

    try:
        plan = hf.plan_import(paths)
    except ImportError:
        fail("huggingface_hub is not installed (pip install huggingface-hub)", ExitCode.USAGE)
    if dry_run:
        summary = {
            "cards": len(plan.cards),
            "planned": [
                {
                    "ref": r.artifact.label,
                    "kind": r.artifact.kind.value,
                    "parents": [f"{p.relation.value} sha256:{p.digest}" for p in r.parents],
                }
                for r in plan.registrations
            ],
            "skipped": [{"path": s.path, "reason": s.reason} for s in plan.skipped],
        }
        output.emit(summary, _plan_text)
        return
    signer = ctx.signer(key_file)

    def send(path: str, body: Any) -> tuple[int, dict[str, Any]]:
        try:
            return 201, dict(ctx.client.post(path, body))
        except ApiError as exc:
            if exc.status in (0, 401) or exc.status >= 500:
                fail(str(exc.detail), output.exit_code_for_status(exc.status))
            return exc.status, exc.body if isinstance(exc.body, dict) else {"detail": exc.detail}

    summary = submit_plan(
        lambda env: send("/v1/attestations", env),
        plan,
        signer,
        post_batch=lambda envs: send("/v1/attestations/batch", {"envelopes": envs}),
    )
    output.emit(summary, _summary_text)
    if summary["skipped"]:
        raise SystemExit(int(ExitCode.WARN))


# ----------------------------------------------------------------------------- import oms


@import_cli.command("oms")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The model-signing bundle; default MODEL_DIR/model.sig.",
)
@click.option("--name", required=True, help="Artifact name, e.g. acme/owl-7b.")
@click.option("--version", "version", required=True, help="Artifact version, e.g. 1.")
@click.option("--parent", "parents", multiple=True, help="RELATION=REF, repeatable.")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM public key that signed the model; default: the public half of --key-file.",
)
@key_file_option
@json_option
@click.pass_obj
def import_oms(
    ctx: Ctx,
    model_dir: Path,
    signature: Path | None,
    name: str,
    version: str,
    parents: tuple[str, ...],
    public_key: Path | None,
    key_file: Path | None,
) -> None:
    """Verify MODEL_DIR against its model-signing signature and register it with the bundle."""
    from cryptography.hazmat.primitives import serialization

    from lineage.oms import OmsError, verify_model

    signer = ctx.signer(key_file)
    if public_key is not None:
        pem = public_key.read_bytes()
    else:
        pem = signer.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    try:
        check = verify_model(model_dir, signature, pem)
    except OmsError as exc:
        fail(exc.message, ExitCode.BLOCK)
    links = tuple(parse_parent(ctx, p)[0] for p in parents)
    reg = Registration(
        ArtifactRef(ArtifactKind.MODEL, name, version, check.digest),
        links,
        {"files": check.files, "size": check.size, "signed_with": "model-signing"},
    )
    envelope = sign_statement(registration_statement(reg), signer).to_json()
    answer = ctx.call(
        ctx.client.post, "/v1/imports/oms", {"bundle": check.bundle, "registration": envelope}
    )
    output.emit(
        answer,
        lambda a: output.echo(
            f"{a['artifact']['ref']}  model  {output.short_digest(a['subject_digest'])}  "
            f"{a['files']} files verified; model-signing bundle kept (signature "
            f"#{a['signature_id']}, key {output.short_digest(a['signer_keyid'] or '')})"
        ),
    )


# ----------------------------------------------------------------------------- export bom


@click.group("export")
def export_cli() -> None:
    """Export what compliance asks for: ML-BOMs (SPDX 3, CycloneDX)."""


@export_cli.command("bom")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["spdx3", "cyclonedx"]),
    required=True,
    help="SPDX 3.0.1 JSON-LD (AI, Dataset) or CycloneDX 1.6 JSON.",
)
@click.option("--signed", is_flag=True, help="Wrap it in a DSSE envelope signed by the registry.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here."
)
@click.pass_obj
def export_bom(ctx: Ctx, ref: str, fmt: str, signed: bool, out: Path | None) -> None:
    """Write the ML-BOM of REF's whole upstream lineage (stdout unless --out)."""
    art = ctx.artifact(ref)
    params: dict[str, Any] = {"format": fmt}
    if signed:
        params["signed"] = "true"
    doc = ctx.call(ctx.client.artifact, art["ref"], "bom", **params)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        output.note(f"wrote {fmt}{' (signed)' if signed else ''} BOM of {art['ref']} to {out}")


@export_cli.command("verify")
@click.argument("signed_bom", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--vkey",
    envvar="STUDBOOK_LOG_VKEY",
    default=None,
    help="The registry's log verifier key (or a file holding it) to pin; default: the key the "
    "server advertises (not pinned).",
)
@json_option
@click.pass_obj
def verify_bom(ctx: Ctx, signed_bom: Path, vkey: str | None) -> None:
    """Check a BOM written by `export bom --signed`: its signature under the registry's key.

    Offline when --vkey is given. Exits 2 (block) when the signature, the key or the statement
    does not hold.
    """
    from lineage import dsse
    from lineage.checkpoint import parse_vkey
    from lineage.errors import LineageError

    try:
        signed = json.loads(signed_bom.read_text(encoding="utf-8"))
        envelope = dsse.Envelope.from_json(signed["envelope"])
    except (OSError, ValueError, KeyError, TypeError, LineageError) as exc:
        fail(f"{signed_bom} is not a signed BOM: {exc}", ExitCode.USAGE)
    if vkey is None:
        vkey = str(ctx.call(ctx.client.get, "/v1/log")["vkey"])
        output.note(
            f"warning: trusting the log key the server advertises ({vkey}); pin it with --vkey"
        )
    elif Path(vkey).is_file():
        vkey = Path(vkey).read_text().strip()
    try:
        _, key = parse_vkey(vkey)
        kid = dsse.Verifier({dsse.keyid(key): key}).verify(
            envelope, payload_type="application/vnd.in-toto+json"
        )
        statement = json.loads(envelope.payload)
        subject = statement["subject"][0]
        predicate = statement["predicateType"]
    except (LineageError, ValueError, KeyError, IndexError, TypeError) as exc:
        fail(f"verification FAILED: {getattr(exc, 'message', exc)}", ExitCode.BLOCK)
    if predicate not in ("https://cyclonedx.org/bom", "https://spdx.dev/Document"):
        fail(f"verification FAILED: not a BOM predicate: {predicate}", ExitCode.BLOCK)
    answer = {
        "verified": True,
        "keyid": kid,
        "subject": subject,
        "predicate_type": predicate,
        "public_key": dsse.public_key_b64(key),
    }
    output.emit(
        answer,
        lambda a: output.echo(
            f"OK  {a['subject']['name']}  sha256:{a['subject']['digest']['sha256']}  "
            f"{a['predicate_type']}  signed by the log key {a['keyid'][:16]}…"
        ),
    )


COMMANDS = [import_cli, export_cli]
