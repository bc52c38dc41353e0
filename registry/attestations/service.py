"""Ingest of signed statements: verify first, then write everything in one transaction.

The order matters. The envelope is parsed, the signature is checked against the caller's own
active keys, and only then is the statement interpreted; a predicate handler applies it; after
that, every `after_accept` hook (the transparency log, risk marks) runs in the same transaction.
Any error anywhere rolls back the whole submission, so nothing is ever half-written.

Re-submitting the exact same payload is idempotent: the stored attestation is returned and
nothing new is written.

Serialisation. `submit` takes the database-wide write lock (`registry.db.begin_write`) before its
first read, so the key lookup, every check a handler makes (name@version and digest uniqueness,
cycles, ownership) and the writes see one state, and concurrent submissions are decided one after
another on both databases. Should a unique constraint still fire (a writer that did not take the
lock), the submission is rolled back and decided once more, so the client gets the answer the
sequential path gives (409 naming the field, or 200 for a re-submission), never a 500.

`submit` is composed of steps a batch can reuse inside one transaction: `read_envelope` (pure),
`verify` (keys, signature, statement), `handler_for` (predicate and role), `accept` (record,
apply, hooks; no commit).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lineage import statements
from lineage.dsse import Envelope
from lineage.statements import REGISTRATION_PREDICATE, VerifiedStatement, verify_envelope

from ..artifacts import service as artifacts
from ..artifacts.schemas import ArtifactPublic
from ..auth import Caller, Role, require
from ..db import begin_write
from ..errors import BadRequestError, NotFoundError
from ..keys.service import verifier_for
from ..models import Artifact, Attestation, Principal, utcnow
from ..schema_types import utc
from .schemas import AttestationAccepted

# What a statement may contain and do, for the OpenAPI document (from the limits themselves).
INGEST_RULES = (
    f"**Validated before written** (400 naming the field; nothing written): the payload is UTF-8 "
    f"JSON of at most {statements.MAX_STATEMENT_BYTES} bytes, nested at most "
    f"{statements.MAX_STATEMENT_DEPTH} levels, without duplicate keys, NaN or infinities; every "
    f"string Unicode scalar values without NUL; integers within signed 64 bits. DigestSet values "
    f"are lowercase hex (`sha256`: 64 characters, no `sha256:` prefix). A registration's "
    f"`predicate.artifact.name` (at most {statements.MAX_NAME} characters) and `version` (at most "
    f"{statements.MAX_VERSION}) are NFC, printable, without whitespace, `@`, backslash, control, "
    f"bidirectional-control or zero-width characters; a name is a relative '/'-separated path "
    f"with no empty, `.` or `..` segment (not starting with `/`, `~` or a drive); a version has "
    f"no '/'. `subject[0].name` is `name@version`. Metadata: an object nested at most "
    f"{statements.MAX_METADATA_DEPTH} levels, at most {statements.MAX_METADATA_BYTES} bytes of "
    f"canonical JSON, keys of at most {statements.MAX_METADATA_KEY} and strings of at most "
    f"{statements.MAX_METADATA_STRING} characters.\n\n"
    "**Ownership**: the principal that first registers an artifact owns it. Re-registering it "
    "with new parents is an amendment, allowed to the owner and admins (403 naming the `owner` "
    "otherwise); the answer then has `amended: true` and lists `added_edges`."
)

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
# Accepted envelopes with their outcomes, in order: what a hook's batch form takes.
Accepted = list[tuple[Attestation, VerifiedStatement, dict[str, Any]]]
AFTER_ACCEPT_MANY: dict[AfterAccept, Callable[[Session, Accepted], None]] = {}
"""The batch forms of `AFTER_ACCEPT` hooks: given the new registrations of a batch at once (in
order, parents first; all written, edges included), a hook's batch form must leave the database
as the hook run on each of them in order would. The batch route's bulk path uses it instead."""
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
    envelope, raw = read_envelope(raw)
    for attempt in (1, 2):
        # The write lock comes first: the key lookups and every check below must see the same
        # state the writes go into.
        begin_write(session)
        try:
            sub = accept(session, caller, envelope, raw)
            if sub.created:
                session.commit()
            else:
                session.rollback()
            return sub
        except IntegrityError:
            # A writer outside the lock won a unique key; decide again, now seeing it.
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def read_envelope(raw: object) -> tuple[Envelope, dict[str, Any]]:
    """Parse the DSSE envelope (pure); returns it with the JSON object to store verbatim.

    Raises:
        InvalidEnvelopeError: naming the field that is missing, malformed or unknown.
    """
    envelope = Envelope.from_json(raw)
    if not isinstance(raw, dict):  # from_json accepted a str/bytes form
        raw = json.loads(raw)  # type: ignore[arg-type]
    return envelope, raw  # type: ignore[return-value]


def verify(session: Session, caller: Caller, envelope: Envelope) -> VerifiedStatement:
    """Check every signature against the caller's active keys, then parse and check the
    statement (under the limits of `lineage.statements`). Call inside the write transaction.

    Raises:
        PermissionDeniedError, UnverifiedSignatureError, InvalidEnvelopeError,
        InvalidStatementError: as `submit`.
    """
    verifier = verifier_for(session, caller, [s.keyid for s in envelope.signatures])
    return verify_envelope(envelope, verifier)


def handler_for(caller: Caller, verified: VerifiedStatement) -> PredicateHandler:
    """The handler of the statement's predicate type, once the caller's role allows it.

    Raises:
        BadRequestError: an unsupported predicate type (field `predicateType`).
        PermissionDeniedError: the caller's role may not submit it.
    """
    handler = HANDLERS.get(verified.predicate_type)
    if handler is None:
        known = ", ".join(sorted(HANDLERS))
        raise BadRequestError(
            f"unsupported predicateType {verified.predicate_type!r}; accepted: {known}",
            field="predicateType",
        )
    require(caller, *handler.roles)
    return handler


def accept(session: Session, caller: Caller, envelope: Envelope, raw: dict[str, Any]) -> Submission:
    """Verify, record and apply one envelope, then run the `AFTER_ACCEPT` hooks, inside the
    caller's write transaction (`begin_write` taken; no commit). A re-submission of an accepted
    payload writes nothing and answers what was stored (`created` False).

    Raises:
        As `submit`.
    """
    verified = verify(session, caller, envelope)
    handler = handler_for(caller, verified)
    # One statement both inserts and detects a re-submission (the payload digest is unique).
    values = {
        "payload_digest": verified.payload_digest,
        "predicate_type": verified.predicate_type,
        "envelope": raw,
        "signer_keyid": verified.keyid,
        "principal_id": caller.id,
        "received_at": utcnow(),
    }
    att_id = session.connection().execute(_insert_new(session), values).scalar_one_or_none()
    if att_id is None:
        return _already_accepted(session, verified)
    attestation = Attestation.model_construct(id=att_id, **values)
    outcome = handler.apply(session, attestation, verified)
    for hook in AFTER_ACCEPT:
        hook(session, attestation, verified, outcome)
    return Submission(attestation, caller.name, created=True, outcome=outcome)


_INSERT_NEW: dict[str, Any] = {}


def _insert_new(session: Session) -> Any:
    """INSERT ... ON CONFLICT (payload_digest) DO NOTHING RETURNING id, in the session's dialect.

    Built once per dialect and executed with the values as parameters: building the statement
    and its cache key on every submission cost more than the insert.
    """
    name = session.get_bind().dialect.name
    stmt = _INSERT_NEW.get(name)
    if stmt is None:
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = (
            dialect_insert(_ATTESTATIONS)
            .on_conflict_do_nothing(index_elements=["payload_digest"])
            .returning(_ATTESTATIONS.c.id)
        )
        _INSERT_NEW[name] = stmt
    return stmt


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


def artifact_of(session: Session, sub: Submission) -> ArtifactPublic | None:
    """The artifact a registration submission concerns, with its owner, for the answer."""
    row: Artifact | None
    if "artifact" in sub.outcome:
        row = sub.outcome["artifact"]
        if row is not None and sub.created and sub.outcome.get("created"):
            return artifacts.to_public(row, sub.principal)  # its first registration: no query
    elif "artifact_id" in sub.outcome:
        row = session.get(Artifact, sub.outcome["artifact_id"])
    else:
        return None
    return artifacts.public(session, row) if row is not None else None


def answer(session: Session, sub: Submission) -> AttestationAccepted:
    """The answer to one accepted envelope, alone or in a batch.

    Built from values the registry has just checked or written, so without validating them a
    second time (a batch answers a thousand envelopes).
    """
    att = sub.attestation
    return AttestationAccepted.model_construct(
        attestation_id=att.id,
        payload_digest=att.payload_digest,
        predicate_type=att.predicate_type,
        signer_keyid=att.signer_keyid,
        principal=sub.principal,
        received_at=utc(att.received_at),
        created=sub.created,
        artifact=artifact_of(session, sub),
        edges_added=int(sub.outcome.get("edges_added", 0)),
        amended=bool(sub.outcome.get("amended", False)),
        added_edges=list(sub.outcome.get("added_edges", [])),
        result=sub.outcome.get("result"),
        log_index=sub.outcome.get("log_index"),
        inclusion_proof=sub.outcome.get("inclusion_proof"),
    )
