"""The review report: one model's lineage, risk explanation, evidence and decisions, with every
statement's envelope and inclusion proof and the signed checkpoint they are relative to.

Why everything in one document: a governance board files the report, and an auditor must be able
to check it years later without the registry. Each statement's envelope gives the signed bytes
(`lineage.logleaf.entry_bytes` of it is the log leaf), the proof takes the leaf to the root, and
the checkpoint signs the root under the log's verifier key, which the report also carries (an
auditor should pin it from elsewhere, not trust the copy inside the report).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from lineage.dsse import b64decode

from ..artifacts import controllers as artifacts
from ..artifacts.service import ArtifactKey
from ..artifacts.service import public as artifact_public
from ..log import service as log
from ..models import (
    Artifact,
    Attestation,
    EvalResultSubject,
    EvalRun,
    LineageEdge,
    Principal,
    RiskAcceptance,
    RiskStatement,
    utcnow,
)
from ..models.findings import Finding
from ..models.log import LogEntry
from ..risk.service import risk_of
from ..weights.service import list_findings
from .schemas import ReportPublic, StatementPublic, StatementsPublic

REPORT_FORMAT = "https://studbook.dev/ReviewReport/v1"
MAX_REPORT_STATEMENTS = 500  # statements with proofs per report; the lineage bounds it anyway

_A = Artifact.__table__  # type: ignore[attr-defined]
_AT = Attestation.__table__  # type: ignore[attr-defined]
_P = Principal.__table__  # type: ignore[attr-defined]
_E = LineageEdge.__table__  # type: ignore[attr-defined]
_S = RiskStatement.__table__  # type: ignore[attr-defined]
_ACC = RiskAcceptance.__table__  # type: ignore[attr-defined]
_SUB = EvalResultSubject.__table__  # type: ignore[attr-defined]
_RUN = EvalRun.__table__  # type: ignore[attr-defined]
_LOG = LogEntry.__table__  # type: ignore[attr-defined]
_F = Finding.__table__  # type: ignore[attr-defined]
MAX_REPORT_FINDINGS = 100  # findings about the model itself; a model has a handful


def _roles_of(session: Session, ids: list[int]) -> dict[int, list[tuple[str, int, str]]]:
    """Per artifact id: (role, attestation id, summary) of every statement concerning it."""
    out: dict[int, list[tuple[str, int, str]]] = {i: [] for i in ids}
    if not ids:
        return out
    for aid, att, name, version in session.execute(
        select(_A.c.id, _A.c.attestation_id, _A.c.name, _A.c.version).where(_A.c.id.in_(ids))
    ):
        out[aid].append(("registration", att, f"registered {name}@{version}"))
    # Before the edges: a confirmation adds an edge, but it is a finding's decision first.
    other = _A.alias("other")
    for aid, att, decided, kind, status, oname, over in session.execute(
        select(
            _F.c.model_id,
            _F.c.attestation_id,
            _F.c.decision_attestation_id,
            _F.c.kind,
            _F.c.status,
            other.c.name,
            other.c.version,
        )
        .join(other, other.c.id == _F.c.other_id)
        .where(_F.c.model_id.in_(ids))
    ):
        what = kind.replace("_", " ")
        out[aid].append(("finding", att, f"finding from the weights: {what} ({oname}@{over})"))
        if decided is not None:
            out[aid].append(("finding-decision", decided, f"finding {status}: {what}"))
    for child, att, rel, pname, pver in session.execute(
        select(_E.c.child_id, _E.c.attestation_id, _E.c.relation, _A.c.name, _A.c.version)
        .join(_A, _A.c.id == _E.c.parent_id)
        .where(_E.c.child_id.in_(ids))
    ):
        out[child].append(("lineage", att, f"{rel} {pname}@{pver}"))
    for aid, att, st, trait, sev in session.execute(
        select(
            _S.c.artifact_id, _S.c.attestation_id, _S.c.statement, _S.c.trait, _S.c.severity
        ).where(_S.c.artifact_id.in_(ids))
    ):
        text = f"flag {trait!r} ({sev})" if st == "flag" else f"clearance of {trait!r}"
        out[aid].append((st, att, text))
    for aid, att, trait, exp in session.execute(
        select(_ACC.c.artifact_id, _ACC.c.attestation_id, _ACC.c.trait, _ACC.c.expires_at).where(
            _ACC.c.artifact_id.in_(ids)
        )
    ):
        out[aid].append(("acceptance", att, f"risk of {trait!r} accepted until {exp:%Y-%m-%d}"))
    for aid, att, role in session.execute(
        select(_SUB.c.artifact_id, _SUB.c.attestation_id, _SUB.c.role).where(
            _SUB.c.artifact_id.in_(ids)
        )
    ):
        out[aid].append(("eval", att, f"eval result ({role})"))
    return out


def _describe(session: Session, found: list[tuple[str, int, str]]) -> list[StatementPublic]:
    by_att: dict[int, tuple[str, str]] = {}
    for role, att, text in found:
        # One attestation can concern an artifact twice (a registration with its edges): the
        # first role read is the most specific one.
        by_att.setdefault(att, (role, text))
    if not by_att:
        return []
    rows = session.execute(
        select(
            _AT.c.id,
            _AT.c.predicate_type,
            _AT.c.signer_keyid,
            _AT.c.received_at,
            _AT.c.payload_digest,
            _P.c.name,
            _LOG.c.idx,
        )
        .join(_P, _P.c.id == _AT.c.principal_id)
        .outerjoin(_LOG, _LOG.c.attestation_id == _AT.c.id)
        .where(_AT.c.id.in_(list(by_att)))
        .order_by(_AT.c.id)
    )
    return [
        StatementPublic(
            attestation_id=r.id,
            role=by_att[r.id][0],
            predicate_type=r.predicate_type,
            principal=r.name,
            signer_keyid=r.signer_keyid,
            received_at=r.received_at,
            payload_digest=r.payload_digest,
            log_index=r.idx,
            summary=by_att[r.id][1],
        )
        for r in rows
    ]


def statements_of(session: Session, artifact: Artifact) -> StatementsPublic:
    """Who signed what about `artifact`, when, and where it is in the log."""
    assert artifact.id is not None
    data = _describe(session, _roles_of(session, [artifact.id])[artifact.id])
    return StatementsPublic(
        artifact=artifact.digest,
        artifact_ref=f"{artifact.name}@{artifact.version}",
        data=data,
        count=len(data),
    )


def _evidence(session: Session, lineage: dict[str, Any]) -> list[dict[str, Any]]:
    """Eval results concerning the model or any model upstream of it (its bases, teachers)."""
    from ..evals.service import results_for

    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    models = [n["artifact"] for n in lineage["nodes"] if n["artifact"]["kind"] == "model"]
    for node in models:
        row = session.get(Artifact, node["id"])
        if row is None:
            continue
        for r in results_for(session, row).data:
            if r.attestation_id in seen:
                continue
            seen.add(r.attestation_id)
            run_id = session.scalar(
                select(_RUN.c.id).where(_RUN.c.result_attestation_id == r.attestation_id)
            )
            item = r.model_dump(mode="json")
            item["concerns"] = node["ref"]
            item["eval_run"] = run_id
            item["plot_url"] = f"/v1/evals/{run_id}/plot" if run_id is not None else None
            out.append(item)
    return out


def artifact_ref(artifact: Artifact) -> str:
    """`name@version`."""
    return f"{artifact.name}@{artifact.version}"


def build(session: Session, artifact: Artifact) -> ReportPublic:
    """The review report of `artifact` (see the module docstring)."""
    assert artifact.id is not None
    key = ArtifactKey(artifact.id, artifact.digest, artifact.name, artifact.version)
    lineage = artifacts.KEY_VIEWS["lineage"](session, key, {"direction": "up", "depth": "64"})
    lineage_json = lineage.model_dump(mode="json")
    risk = risk_of(session, artifact).model_dump(mode="json")
    node_ids = [n["artifact"]["id"] for n in lineage_json["nodes"]]
    roles = _roles_of(session, node_ids)
    mine = _describe(session, roles.get(artifact.id, []))
    decisions = [
        s.model_dump(mode="json") | {"artifact_ref": ref}
        for aid, ref in ((n["artifact"]["id"], n["artifact"]["ref"]) for n in lineage_json["nodes"])
        for s in _describe(
            session, [x for x in roles[aid] if x[0] in ("flag", "clearance", "acceptance")]
        )
    ]
    evidence = _evidence(session, lineage_json)
    findings = [
        f.model_dump(mode="json")
        for f in list_findings(session, None, artifact_ref(artifact), MAX_REPORT_FINDINGS, 0).data
    ]
    acceptances = [
        {
            "attestation_id": r.attestation_id,
            "trait": r.trait,
            "reason": r.reason,
            "expires_at": (
                r.expires_at if r.expires_at.tzinfo else r.expires_at.replace(tzinfo=UTC)
            ).isoformat(),
        }
        for r in session.execute(select(_ACC).where(_ACC.c.artifact_id == artifact.id))
    ]
    # attestation id -> (what it is, the artifact it is about), most specific first
    cited: dict[int, tuple[str, str]] = {}
    ref_of = {n["artifact"]["digest"]: n["artifact"]["ref"] for n in lineage_json["nodes"]}
    for s in mine:
        cited.setdefault(s.attestation_id, (s.role, artifact_ref(artifact)))
    for n in lineage_json["nodes"]:
        cited.setdefault(n["artifact"]["attestation_id"], ("registration", n["artifact"]["ref"]))
    for e in lineage_json["edges"]:
        cited.setdefault(e["attestation_id"], ("lineage", ref_of.get(e["child"], e["child"])))
    for d in decisions:
        cited.setdefault(d["attestation_id"], (d["role"], d["artifact_ref"]))
    for ev in evidence:
        cited.setdefault(ev["attestation_id"], ("eval", ev["concerns"]))
    for f in findings:
        cited.setdefault(f["attestation_id"], ("finding", artifact_ref(artifact)))
        if f["decision_attestation_id"] is not None:
            cited.setdefault(
                f["decision_attestation_id"], ("finding-decision", artifact_ref(artifact))
            )
    info = log.info(session, log.notary_for(session))
    notary = log.notary_for(session)
    described = {
        s.attestation_id: s
        for s in _describe(session, [(role, att, "") for att, (role, _) in cited.items()])
    }
    statements: list[dict[str, Any]] = []
    for att_id in sorted(cited)[:MAX_REPORT_STATEMENTS]:
        att = session.get(Attestation, att_id)
        meta = described.get(att_id)
        if att is None or meta is None:
            continue
        proof = (
            log.inclusion(session, notary, index=meta.log_index, size=info.tree_size).model_dump()
            if meta.log_index is not None and meta.log_index < info.tree_size
            else None
        )
        statements.append(
            meta.model_dump(mode="json", exclude={"summary"})
            | {
                "about": cited[att_id][1],
                "envelope": att.envelope,
                "statement": json.loads(b64decode(att.envelope["payload"], field="payload")),
                "inclusion_proof": proof,
            }
        )
    owner = next((s.principal for s in mine if s.role == "registration"), None)
    return ReportPublic(
        format=REPORT_FORMAT,
        generated_at=utcnow(),
        artifact=artifact_public(session, artifact).model_dump(mode="json"),
        owner=owner,
        lineage=lineage_json,
        risk=risk,
        acceptances=acceptances,
        evidence=evidence,
        findings=findings,
        decisions=decisions,
        statements=statements,
        log=info.model_dump(),
    )
