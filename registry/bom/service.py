"""ML-BOM export: a model's whole upstream lineage with its risk, as SPDX 3 or CycloneDX.

The registry's answer is gathered once into a `BomGraph` (artifacts, edges, flags in force,
at-risk marks with their explanation paths) and handed to a pure writer per format, so both
formats always say the same thing.

Signed BOMs. A BOM travels: a compliance team files it, an auditor reads it months later. So it
can be wrapped in a DSSE envelope holding an in-toto Statement v1 whose subject is the model's
digest and whose predicate is the BOM, with the predicate type the format's project publishes
(`https://cyclonedx.org/bom`, `https://spdx.dev/Document`). It is signed with the server's log
key, reached only through the log service's `notary_for`: that key is already the registry's
published identity (its public half is in every checkpoint's verifier key), and DSSE's
pre-authentication encoding separates these signatures from checkpoint signatures, which sign
a different byte string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from lineage import dsse
from lineage.statements import PAYLOAD_TYPE, STATEMENT_TYPE, canonical_json
from lineage.types import ArtifactKind, Relation

from ..artifacts import service as artifacts
from ..artifacts.schemas import Direction
from ..errors import BadRequestError
from ..log.service import notary_for
from ..models import Artifact, Attestation, Principal
from ..risk import service as risk
from .graph import BomEdge, BomGraph, BomNode, BomRisk
from .schemas import BomFormat, SignedBomPublic

__all__ = ["build_graph", "export", "parse_format", "parse_signed", "sign_bom"]


def parse_format(raw: str | None) -> BomFormat:
    """The `format` query parameter.

    Raises:
        BadRequestError: missing or not one of the formats (field `format`).
    """
    names = ", ".join(f.value for f in BomFormat)
    if raw is None:
        raise BadRequestError(f"format is required: one of {names}", field="format")
    try:
        return BomFormat(raw.strip().lower())
    except ValueError as exc:
        raise BadRequestError(
            f"format must be one of {names}; got {raw!r}", field="format"
        ) from exc


def parse_signed(raw: str | None) -> bool:
    """The `signed` query parameter (`true`/`false`, `1`/`0`; absent is false).

    Raises:
        BadRequestError: any other value (field `signed`).
    """
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no", ""}:
        return False
    raise BadRequestError(f"signed must be true or false; got {raw!r}", field="signed")


def _registrants(session: Session, attestation_ids: set[int]) -> dict[int, str]:
    ids = list(attestation_ids)
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Attestation.id, Principal.name)
            .join(Principal, Principal.id == Attestation.principal_id)  # type: ignore[arg-type]
            .where(Attestation.id.in_(ids[i : i + 500]))  # type: ignore[union-attr]
        )
        out.update({a: n for a, n in rows})
    return out


def build_graph(session: Session, root: Artifact) -> BomGraph:
    """Gather `root`'s whole upstream lineage (up to the lineage walk's limits) and its risk."""
    walk = artifacts.lineage(session, root, Direction.UP, artifacts.MAX_DEPTH)
    names = _registrants(session, {n.artifact.attestation_id for n in walk.nodes})
    nodes = tuple(
        BomNode(
            digest=n.artifact.digest,
            kind=ArtifactKind(n.artifact.kind),
            name=n.artifact.name,
            version=n.artifact.version,
            opaque=n.artifact.opaque,
            registered_by=names.get(n.artifact.attestation_id, "unknown"),
            registered_at=n.artifact.created_at,
            metadata=dict(n.artifact.metadata),
        )
        for n in walk.nodes
    )
    edges = tuple(BomEdge(e.child, e.parent, Relation(e.relation)) for e in walk.edges)
    ids = [n.artifact.id for n in walk.nodes]
    flagged, marked = risk.node_marks(session, ids)
    risks: list[BomRisk] = []
    severity: dict[tuple[str, str], str] = {}
    answers = []
    for node_id in sorted(set(flagged) | set(marked)):
        row = session.get(Artifact, node_id)
        assert row is not None  # it was just walked
        answers.append(risk.risk_of(session, row))
    for answer in answers:
        for f in answer.flags:
            severity[(f.artifact, f.trait)] = f.severity.value
            risks.append(
                BomRisk(
                    artifact=f.artifact,
                    trait=f.trait,
                    status="flagged",
                    severity=f.severity.value,
                    reason=f.reason,
                    evidence=tuple(f.evidence),
                    source=f.artifact,
                )
            )
    for answer in answers:
        for m in answer.at_risk:
            risks.append(
                BomRisk(
                    artifact=m.model,
                    trait=m.trait,
                    status="at_risk",
                    severity=severity.get((m.source, m.trait), "high"),
                    reason=f"inherited from {m.source_ref} via {m.via_ref}",
                    evidence=(),
                    source=m.source,
                    path=tuple((p.child, p.parent, p.relation.value) for p in m.path),
                    shared_base=tuple(m.shared_base),
                )
            )
    return BomGraph(
        root=root.digest,
        nodes=nodes,
        edges=edges,
        risks=tuple(risks),
        generated_at=datetime.now(UTC).replace(microsecond=0),
        truncated=walk.truncated,
    )


def export(session: Session, root: Artifact, fmt: BomFormat) -> dict[str, Any]:
    """The BOM document of `root` in `fmt`."""
    graph = build_graph(session, root)
    match fmt:
        case BomFormat.SPDX3:
            from .spdx import to_spdx3

            return to_spdx3(graph)
        case BomFormat.CYCLONEDX:
            from .cyclonedx import to_cyclonedx

            return to_cyclonedx(graph)


def sign_bom(
    session: Session, root: Artifact, fmt: BomFormat, document: dict[str, Any]
) -> SignedBomPublic:
    """Wrap `document` in an in-toto statement about `root` and sign it with the log key."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{root.name}@{root.version}", "digest": {"sha256": root.digest}}],
        "predicateType": fmt.predicate_type,
        "predicate": document,
    }
    key = notary_for(session).private_key
    signer = dsse.Signer(key)
    envelope = signer.sign(PAYLOAD_TYPE, canonical_json(statement))
    return SignedBomPublic(
        format=fmt,
        predicate_type=fmt.predicate_type,
        keyid=dsse.keyid(key.public_key()),
        public_key=dsse.public_key_b64(key.public_key()),
        envelope=envelope.to_json(),
    )
