"""Weights as evidence: fingerprints at registration, shared-base checks, findings and decisions.

**At registration** (`index_registration`, an after-accept hook): a model whose registration
signs a fingerprint (`metadata.fingerprint`, the JSON form of `lineage.fingerprint.Fingerprint`)
is checked (400 naming the field for a malformed one, or for one on a dataset or an opaque model)
and indexed in `model_fingerprints` by scheme and domain. The hook also keeps the index's `root`
column (no weights parent) current when a registration or a confirmed finding adds a weights edge.
It derives, so the audit's replay runs it too.

**The test** (`test_registration`, exempt from replays: it records, like the log) runs just before
the ingest transaction commits, after the registration's own log leaf, so the finding statements
follow it in the log (a batch appends its leaves after every hook; the test waits for that too).
A new fingerprinted model is tested against

- each declared weights-lineage parent that has a fingerprint (`prompted_from` excluded: a
  prompted model has its parent's weights by definition): comparable and not shared is a
  `declared_parent_contradicted` finding;
- root models of the same scheme and domain registered before it and not among its declared
  weights ancestors (the `ROOT_CANDIDATES` most recent, and as many of the most recent that have
  a weights child): shared is an `undeclared_shared_base` finding.

An amendment that declares new weights parents has those tested against the model's stored
fingerprint. A pair gets one finding of each kind.

The work is bounded: candidates are read by index, their Grams are cached per process, the
statistic is computed for all of them at once (`lineage.findings.screen`), and the permutation
test (`PERMUTATIONS` relabellings, fixed here) runs only where it can change the answer: for at
most `MAX_PARENT_TESTS` declared parents and for the `MAX_ROOT_TESTS` roots with the highest
statistic at or above `MIN_EFFECT` (under it, "shared" is impossible).

**A finding** is a statement the registry signs with the transparency log's key, stored as an
attestation of the registry's own principal (`SERVER_PRINCIPAL`, whose one key is the log key,
registered with its proof of possession like any key) and appended to the log in the same
transaction, so the audit verifies and replays it like any other entry: its handler
(`apply_finding`) rebuilds the `findings` row. No API caller can submit one: the predicate needs
the admin role and the handler accepts it only from the registry's principal (a viewer).

**Decisions** are reviewers' signed statements (`apply_decision`): a confirmation of an undeclared
shared base adds the `initialized_from` edge model -> base, asserted by that statement, and hands
it to the risk hook like a registration's new edge, so the model becomes at risk where the rule
says so; a confirmed contradiction is recorded as decided (edges are never removed); a
dismissal needs a reason. A finding is decided once.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, event, func, insert, select, true, update
from sqlmodel import Session

from lineage import dsse
from lineage.findings import (
    CONFIRMATION_PREDICATE,
    DISMISSAL_PREDICATE,
    FINDING_PREDICATE,
    FindingKind,
    FindingStatus,
    finding_statement,
    parse_decision,
    parse_finding,
    screen,
)
from lineage.fingerprint import (
    MIN_EFFECT,
    PERMUTATIONS,
    Comparison,
    Fingerprint,
    FingerprintError,
    shared_base,
)
from lineage.logleaf import entry_bytes
from lineage.statements import (
    REGISTRATION_PREDICATE,
    VerifiedStatement,
    sign_statement,
    verify_envelope,
)
from lineage.types import Relation

from ..artifacts import service as artifacts
from ..auth import Role
from ..errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    UnprocessableError,
)
from ..keys.service import REGISTRY_PRINCIPAL
from ..models import Artifact, Attestation, LineageEdge, Principal, SigningKey, utcnow
from ..models.findings import Finding, ModelFingerprint
from ..models.log import LogEntry
from ..models.risk import WeightsAncestor
from .schemas import FindingPublic, FindingsPublic, SharedBasePublic

__all__ = [
    "DECISION_PREDICATES",
    "FINDING_PREDICATE",
    "MAX_INDICES",
    "MAX_PARENT_TESTS",
    "MAX_ROOT_TESTS",
    "ROOT_CANDIDATES",
    "SERVER_PRINCIPAL",
    "apply_decision",
    "apply_finding",
    "compare",
    "finding_rows",
    "fingerprint_rows",
    "get_finding",
    "index_registration",
    "list_findings",
    "test_registration",
]

log = logging.getLogger("studbook.weights")

SERVER_PRINCIPAL = REGISTRY_PRINCIPAL
"""The principal the registry's own statements (findings) are attested by; its key is the log's."""
ROOT_CANDIDATES = 200
"""Most recent root models of the same input space a new model is tested against, and as many
again of the most recent roots that have a weights child (the bases people build on)."""
MAX_ROOT_TESTS = 8
"""Roots (highest statistic first, at or above `MIN_EFFECT`) given the permutation test."""
MAX_PARENT_TESTS = 16
"""Declared weights parents given the permutation test."""
MAX_INDICES = 256
"""Inputs a fingerprint sent to `POST /v1/checks/shared-base` may hold (what `fingerprint_path`
produces at most); the permutation test's cost grows with their square."""
DECISION_PREDICATES = (CONFIRMATION_PREDICATE, DISMISSAL_PREDICATE)
FINGERPRINT_FIELD = "predicate.artifact.metadata.fingerprint"

_A = Artifact.__table__  # type: ignore[attr-defined]
_E = LineageEdge.__table__  # type: ignore[attr-defined]
_ATT = Attestation.__table__  # type: ignore[attr-defined]
_F = Finding.__table__  # type: ignore[attr-defined]
_MF = ModelFingerprint.__table__  # type: ignore[attr-defined]
_WA = WeightsAncestor.__table__  # type: ignore[attr-defined]
_LOG = LogEntry.__table__  # type: ignore[attr-defined]
_P = Principal.__table__  # type: ignore[attr-defined]
_WEIGHTS = tuple(r.value for r in Relation if r.is_weights)
_SHARES_BY_DEFINITION = {Relation.PROMPTED_FROM.value}
_PENDING = "studbook.weights.pending"
_OUTCOME_KEY = "_fingerprint"


# ----------------------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class _Cached:
    scheme: str
    domain: int
    indices: tuple[int, ...]
    gram: Any  # float32 numpy vector: float16 values convert exactly

    def fingerprint(self) -> Fingerprint:
        return Fingerprint(
            self.scheme, self.domain, self.indices, tuple(float(v) for v in self.gram), ""
        )


_CACHE: OrderedDict[str, _Cached] = OrderedDict()
_CACHE_SIZE = 1024  # 18 KiB each for K = 96


def content_key(fp: Fingerprint) -> str:
    """sha256 of what a fingerprint says (scheme, domain, inputs and the float16 Gram): the
    index stores it, so candidates found in the cache are never read from their metadata."""
    import numpy as np

    head = repr((fp.scheme, fp.domain, list(fp.indices))).encode()
    return hashlib.sha256(head + np.asarray(fp.gram, dtype="<f2").tobytes()).hexdigest()


def _cached(key: str) -> _Cached | None:
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
    return hit


def _remember(key: str, doc: object) -> _Cached | None:
    """Parse a candidate's fingerprint (from its metadata) into the per-process cache."""
    try:
        fp = Fingerprint.from_json(doc)
    except FingerprintError:
        return None
    import numpy as np

    entry = _Cached(fp.scheme, fp.domain, fp.indices, np.asarray(fp.gram, dtype=np.float32))
    _CACHE[key] = entry
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry


def _registration_fingerprint(verified: VerifiedStatement) -> Fingerprint | None:
    """The fingerprint a registration signs, checked.

    Raises:
        BadRequestError: malformed, or on a dataset or an opaque model (field named).
    """
    artifact = verified.statement.get("predicate", {}).get("artifact", {})
    metadata = artifact.get("metadata") or {}
    doc = metadata.get("fingerprint") if isinstance(metadata, dict) else None
    if doc is None:
        return None
    if artifact.get("kind") != "model" or artifact.get("opaque"):
        raise BadRequestError(
            "only a model with weights has a fingerprint (not a dataset or an opaque model)",
            field=FINGERPRINT_FIELD,
        )
    try:
        return Fingerprint.from_json(doc)
    except FingerprintError as exc:
        raise BadRequestError(f"{exc.message}", field=FINGERPRINT_FIELD) from exc


def index_registration(
    session: Session, attestation: Attestation, verified: VerifiedStatement, outcome: dict[str, Any]
) -> None:
    """AFTER_ACCEPT hook (derives; replays run it): index a new model's fingerprint, keep the
    `root` column current, and hand a new model's fingerprint to `test_registration`."""
    new_weights = {int(c) for c, _, r in outcome.get("new_edges") or () if Relation(r).is_weights}
    if new_weights and not outcome.get("created"):  # a new model has no index row yet
        session.execute(
            update(_MF).where(_MF.c.artifact_id.in_(sorted(new_weights))).values(root=False)
        )
    if verified.predicate_type != REGISTRATION_PREDICATE or not outcome.get("created"):
        return
    fp = _registration_fingerprint(verified)
    if fp is None:
        return
    model_id = int(outcome["artifact_id"])
    session.execute(
        insert(_MF).values(
            artifact_id=model_id,
            scheme=fp.scheme,
            domain=fp.domain,
            root=model_id not in new_weights,
            content_sha256=content_key(fp),
        )
    )
    outcome[_OUTCOME_KEY] = fp


def test_registration(
    session: Session, attestation: Attestation, verified: VerifiedStatement, outcome: dict[str, Any]
) -> None:
    """AFTER_ACCEPT hook (records; exempt from replays): queue the shared-base tests of a new
    fingerprinted model. They run before the transaction commits (`_run_pending`), once the
    registration's own log leaf is written, so the findings follow it in the log."""
    fp = outcome.get(_OUTCOME_KEY)
    if isinstance(fp, Fingerprint):
        pending = session.info.setdefault(_PENDING, [])
        pending.append(
            (attestation.payload_digest, int(outcome["artifact_id"]), fp, _declared(outcome))
        )
    elif (
        verified.predicate_type == REGISTRATION_PREDICATE
        and not outcome.get("created")
        and _declared(outcome)
    ):
        # An amendment declaring new weights parents: those claims are tested too (against
        # the model's stored fingerprint, if it has one); the roots were tested when it came.
        pending = session.info.setdefault(_PENDING, [])
        pending.append(
            (attestation.payload_digest, int(outcome["artifact_id"]), None, _declared(outcome))
        )


def _declared(outcome: dict[str, Any]) -> list[tuple[int, str]]:
    return [
        (int(p), Relation(r).value)
        for _, p, r in outcome.get("new_edges") or ()
        if Relation(r).is_weights and Relation(r).value not in _SHARES_BY_DEFINITION
    ]


@event.listens_for(Session, "before_commit")
def _run_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for registration, model_id, fp, declared in pending or ():
        if fp is None:  # an amendment: the model's own stored fingerprint, if any
            own = _comparable(session, _candidates_rows(session, [model_id]), None)
            if not own:
                continue
            fp = own[0][1].fingerprint()
            _test_model(session, registration, model_id, fp, declared, roots=False)
        else:
            _test_model(session, registration, model_id, fp, declared)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _candidates_rows(session: Session, ids: Sequence[int]) -> list[Any]:
    if not ids:
        return []
    return list(
        session.execute(
            select(_A.c.id, _A.c.digest, _A.c.name, _A.c.version, _MF.c.content_sha256)
            .join(_MF, _MF.c.artifact_id == _A.c.id)
            .where(_A.c.id.in_(sorted(set(ids))))
        )
    )


def _roots(session: Session, model_id: int, fp: Fingerprint) -> list[Any]:
    """Roots of `fp`'s input space registered before the model, other than its declared
    ancestors: the `ROOT_CANDIDATES` most recent, and the `ROOT_CANDIDATES` most recent that are
    bases of something (a weights child), so a popular base is never pushed out of reach by a
    flood of newer unrelated roots."""
    ancestors = select(_WA.c.ancestor_id).where(_WA.c.model_id == model_id)
    space = (
        _MF.c.scheme == fp.scheme,
        _MF.c.domain == fp.domain,
        _MF.c.root.is_(True),
        # Registered before it: a later root is tested against this model when it comes
        # (the same pair once, in one direction, even within a batch).
        _MF.c.artifact_id < model_id,
        _MF.c.artifact_id.not_in(ancestors),
    )
    has_child = (
        select(_E.c.id)
        .where(_E.c.parent_id == _MF.c.artifact_id, _E.c.relation.in_(_WEIGHTS))
        .exists()
    )
    newest = _MF.c.artifact_id.desc()
    ids = set(
        session.scalars(
            select(_MF.c.artifact_id).where(*space).order_by(newest).limit(ROOT_CANDIDATES)
        )
    )
    ids.update(
        session.scalars(
            select(_MF.c.artifact_id)
            .where(*space, has_child)
            .order_by(newest)
            .limit(ROOT_CANDIDATES)
        )
    )
    return _candidates_rows(session, sorted(ids, reverse=True))


def _comparable(
    session: Session, rows: list[Any], fp: Fingerprint | None
) -> list[tuple[Any, _Cached]]:
    """The candidates whose fingerprint can be compared with `fp`; only those not in the cache
    have their metadata read (one query)."""
    found = {row.content_sha256: _cached(row.content_sha256) for row in rows}
    missing = [row.id for row in rows if found[row.content_sha256] is None]
    if missing:
        for key, meta in session.execute(
            select(_MF.c.content_sha256, _A.c.metadata)
            .join(_MF, _MF.c.artifact_id == _A.c.id)
            .where(_A.c.id.in_(missing))
        ):
            doc = meta.get("fingerprint") if isinstance(meta, dict) else None
            found[key] = _remember(key, doc)
    out = []
    for row in rows:
        c = found.get(row.content_sha256)
        if c is not None and (
            fp is None or (c.scheme, c.domain, c.indices) == (fp.scheme, fp.domain, fp.indices)
        ):
            out.append((row, c))
    return out


def _test_model(
    session: Session,
    registration: str,
    model_id: int,
    fp: Fingerprint,
    declared: list[tuple[int, str]],
    *,
    roots: bool = True,
) -> None:
    """Test one model against its declared parents (and the roots); raise the findings."""
    model = session.execute(
        select(_A.c.id, _A.c.digest, _A.c.name, _A.c.version).where(_A.c.id == model_id)
    ).one()
    relation_of = dict(declared)
    parents = _comparable(session, _candidates_rows(session, list(relation_of)), fp)
    candidates = _comparable(session, _roots(session, model_id, fp), fp) if roots else []
    stats = screen(fp.gram, [c.gram for _, c in parents + candidates])
    raised: list[tuple[FindingKind, Any, Comparison, str | None]] = []
    for (row, c), _r in list(zip(parents, stats, strict=False))[:MAX_PARENT_TESTS]:
        result = shared_base(fp, c.fingerprint(), permutations=PERMUTATIONS)
        if result.comparable and result.shared is False:
            kind = FindingKind.DECLARED_PARENT_CONTRADICTED
            raised.append((kind, row, result, relation_of[int(row.id)]))
    ranked = sorted(
        (
            (r, row, c)
            for (row, c), r in zip(candidates, stats[len(parents) :], strict=True)
            if r >= MIN_EFFECT
        ),
        key=lambda t: -t[0],
    )
    for _r, row, c in ranked[:MAX_ROOT_TESTS]:
        result = shared_base(fp, c.fingerprint(), permutations=PERMUTATIONS)
        if result.shared:
            raised.append((FindingKind.UNDECLARED_SHARED_BASE, row, result, None))
    for kind, other, result, relation in raised:
        _raise(session, registration, kind, model, other, result, fp.scheme, relation)


# ----------------------------------------------------------------------------- findings


def _server_signer(session: Session) -> tuple[dsse.Signer, int]:
    """The registry's own signer (the log key) and principal, registered on first use.

    Raises:
        LogKeyError: this process does not hold the log key.
        RegistryError: the principal or the key is taken by someone else, or revoked.
    """
    from ..keys.service import verified_key_row
    from ..log.service import notary_for

    signer = dsse.Signer(notary_for(session).private_key)
    principal = session.scalars(
        select(Principal).where(Principal.name == SERVER_PRINCIPAL)  # type: ignore[arg-type]
    ).first()
    if principal is None:
        principal = Principal(name=SERVER_PRINCIPAL, role=Role.VIEWER.value)
        session.add(principal)
        session.flush()
    elif principal.role != Role.VIEWER.value:
        raise RegistryError(
            f"principal {SERVER_PRINCIPAL!r} is reserved for the registry's own statements "
            f"(role viewer), but has role {principal.role!r}",
            field="principal",
        )
    assert principal.id is not None
    key = session.get(SigningKey, signer.keyid)
    if key is None:
        proof = dsse.key_possession_proof(signer, SERVER_PRINCIPAL)
        session.add(verified_key_row(signer.public_key, SERVER_PRINCIPAL, proof, principal.id))
        session.flush()
    elif key.principal_id != principal.id or key.revoked_at is not None:
        raise RegistryError(
            f"the log key {signer.keyid} is registered to another principal or revoked",
            field="public_key",
        )
    return signer, principal.id


def _raise(
    session: Session,
    registration: str,
    kind: FindingKind,
    model: Any,
    other: Any,
    result: Comparison,
    scheme: str,
    relation: str | None,
) -> None:
    """Sign, store, apply and log one finding, inside the ingest transaction."""
    from ..log.service import append, notary_for

    assert result.statistic is not None and result.p_value is not None
    raised = session.scalar(
        select(_F.c.id).where(
            _F.c.kind == kind.value, _F.c.model_id == model.id, _F.c.other_id == other.id
        )
    )
    if raised is not None:  # one finding per pair and kind (an amendment may meet it again)
        return
    signer, server_id = _server_signer(session)
    statement = finding_statement(
        kind,
        (model.digest, f"{model.name}@{model.version}"),
        (other.digest, f"{other.name}@{other.version}"),
        statistic=result.statistic,
        p_value=result.p_value,
        permutations=result.permutations,
        reason=result.reason,
        scheme=scheme,
        registration=registration,
        relation=relation,
    )
    envelope = sign_statement(statement, signer)
    verified = verify_envelope(envelope, dsse.Verifier({signer.keyid: signer.public_key}))
    raw = envelope.to_json()
    values: dict[str, Any] = {
        "payload_digest": verified.payload_digest,
        "predicate_type": FINDING_PREDICATE,
        "envelope": raw,
        "signer_keyid": signer.keyid,
        "principal_id": server_id,
        "received_at": utcnow(),
    }
    att_id = session.execute(insert(_ATT).values(**values).returning(_ATT.c.id)).scalar_one()
    attestation = Attestation.model_construct(id=att_id, **values)
    apply_finding(session, attestation, verified)
    append(session, att_id, entry_bytes(raw), notary_for(session))
    log.info(
        "finding %s: %s vs %s (r=%.3f)",
        kind.value,
        model.digest[:12],
        other.digest[:12],
        result.statistic,
    )


def _id_of(session: Session, digest: str, field: str) -> int:
    found = session.scalar(select(_A.c.id).where(_A.c.digest == digest))
    if found is None:
        raise UnprocessableError(f"unknown artifact sha256:{digest}", field=field, digest=digest)
    return int(found)


def apply_finding(
    session: Session, attestation: Attestation, verified: VerifiedStatement
) -> dict[str, Any]:
    """Predicate handler of the registry's finding statements (ingest and replay).

    Raises:
        PermissionDeniedError: not the registry's own statement.
        InvalidStatementError: malformed.
        UnprocessableError: an unknown artifact.
    """
    principal = session.get(Principal, attestation.principal_id)
    if principal is None or (principal.name, principal.role) != (
        SERVER_PRINCIPAL,
        Role.VIEWER.value,
    ):
        raise PermissionDeniedError(
            "findings are raised by the registry itself, from the weights; a reviewer decides "
            "on them with a confirmation or a dismissal",
            field="predicateType",
        )
    claim = parse_finding(verified.statement)
    session.execute(
        insert(_F).values(
            attestation_id=attestation.id,
            kind=claim.kind.value,
            model_id=_id_of(session, claim.model, "subject[0].digest"),
            other_id=_id_of(session, claim.other, "subject[1].digest"),
            relation=claim.relation,
            statistic=claim.statistic,
            p_value=claim.p_value,
            permutations=claim.permutations,
            reason=claim.reason,
            status=FindingStatus.OPEN.value,
            created_at=attestation.received_at,
        )
    )
    return {"result": {"finding": verified.payload_digest, "kind": claim.kind.value}}


def apply_decision(
    session: Session, attestation: Attestation, verified: VerifiedStatement
) -> dict[str, Any]:
    """Predicate handler of a reviewer's confirmation or dismissal (no commit).

    Raises:
        InvalidStatementError: malformed (400).
        UnprocessableError: no such finding, or it is about another model (422).
        ConflictError: the finding was already decided (409).
        CycleError: the edge a confirmation adds would make the model its own ancestor.
    """
    claim = parse_decision(verified.statement)
    row = session.execute(
        select(_F, _ATT.c.payload_digest)
        .join(_ATT, _ATT.c.id == _F.c.attestation_id)
        .where(_ATT.c.payload_digest == claim.finding)
    ).first()
    if row is None:
        raise UnprocessableError(
            f"no finding with statement sha256:{claim.finding}",
            field="predicate.finding",
        )
    model_digest = session.scalar(select(_A.c.digest).where(_A.c.id == row.model_id))
    if model_digest != claim.model:
        raise UnprocessableError(
            f"the finding is about sha256:{model_digest}, not sha256:{claim.model}",
            field="subject[0].digest",
        )
    if row.status != FindingStatus.OPEN.value:
        raise ConflictError(
            f"the finding was already {row.status} (attestation {row.decision_attestation_id})",
            field="predicate.finding",
        )
    status = FindingStatus.CONFIRMED if claim.confirmed else FindingStatus.DISMISSED
    session.execute(
        update(_F)
        .where(_F.c.id == row.id)
        .values(
            status=status.value,
            decision_attestation_id=attestation.id,
            decision_reason=claim.reason,
        )
    )
    outcome: dict[str, Any] = {
        "artifact_id": int(row.model_id),
        "created": False,
        "edges_added": 0,
        "new_edges": [],
        "result": {"finding": claim.finding, "status": status.value},
    }
    if claim.confirmed and row.kind == FindingKind.UNDECLARED_SHARED_BASE.value:
        edge = _confirm_edge(session, attestation, int(row.model_id), int(row.other_id))
        if edge is not None:
            outcome["new_edges"] = [edge]
            outcome["edges_added"] = 1
            outcome["result"]["edge"] = Relation.INITIALIZED_FROM.value
    return outcome


def _confirm_edge(
    session: Session, attestation: Attestation, child: int, base: int
) -> tuple[int, int, Relation] | None:
    """Add `initialized_from` child -> base unless the base is already a weights ancestor."""
    from lineage.errors import CycleError

    known = session.scalar(
        select(func.count())
        .select_from(_WA)
        .where(_WA.c.model_id == child, _WA.c.ancestor_id == base)
    )
    if known:
        return None
    path = artifacts._find_path_up(session, base, child)
    if path is not None:
        raise CycleError(
            "initialized_from would make the model its own ancestor",
            path=tuple(artifacts._digests_of(session, [child, *path])),
        )
    relation = Relation.INITIALIZED_FROM
    session.execute(
        insert(_E).values(
            child_id=child, parent_id=base, relation=relation.value, attestation_id=attestation.id
        )
    )
    return (child, base, relation)


# ----------------------------------------------------------------------------- reads


def _public_rows(session: Session, where: Any, limit: int, offset: int) -> list[FindingPublic]:
    model, other = _A.alias("model"), _A.alias("other")
    mfp, ofp = _MF.alias("model_fp"), _MF.alias("other_fp")
    signer, decision = _P.alias("signer"), _ATT.alias("decision")
    decider = _P.alias("decider")
    rows = session.execute(
        select(
            _F,
            _ATT.c.payload_digest,
            _ATT.c.signer_keyid,
            signer.c.name.label("signed_by"),
            model.c.digest.label("model_digest"),
            (model.c.name + "@" + model.c.version).label("model_ref"),
            other.c.digest.label("other_digest"),
            (other.c.name + "@" + other.c.version).label("other_ref"),
            _LOG.c.idx.label("log_index"),
            mfp.c.scheme.label("scheme"),
            mfp.c.content_sha256.label("model_fingerprint"),
            ofp.c.content_sha256.label("other_fingerprint"),
            decider.c.name.label("decided_by"),
            decision.c.received_at.label("decided_at"),
        )
        .join(_ATT, _ATT.c.id == _F.c.attestation_id)
        .join(signer, signer.c.id == _ATT.c.principal_id)
        .outerjoin(_LOG, _LOG.c.attestation_id == _F.c.attestation_id)
        .join(model, model.c.id == _F.c.model_id)
        .join(other, other.c.id == _F.c.other_id)
        .outerjoin(mfp, mfp.c.artifact_id == _F.c.model_id)
        .outerjoin(ofp, ofp.c.artifact_id == _F.c.other_id)
        .outerjoin(decision, decision.c.id == _F.c.decision_attestation_id)
        .outerjoin(decider, decider.c.id == decision.c.principal_id)
        .where(where)
        .order_by(_F.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        FindingPublic(
            id=r.id,
            kind=FindingKind(r.kind),
            status=FindingStatus(r.status),
            model=r.model_digest,
            model_ref=r.model_ref,
            other=r.other_digest,
            other_ref=r.other_ref,
            relation=r.relation,
            statistic=r.statistic,
            p_value=r.p_value,
            permutations=r.permutations,
            reason=r.reason,
            statement=r.payload_digest,
            attestation_id=r.attestation_id,
            log_index=r.log_index,
            signed_by=r.signed_by,
            signer_keyid=r.signer_keyid,
            scheme=r.scheme,
            model_fingerprint=r.model_fingerprint,
            other_fingerprint=r.other_fingerprint,
            decision_attestation_id=r.decision_attestation_id,
            decision_reason=r.decision_reason,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            created_at=r.created_at,
        )
        for r in rows
    ]


def list_findings(
    session: Session,
    status: FindingStatus | None,
    model: str | None,
    limit: int,
    offset: int,
    *,
    kind: FindingKind | None = None,
) -> FindingsPublic:
    """Findings, newest first, optionally of one status, about one model (a reference), or of
    one kind; with the count of each kind under the status and model filters, for the review
    queue's filter.

    Raises:
        NotFoundError: `model` names no artifact.
    """
    conds = []
    if status is not None:
        conds.append(_F.c.status == status.value)
    if model is not None:
        conds.append(_F.c.model_id == artifacts.resolve(session, model).id)
    counts = {
        str(k): int(n)
        for k, n in session.execute(
            select(_F.c.kind, func.count()).where(and_(true(), *conds)).group_by(_F.c.kind)
        )
    }
    if kind is not None:
        conds.append(_F.c.kind == kind.value)
    where = and_(true(), *conds)
    total = int(session.scalar(select(func.count()).select_from(_F).where(where)) or 0)
    data = _public_rows(session, where, limit, offset)
    return FindingsPublic(data=data, count=total, limit=limit, offset=offset, counts_by_kind=counts)


def get_finding(session: Session, finding_id: int) -> FindingPublic:
    """One finding.

    Raises:
        NotFoundError: no such id.
    """
    found = _public_rows(session, _F.c.id == finding_id, 1, 0)
    if not found:
        raise NotFoundError(f"no finding {finding_id}", field="id")
    return found[0]


# ----------------------------------------------------------------------------- checks


def _side(
    session: Session, value: str | dict[str, Any], side: str
) -> tuple[Fingerprint, str | None]:
    """A side of a shared-base check: a registered artifact's signed fingerprint, or one given.

    Raises:
        NotFoundError: an unknown reference (404).
        UnprocessableError: a registered artifact without a fingerprint (422).
        BadRequestError: a malformed fingerprint or one over `MAX_INDICES` inputs (400).
    """
    if isinstance(value, str):
        try:
            art = artifacts.resolve(session, value)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, field=side) from exc
        except BadRequestError as exc:
            raise BadRequestError(exc.message, field=side) from exc
        ref = f"{art.name}@{art.version}"
        doc = (art.metadata_ or {}).get("fingerprint")
        if doc is None:
            raise UnprocessableError(
                f"{ref} was registered without a fingerprint (a dataset, an opaque model, or "
                "a model registered with --no-fingerprint): nothing to compare",
                field=side,
            )
        try:
            return Fingerprint.from_json(doc), ref
        except FingerprintError as exc:  # pragma: no cover - checked at registration
            raise UnprocessableError(f"{ref}: {exc.message}", field=side) from exc
    indices = value.get("indices")
    if isinstance(indices, list) and len(indices) > MAX_INDICES:
        raise BadRequestError(
            f"a fingerprint holds at most {MAX_INDICES} inputs, got {len(indices)}", field=side
        )
    try:
        return Fingerprint.from_json(value), None
    except FingerprintError as exc:
        raise BadRequestError(exc.message, field=side) from exc


def compare(session: Session, a: str | dict[str, Any], b: str | dict[str, Any]) -> SharedBasePublic:
    """`POST /v1/checks/shared-base`: the shared-base test of two sides, `PERMUTATIONS` fixed.

    Raises:
        As `_side`, naming `a` or `b`.
    """
    fa, ref_a = _side(session, a, "a")
    fb, ref_b = _side(session, b, "b")
    result = shared_base(fa, fb, permutations=PERMUTATIONS)
    return SharedBasePublic(**result.to_json(), a_ref=ref_a, b_ref=ref_b)


# ----------------------------------------------------------------------------- replay


def finding_rows(session: Session) -> dict[tuple[Any, ...], dict[str, Any]]:
    """`findings` by natural key (the finding statement's attestation), for the audit's replay."""
    model, other = _A.alias("model"), _A.alias("other")
    rows = session.execute(
        select(_F, model.c.digest.label("model_digest"), other.c.digest.label("other_digest"))
        .join(model, model.c.id == _F.c.model_id)
        .join(other, other.c.id == _F.c.other_id)
    )
    return {
        (r.attestation_id,): {
            "kind": r.kind,
            "model": r.model_digest,
            "other": r.other_digest,
            "relation": r.relation,
            "statistic": r.statistic,
            "p_value": r.p_value,
            "status": r.status,
            "decision_attestation_id": r.decision_attestation_id,
            "decision_reason": r.decision_reason,
        }
        for r in rows
    }


def fingerprint_rows(session: Session) -> dict[tuple[Any, ...], dict[str, Any]]:
    """`model_fingerprints` by the model's digest, for the audit's replay."""
    rows = session.execute(
        select(_A.c.digest, _MF.c.scheme, _MF.c.domain, _MF.c.root, _MF.c.content_sha256).join(
            _A, _A.c.id == _MF.c.artifact_id
        )
    )
    return {
        (r.digest,): {
            "scheme": r.scheme,
            "domain": int(r.domain),
            "root": bool(r.root),
            "content_sha256": r.content_sha256,
        }
        for r in rows
    }
