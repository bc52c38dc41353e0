"""Ingest of signed statements: verify first, then write everything in one transaction.

The order matters. The envelope is parsed, the signature is checked against the caller's own
active keys, and only then is the statement interpreted; a predicate handler applies it; after
that, every `after_accept` hook (the transparency log, risk marks) runs in the same transaction.
Any error anywhere rolls back the whole submission, so nothing is ever half-written.

Re-submitting the exact same payload is idempotent: the stored attestation is returned and
nothing new is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from lineage.dsse import Envelope
from lineage.statements import REGISTRATION_PREDICATE, VerifiedStatement, verify_envelope

from ..artifacts import service as artifacts
from ..auth import Caller, Role, require
from ..db import begin_write
from ..errors import BadRequestError, NotFoundError
from ..keys.service import verifier_for
from ..models import Artifact, Attestation, Principal, utcnow

# A handler applies a verified statement of one predicate type and returns what it did.
Apply = Callable[[Session, Attestation, VerifiedStatement], dict[str, Any]]
# A hook runs after every accepted statement, inside the same transaction.
AfterAccept = Callable[[Session, Attestation, VerifiedStatement, dict[str, Any]], None]


@dataclass(frozen=True)
class PredicateHandler:
    """Who may submit a predicate type, and how it is applied."""

    roles: tuple[Role, ...]
    apply: Apply


HANDLERS: dict[str, PredicateHandler] = {
    REGISTRATION_PREDICATE: PredicateHandler((Role.REGISTRAR,), artifacts.apply_registration),
}
AFTER_ACCEPT: list[AfterAccept] = []
_ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]
# Fills in the answer for an already-accepted statement (its log index, say).
DESCRIBE_EXISTING: list[Callable[[Session, Attestation, dict[str, Any]], None]] = []


def register_predicate(predicate_type: str, handler: PredicateHandler) -> None:
    """Add a predicate type the registry accepts (flags, clearances, eval results)."""
    HANDLERS[predicate_type] = handler


@dataclass
class Submission:
    """What `submit` did."""

    attestation: Attestation
    principal: str
    created: bool
    outcome: dict[str, Any] = field(default_factory=dict)


def submit(session: Session, caller: Caller, raw: object) -> Submission:
    """Verify and apply one DSSE envelope; commits on success.

    Raises:
        InvalidEnvelopeError, InvalidStatementError: malformed input (400).
        PermissionDeniedError: the caller may not submit this, or the key is not theirs (403).
        UnverifiedSignatureError: the signature does not verify (400).
        ConflictError, UnprocessableError, RelationError, CycleError: the statement contradicts
            the registry (409/422).
    """
    envelope = Envelope.from_json(raw)
    if not isinstance(raw, dict):  # from_json accepted a str/bytes form
        raw = json.loads(raw)  # type: ignore[arg-type]
    # Take the write lock first: the key lookups below must see the same state we write into.
    begin_write(session)
    verifier = verifier_for(session, caller, [s.keyid for s in envelope.signatures])
    verified = verify_envelope(envelope, verifier)
    handler = HANDLERS.get(verified.predicate_type)
    if handler is None:
        known = ", ".join(sorted(HANDLERS))
        raise BadRequestError(
            f"unsupported predicateType {verified.predicate_type!r}; accepted: {known}",
            field="predicateType",
        )
    require(caller, *handler.roles)
    # One statement both inserts and detects a re-submission (the payload digest is unique).
    values = {
        "payload_digest": verified.payload_digest,
        "predicate_type": verified.predicate_type,
        "envelope": raw,
        "signer_keyid": verified.keyid,
        "principal_id": caller.id,
        "received_at": utcnow(),
    }
    att_id = session.execute(
        _insert_new(session, values).returning(_ATTESTATIONS.c.id)
    ).scalar_one_or_none()
    if att_id is None:
        return _already_accepted(session, verified)
    attestation = Attestation.model_construct(id=att_id, **values)
    outcome = handler.apply(session, attestation, verified)
    for hook in AFTER_ACCEPT:
        hook(session, attestation, verified, outcome)
    session.commit()
    return Submission(attestation, caller.name, created=True, outcome=outcome)


def _insert_new(session: Session, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (payload_digest) DO NOTHING, in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(_ATTESTATIONS).values(**values)
    return stmt.on_conflict_do_nothing(index_elements=["payload_digest"])


def _already_accepted(session: Session, verified: VerifiedStatement) -> Submission:
    """The answer to a re-submission: what was stored the first time; nothing is written."""
    existing = session.scalars(
        select(Attestation).where(Attestation.payload_digest == verified.payload_digest)  # type: ignore[arg-type]
    ).one()
    outcome: dict[str, Any] = {}
    if existing.predicate_type == REGISTRATION_PREDICATE:
        digest = verified.statement["subject"][0]["digest"].get("sha256", "")
        outcome["artifact"] = session.scalars(
            select(Artifact).where(Artifact.digest == digest)  # type: ignore[arg-type]
        ).first()
    for hook in DESCRIBE_EXISTING:
        hook(session, existing, outcome)
    name = _principal_name(session, existing.principal_id)
    session.rollback()
    return Submission(existing, name, created=False, outcome=outcome)


def _principal_name(session: Session, principal_id: int) -> str:
    p = session.get(Principal, principal_id)
    return p.name if p else "?"


def get(session: Session, attestation_id: int) -> tuple[Attestation, str]:
    """A stored attestation and its submitter's name.

    Raises:
        NotFoundError: no such id.
    """
    row = session.get(Attestation, attestation_id)
    if row is None:
        raise NotFoundError(f"no attestation {attestation_id}", field="id")
    return row, _principal_name(session, row.principal_id)


def artifact_of(session: Session, sub: Submission) -> Artifact | None:
    """The artifact a registration submission concerns, for the answer."""
    if "artifact" in sub.outcome:
        return sub.outcome["artifact"]  # type: ignore[no-any-return]
    if "artifact_id" in sub.outcome:
        return session.get(Artifact, sub.outcome["artifact_id"])
    return None
