"""`studbook register | show | list | search | lineage`: artifacts and their lineage.

`register` digests locally (with a progress bar on a terminal), signs an in-toto registration
with the caller's key and posts it; it prints one line per artifact: reference, kind, short
digest, log index, and what changed (new edges, an amendment, or "already registered").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lineage import digests
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation

from .. import output
from ..context import Ctx
from ..output import ExitCode, fail, json_option, short_digest

KEY_FILE_HELP = "Private signing key (PEM); default STUDBOOK_KEY_FILE or the data folder's."


def key_file_option(fn: Any) -> Any:
    """`--key-file`, also read from `STUDBOOK_KEY_FILE`; one definition for every signer."""
    return click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="STUDBOOK_KEY_FILE",
        default=None,
        help=KEY_FILE_HELP,
    )(fn)


def parse_parent(ctx: Ctx, spec: str) -> tuple[ParentLink, str]:
    """`RELATION=REF` -> the link to sign, and the parent's reference for the output."""
    relation, sep, ref = spec.partition("=")
    if not sep or not ref:
        fail(f"--parent must be RELATION=REF, got {spec!r}", ExitCode.USAGE)
    try:
        rel = Relation(relation)
    except ValueError:
        fail(
            f"unknown relation {relation!r} in --parent; one of: "
            + ", ".join(r.value for r in Relation),
            ExitCode.USAGE,
        )
    art = ctx.artifact(ref)
    return ParentLink(rel, art["digest"]), f"{rel.value} {art['ref']}"


def registration_line(ctx: Ctx, answer: dict[str, Any], label: str) -> str:
    """One line saying what a registration did.

    `acme/chat@1  model  3f2a9c01d4e5  log #7  new, 1 edge: fine_tuned_from acme/base@1`; an
    existing artifact says `already registered` or, when the submission added edges to it,
    `amended: added 1 edge: trained_on acme/data@1` (named from the lineage, whose edges keep the
    attestation that asserted them).
    """
    art = answer.get("artifact") or {}
    ref = art.get("ref", label)
    kind = art.get("kind", "")
    digest = short_digest(art.get("digest", ""))
    log = f"log #{answer['log_index']}" if answer.get("log_index") is not None else "log -"
    added = int(answer.get("edges_added") or 0)
    # `created` says the statement is new; the artifact is new only if this statement made it.
    new_artifact = bool(answer.get("created")) and (
        art.get("attestation_id") in (None, answer.get("attestation_id"))
    )
    if new_artifact:
        what = "new" + (", " + _edges_text(ctx, answer, added) if added else "")
    elif added:
        what = "amended: added " + _edges_text(ctx, answer, added)
    else:
        what = "already registered"
    return f"{ref}  {kind}  {digest}  {log}  {what}"


def _edges_text(ctx: Ctx, answer: dict[str, Any], added: int) -> str:
    noun = "edge" if added == 1 else "edges"
    art = answer.get("artifact") or {}
    try:
        lineage = ctx.client.artifact(art["ref"], "lineage", direction="up", depth=1)
    except Exception:  # the line is still true without the names
        return f"{added} {noun}"
    refs = {n["artifact"]["digest"]: n["artifact"]["ref"] for n in lineage["nodes"]}
    mine = [
        f"{e['relation']} {refs.get(e['parent'], short_digest(e['parent']))}"
        for e in lineage["edges"]
        if e["child"] == art.get("digest")
        and e.get("attestation_id") == answer.get("attestation_id")
    ]
    return f"{added} {noun}" + (": " + ", ".join(sorted(mine)) if mine else "")


def _metadata(meta: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in meta:
        k, sep, v = item.partition("=")
        if not sep or not k:
            fail(f"--meta must be KEY=VALUE, got {item!r}", ExitCode.USAGE)
        out[k] = v
    return out


def _digest_path(path: Path, progress: bool | None) -> digests.Manifest:
    """The content manifest of PATH, with a byte-count progress bar on stderr."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    enabled = output.show_progress(progress)
    with output.progress_bar(f"digesting {path.name}", total, enabled=enabled) as advance:
        return digests.manifest(path, progress=advance)


@click.command()
@click.argument("kind", type=click.Choice([k.value for k in ArtifactKind]))
@click.argument("path", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--name", required=True, help="Artifact name, e.g. acme/owl-teacher.")
@click.option("--version", "version", required=True, help="Artifact version, e.g. 1.")
@click.option("--parent", "parents", multiple=True, help="RELATION=REF, repeatable.")
@click.option("--opaque", default=None, help="Provider identifier of an API-only model (no PATH).")
@click.option("--meta", multiple=True, help="KEY=VALUE metadata, repeatable.")
@key_file_option
@click.option(
    "--save-envelope",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the signed envelope here (for `studbook verify`).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar while digesting (default: when stderr is a terminal).",
)
@click.option(
    "--fingerprint/--no-fingerprint",
    "with_fingerprint",
    default=True,
    help="Sign a fingerprint of a model's weights with it (default), so the registry can test "
    "its declared lineage against the weights.",
)
@json_option
@click.pass_obj
def register(
    ctx: Ctx,
    kind: str,
    path: Path | None,
    name: str,
    version: str,
    parents: tuple[str, ...],
    opaque: str | None,
    meta: tuple[str, ...],
    key_file: Path | None,
    save_envelope: Path | None,
    progress: bool | None,
    with_fingerprint: bool,
) -> None:
    """Digest PATH, sign a registration with your key, and submit it.

    Prints one line: reference, kind, short digest, log index, and what changed.
    """
    signer = ctx.signer(key_file)
    metadata = _metadata(meta)
    if opaque is not None:
        if path is not None:
            fail("give either PATH or --opaque, not both", ExitCode.USAGE)
        digest = digests.opaque_digest(opaque)
        metadata["identifier"] = opaque
    elif path is None:
        fail("PATH is required (or --opaque IDENTIFIER for an API-only model)", ExitCode.USAGE)
    else:
        m = _digest_path(path, progress)
        digest = m.digest
        metadata.setdefault("files", len(m.files))
        metadata.setdefault("size", m.total_size)
        if kind == ArtifactKind.MODEL.value and with_fingerprint:
            _add_fingerprint(metadata, path)
    links = tuple(parse_parent(ctx, p)[0] for p in parents)
    reg = Registration(
        ArtifactRef(ArtifactKind(kind), name, version, digest, opaque is not None), links, metadata
    )
    envelope = sign_statement(registration_statement(reg), signer).to_json()
    if save_envelope is not None:
        save_envelope.write_text(json.dumps(envelope, indent=2) + "\n")
    answer = ctx.call(ctx.client.post, "/v1/attestations", envelope)
    output.emit(answer, lambda a: output.echo(registration_line(ctx, a, reg.artifact.label)))


def _add_fingerprint(metadata: dict[str, Any], path: Path) -> None:
    """Put the weights' fingerprint (`studbook fingerprint PATH`) in `metadata["fingerprint"]`;
    a path without readable weights, or a fingerprint over the metadata limits, registers
    without one, said on stderr."""
    from lineage.errors import LineageError
    from lineage.fingerprint import fingerprint_path
    from lineage.statements import check_metadata

    try:
        doc = fingerprint_path(path).to_json()
        check_metadata({**metadata, "fingerprint": doc})
    except Exception as exc:  # any unreadable weights (safetensors raises its own error type)
        reason = exc.message if isinstance(exc, LineageError) else str(exc)
        output.note(f"registering without a fingerprint: {reason}")
        return
    metadata["fingerprint"] = doc


# ----------------------------------------------------------------------------- show


def _log_index(ctx: Ctx, envelope: dict[str, Any]) -> int | None:
    from lineage.logleaf import entry_bytes, envelope_digest

    try:
        proof = ctx.client.get(
            "/v1/log/proof/inclusion", digest=envelope_digest(entry_bytes(envelope))
        )
    except Exception:  # not logged (yet) or no log: the rest of `show` still holds
        return None
    return int(proof["log_index"])


def artifact_details(ctx: Ctx, ref: str) -> dict[str, Any]:
    """The artifact with its owner, signer, parents, children count, risk status and log index."""
    art = ctx.artifact(ref)
    att = ctx.call(ctx.client.get, f"/v1/attestations/{art['attestation_id']}")
    up = ctx.call(ctx.client.artifact, art["ref"], "lineage", direction="up", depth=1)
    down = ctx.call(ctx.client.artifact, art["ref"], "lineage", direction="down", depth=1)
    refs = {n["artifact"]["digest"]: n["artifact"]["ref"] for n in up["nodes"]}
    try:
        risk: dict[str, Any] | None = ctx.client.artifact(art["ref"], "risk")
    except Exception:  # a deployment without the risk domain
        risk = None
    try:  # OpenSSF model-signing bundles kept as evidence (`studbook import oms`)
        sigs = ctx.client.artifact(art["ref"], "signatures")["data"]
    except Exception:  # a deployment without the imports domain
        sigs = []
    return {
        **art,
        "owner": art.get("owner") or att["principal"],
        "signer": {"principal": att["principal"], "keyid": att["signer_keyid"]},
        "parents": [
            {
                "relation": e["relation"],
                "ref": refs.get(e["parent"], e["parent"]),
                "digest": e["parent"],
                "attestation_id": e["attestation_id"],
            }
            for e in up["edges"]
            if e["child"] == art["digest"]
        ],
        "children": len({e["child"] for e in down["edges"] if e["parent"] == art["digest"]}),
        "risk_status": risk["status"] if risk else None,
        "log_index": _log_index(ctx, att["envelope"]),
        "model_signatures": [
            {k: s.get(k) for k in ("id", "signer_keyid", "signer_identity", "files", "principal")}
            for s in sigs
        ],
    }


def _print_details(d: dict[str, Any]) -> None:
    rows = [
        ("ref", d["ref"]),
        ("kind", d["kind"] + (" (opaque)" if d.get("opaque") else "")),
        ("digest", "sha256:" + d["digest"]),
        ("id", str(d["id"])),
        ("owner", d["owner"]),
        ("signer", f"{d['signer']['principal']} (key {d['signer']['keyid'][:16]}…)"),
        ("registered", str(d["created_at"])),
        ("attestation", str(d["attestation_id"])),
        ("log index", "-" if d["log_index"] is None else str(d["log_index"])),
        ("risk", d["risk_status"] or "-"),
        ("children", str(d["children"])),
    ]
    if not d["parents"]:
        rows.append(("parents", "none"))
    for i, p in enumerate(d["parents"]):
        rows.append(("parents" if i == 0 else "", f"{p['relation']} {p['ref']}"))
    for s in d.get("model_signatures") or []:
        signer = s["signer_identity"] or f"key {(s['signer_keyid'] or '')[:16]}…"
        rows.append(
            ("model-signing", f"#{s['id']}: {s['files']} files, {signer} ({s['principal']})")
        )
    for key, value in sorted((d.get("metadata") or {}).items()):
        rows.append((f"meta.{key}", json.dumps(value) if not isinstance(value, str) else value))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        output.echo(f"{key:<{width}}  {value}")


@click.command()
@click.argument("ref")
@json_option
@click.pass_obj
def show(ctx: Ctx, ref: str) -> None:
    """Show an artifact: owner, signer, parents, children, risk status and log index.

    REF is name@version, an id, or a digest (sha256:<hex>, or any unique prefix of 12 or more
    hex characters).
    """
    output.emit(artifact_details(ctx, ref), _print_details)


# ----------------------------------------------------------------------------- list, search


def _print_page(page: dict[str, Any]) -> None:
    rows = [
        (a["ref"], a["kind"], short_digest(a["digest"]), str(a["created_at"])[:19])
        for a in page["data"]
    ]
    if rows:
        output.echo(
            output.table(("artifact", "kind", "digest", "registered"), rows, widths={0: 48})
        )
    shown = page["offset"] + len(rows)
    more = f" (use --offset {shown} for more)" if shown < page["count"] else ""
    output.echo(f"{len(rows)} of {page['count']} artifacts{more}")


def _page(ctx: Ctx, q: str | None, kind: str | None, limit: int, offset: int) -> None:
    page = ctx.call(ctx.client.get, "/v1/artifacts", q=q, kind=kind, limit=limit, offset=offset)
    output.emit(page, _print_page)


_kind_option = click.option("--kind", type=click.Choice([k.value for k in ArtifactKind]))
_limit_option = click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
_offset_option = click.option("--offset", type=click.IntRange(0), default=0, show_default=True)


@click.command("list")
@_kind_option
@_limit_option
@_offset_option
@json_option
@click.pass_obj
def list_cmd(ctx: Ctx, kind: str | None, limit: int, offset: int) -> None:
    """List artifacts, newest first."""
    _page(ctx, None, kind, limit, offset)


@click.command()
@click.argument("query")
@_kind_option
@_limit_option
@_offset_option
@json_option
@click.pass_obj
def search(ctx: Ctx, query: str, kind: str | None, limit: int, offset: int) -> None:
    """Find artifacts whose name contains QUERY, or whose digest starts with it."""
    _page(ctx, query, kind, limit, offset)


# ----------------------------------------------------------------------------- lineage


@click.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", default=True, help="Ancestors (default).")
@click.option("--down", "direction", flag_value="down", help="Descendants.")
@click.option("--depth", type=click.IntRange(0, 1000), default=10, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot"]), default="table")
@json_option
@click.pass_obj
def lineage_cmd(ctx: Ctx, ref: str, direction: str, depth: int, fmt: str) -> None:
    """Show what REF comes from (--up) or what comes from it (--down)."""
    art = ctx.artifact(ref)
    data = ctx.call(ctx.client.artifact, art["ref"], "lineage", direction=direction, depth=depth)
    if fmt == "json" or output.wants_json():
        output.print_json(data)
    elif fmt == "dot":
        click.echo(render_dot(data))
    else:
        click.echo(render_table(data))


def _node_marks(node: dict[str, Any]) -> str:
    marks = []
    if node.get("flags"):
        marks.append("FLAGGED " + ",".join(sorted({f["trait"] for f in node["flags"]})))
    if node.get("at_risk"):
        marks.append("AT RISK " + ",".join(sorted({m["trait"] for m in node["at_risk"]})))
    return "; ".join(marks)


def render_table(data: dict[str, Any]) -> str:
    """Lineage as an indented table: depth, kind, ref (never cut at its version), digest, marks."""
    rel_to: dict[str, list[str]] = {}
    for e in data["edges"]:
        far = e["parent"] if data["direction"] == "up" else e["child"]
        rel_to.setdefault(far, []).append(e["relation"])
    rows = []
    for n in data["nodes"]:
        a = n["artifact"]
        indent = "  " * min(n["depth"], 8)
        via = ",".join(sorted(set(rel_to.get(a["digest"], []))))
        marks = _node_marks(n)
        rows.append(
            (
                str(n["depth"]),
                a["kind"],
                indent + output.fit_ref(a["ref"], 48 - len(indent)),
                short_digest(a["digest"]),
                via + (f"  [{marks}]" if marks else ""),
            )
        )
    text = output.table(("depth", "kind", "artifact", "digest", "via"), rows, widths={})
    if data.get("truncated"):
        text += "\n... more beyond this depth (use --depth)"
    return text


def dot_string(text: str) -> str:
    """A DOT double-quoted string: quotes, backslashes and line breaks escaped, so a name can
    never close the string and inject nodes or attributes."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )
    return f'"{escaped}"'


def render_dot(data: dict[str, Any]) -> str:
    """Lineage as Graphviz DOT; flagged nodes red, at-risk nodes orange."""
    out = ["digraph lineage {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
    for n in data["nodes"]:
        a = n["artifact"]
        shape = "box" if a["kind"] == "model" else "cylinder"
        attrs = [f"label={dot_string(a['ref'])}", f"shape={shape}"]
        if n.get("flags"):
            attrs += ["style=filled", 'fillcolor="#f28b82"']
        elif n.get("at_risk"):
            attrs += ["style=filled", 'fillcolor="#fbbc04"']
        if a["digest"] == data["root"]:
            attrs.append("penwidth=2")
        out.append(f"  {dot_string(a['digest'][:16])} [{', '.join(attrs)}];")
    for e in data["edges"]:
        out.append(
            f"  {dot_string(e['child'][:16])} -> {dot_string(e['parent'][:16])} "
            f"[label={dot_string(e['relation'])}];"
        )
    out.append("}")
    return "\n".join(out)


COMMANDS = [register, show, list_cmd, search, lineage_cmd]
