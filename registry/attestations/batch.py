"""Bulk ingest: many envelopes in one request, one transaction and one signed checkpoint.

Importers (a model hub's cards, a pipeline's backlog) register thousands of artifacts at a time;
one request and one checkpoint signature per envelope would spend most of the server's time on
HTTP and on signing tree heads nobody reads. A batch runs, for each envelope in order, exactly the
steps of a single submission (`service.read_envelope`, `verify`, `handler_for`, the predicate
handler, every `AFTER_ACCEPT` hook but the log's), so the same checks hold envelope by envelope;
then it appends every accepted envelope to the transparency log at once (`registry.log.batch`)
and commits. Each envelope gets its own answer, with its inclusion proof in the tree the batch
ends and that tree's one signed checkpoint.

**Two paths, one outcome.** The common batch, an import, holds only new registrations whose
parents are stored or come earlier in the batch. For it, `_prepare` checks every signature and
statement before the write lock (so that several workers verify while one writes), and under
the lock `_apply_bulk` reads the caller's keys again (any change and the batch goes the other
way), checks the whole batch against two reads, and writes it with one statement per table (a
COPY on PostgreSQL); the hooks then take the batch at once where they have a batch form (the
lineage indexes and risk marks), envelope by envelope otherwise. Every other batch, and any
batch in which something would be refused, is decided by `_apply_all` envelope by envelope,
exactly as above;
the bulk path never writes before it knows the whole batch passes, so answers and refusals are
the same whichever path a batch takes (`tests/integration/test_batch.py` holds them equal).

**All or nothing.** If any envelope is refused, nothing of the batch is written and the answer is
that envelope's error (its status code; `field` prefixed with `envelopes[i]`; `index` = i). A
partially applied batch would leave the client to work out which of its envelopes landed and
which of the later ones failed only because an earlier parent was refused; with all or nothing a
batch either is the same as submitting its envelopes one by one, or changes nothing, and the
client fixes the one envelope named and sends the batch again.

- Envelopes are applied in order, so a parent may come earlier in the same batch than its
  children; an edge that would close a cycle, within the batch or with what is stored, is refused
  as it would be alone.
- An envelope already accepted before the batch is answered as a re-submission is (`created`
  false, its original log index); the same envelope twice in one batch is refused: it is a bug in
  the client, and answering it twice would hide which copy was meant.
- Every envelope must be signed by a key of the caller (the batch is one principal's work).
- At most `MAX_BATCH` envelopes and `MAX_BATCH_BYTES` bytes per request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lineage.dsse import Envelope
from lineage.errors import LineageError, VerificationError
from lineage.logleaf import entry_bytes
from lineage.statements import (
    REGISTRATION_PREDICATE,
    VerifiedStatement,
    parse_registration,
    verify_envelope,
)
from lineage.types import ArtifactKind, Registration

from ..artifacts import service as artifacts
from ..auth import Caller
from ..db import begin_write, insert_rows, next_ids, write_rows
from ..errors import RegistryError, _status_for_lineage
from ..keys.service import verifier_for
from ..models import Artifact, Attestation, SigningKey
from . import service
from .schemas import AttestationAccepted

MAX_BATCH = 1000
"""Envelopes per batch at most: large enough that HTTP and the checkpoint signature vanish in
the per-envelope cost, small enough that one transaction holds the write lock for well under a
second."""
MAX_BATCH_BYTES = 16 << 20
"""The request body limit of the batch route (a registration envelope is about 1 KiB)."""


class BatchRequest(BaseModel):
    """Envelopes to accept together, in order (parents before children)."""

    envelopes: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"DSSE envelopes, as for POST /v1/attestations; 1 to {MAX_BATCH}.",
    )


class BatchAccepted(BaseModel):
    """The answer to an accepted batch: one answer per envelope, in order."""

    data: list[AttestationAccepted]
    count: int
    created: int = Field(description="How many envelopes were new (the rest were re-submissions).")
    tree_size: int | None = Field(
        default=None, description="Size of the log the batch ended (None: nothing new)."
    )
    checkpoint: str | None = Field(
        default=None, description="The signed checkpoint every new envelope's proof refers to."
    )


class BatchRefusedError(RegistryError):
    """One envelope of a batch was refused, so the batch was not applied."""

    def __init__(self, index: int, status: int, message: str, field: str | None, **attrs: Any):
        where = f"envelopes[{index}]"
        super().__init__(
            f"{where}: {message} (nothing of the batch was applied: a batch is all or nothing)",
            field=f"{where}.{field}" if field else where,
            index=index,
            **attrs,
        )
        self.status_code = status


@dataclass
class _Accepted:
    sub: service.Submission
    entry: bytes | None  # the log entry of a new envelope


def submit_batch(
    session: Session, caller: Caller, raws: list[Any], timing: dict[str, float] | None = None
) -> BatchAccepted:
    """Verify and apply every envelope in order in one transaction; commits on success.

    `timing`, when given, receives the milliseconds spent checking signatures and statements
    outside the write lock (`prepare`), waiting for the lock (`lock`) and holding it, from the
    first read to the commit (`write`): what several workers can do at once and what they do
    one after another (the route sends them as a `Server-Timing` header).

    Raises:
        BatchRefusedError: an envelope was refused (its status, field and message); nothing
            was written.
        BadRequestError: more than `MAX_BATCH` envelopes.
    """
    if not 1 <= len(raws) <= MAX_BATCH:
        from ..errors import BadRequestError

        raise BadRequestError(
            f"a batch holds 1 to {MAX_BATCH} envelopes, got {len(raws)}", field="envelopes"
        )
    # Signatures and statements are checked before the write lock, so that several workers
    # verify batches while one writes; the keys they were checked with are read again under
    # the lock (`_apply_bulk`). The read transaction ends first: a writer's reads start under
    # the lock.
    clock = time.perf_counter
    started = clock()
    prepared = _prepare(session, caller, raws)
    session.rollback()
    for attempt in (1, 2):
        asked = clock()
        begin_write(session)
        locked = clock()
        try:
            answer = _apply_bulk(session, caller, prepared) if prepared else None
            if answer is None:  # nothing written: decide envelope by envelope
                answer = _apply_all(session, caller, raws)
            session.commit()
            if timing is not None:
                timing["prepare"] = (asked - started) * 1000
                timing["lock"] = (locked - asked) * 1000
                timing["write"] = (clock() - locked) * 1000
            return answer
        except IntegrityError:
            # A writer outside the lock won a unique key; decide again, now seeing it (as submit).
            session.rollback()
            if attempt == 2:
                raise
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


class _Row:
    """An artifact row as the bulk path needs it: stored, or created earlier in the batch."""

    __slots__ = ("digest", "id", "kind", "name", "version")

    def __init__(self, id: int, digest: str, kind: str, name: str, version: str) -> None:
        self.id, self.digest, self.kind, self.name, self.version = id, digest, kind, name, version


@dataclass
class _New:
    stored: dict[str, Any]
    verified: VerifiedStatement
    reg: Registration
    row: _Row


_CHUNK = 500


@dataclass
class _Prepared:
    """A batch whose every envelope verified under `keys` and is a registration that parses."""

    keys: dict[str, str]
    items: list[_New]


def _prepare(session: Session, caller: Caller, raws: list[Any]) -> _Prepared | None:
    """Verify every signature and parse every statement, outside the write lock.

    The signatures are checked on `VERIFY_THREADS` threads (`_verify_many`); the rest runs on
    the request's thread, which alone touches the session.

    Returns:
        None when the batch holds anything but registrations that verify and parse, or one
        envelope twice: `_apply_all` then decides it, under the lock, envelope by envelope.
    """
    keys = _active_keys(session, caller)
    verifiers: dict[frozenset[str], Any] = {}
    pending: list[tuple[Envelope, dict[str, Any], Any]] = []
    try:
        for raw in raws:
            envelope, stored = service.read_envelope(raw)
            keyids = frozenset(sig.keyid for sig in envelope.signatures)
            verifier = verifiers.get(keyids)
            if verifier is None:
                verifier = verifiers[keyids] = verifier_for(session, caller, keyids)
            pending.append((envelope, stored, verifier))
    except (LineageError, RegistryError):
        return None  # the sequential path names the envelope and its error
    checked = _verify_many([(envelope, verifier) for envelope, _, verifier in pending])
    if checked is None:
        return None
    items: list[_New] = []
    seen: set[str] = set()
    for (_, stored, _), verified in zip(pending, checked, strict=True):
        if verified.predicate_type != REGISTRATION_PREDICATE or verified.payload_digest in seen:
            return None
        try:
            if service.handler_for(caller, verified).apply is not artifacts.apply_registration:
                return None
            reg = parse_registration(verified.statement)
        except (LineageError, RegistryError):
            return None
        seen.add(verified.payload_digest)
        a = reg.artifact
        row = _Row(0, a.digest, a.kind.value, a.name, a.version)
        items.append(_New(stored, verified, reg, row))
    return _Prepared(keys, items)


VERIFY_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads that check a batch's signatures. The `cryptography` package releases the GIL while it
verifies an Ed25519 signature (about 0.1 ms each), so a batch's signatures are checked in
parallel on every core the server has, up to four."""
_MIN_PARALLEL = 64  # below this, handing slices to threads costs more than it saves
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _verify_many(work: list[tuple[Envelope, Any]]) -> list[VerifiedStatement] | None:
    """`verify_envelope` of each (envelope, verifier), in order; None if any is refused.

    Pure (no session): the verifiers hold the keys they trust.
    """

    def run(part: list[tuple[Envelope, Any]]) -> list[VerifiedStatement] | None:
        try:
            return [verify_envelope(envelope, verifier) for envelope, verifier in part]
        except (LineageError, RegistryError):  # a bad signature; a key not the caller's
            return None  # the sequential path names the envelope and its error

    if VERIFY_THREADS == 1 or len(work) < _MIN_PARALLEL:
        return run(work)
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="studbook-verify")
    step = -(-len(work) // VERIFY_THREADS)
    out: list[VerifiedStatement] = []
    for part in _pool.map(run, [work[i : i + step] for i in range(0, len(work), step)]):
        if part is None:
            return None
        out.extend(part)
    return out


_KEYS = SigningKey.__table__  # type: ignore[attr-defined]
_ACTIVE_KEYS = select(_KEYS.c.keyid, _KEYS.c.public_key).where(
    _KEYS.c.principal_id == bindparam("principal_id"), _KEYS.c.revoked_at.is_(None)
)


def _active_keys(session: Session, caller: Caller) -> dict[str, str]:
    """The caller's active keys: keyid -> stored public key."""
    rows = session.connection().execute(_ACTIVE_KEYS, {"principal_id": caller.id})
    return {r.keyid: r.public_key for r in rows}


def _apply_bulk(session: Session, caller: Caller, prepared: _Prepared) -> BatchAccepted | None:
    """The batch as `_apply_all` would apply it, with set-based reads and writes; or None, with
    nothing written, when the batch is not made only of new registrations that all pass.

    The common batch, an import, registers artifacts the registry does not hold yet, each with
    parents stored before or registered earlier in the batch. For such a batch the checks of
    `apply_registration` reduce to lookups in two reads done for the whole batch (the
    attestations and artifacts it mentions), and its writes to one statement per table, so this
    path checks everything first and only then writes. Anything else (keys that changed since
    `_prepare` verified the signatures, a re-submission, an amendment, another predicate type,
    an envelope that is refused) returns None before any write, and `_apply_all` decides the
    batch envelope by envelope, so answers and refusals are exactly the sequential ones.

    The hooks run once the whole batch's rows and edges are written, one hook after another,
    each over the envelopes in order, or at once through its batch form (`AFTER_ACCEPT_MANY`:
    the lineage indexes and the risk marks take the batch in one read and one write per table
    and one refresh). What they leave is what the sequential path leaves: the tests hold the
    stored indexes and marks equal after batches with flags upstream
    (`test_a_batch_equals_one_by_one`, `test_batches_keep_the_derived_tables_equal_the_reference`).
    """
    from ..log import service as log
    from ..log.batch import append_many

    if _active_keys(session, caller) != prepared.keys:
        return None  # a key was added or revoked since the signatures were checked
    items = prepared.items
    seen = {n.verified.payload_digest for n in items}
    conn = session.connection()
    if _stored_attestations(conn, sorted(seen)):
        return None  # re-submissions are answered as such by the sequential path
    digests = {n.row.digest for n in items} | {p.digest for n in items for p in n.reg.parents}
    known = _artifacts_by_digest(conn, sorted(digests))
    labels = {(n.row.name, n.row.version) for n in items}
    if any(n.row.digest in known for n in items) or _labels_taken(conn, labels):
        return None  # an amendment, a re-registration or a conflict
    if len(labels) != len(items) or len({n.row.digest for n in items}) != len(items):
        return None  # the batch registers one digest or name@version twice
    for n in items:
        for link in n.reg.parents:
            parent = known.get(link.digest)
            if parent is None:
                return None  # unknown, or registered later in the batch
            try:
                link.relation.check_kinds(n.reg.artifact.kind, ArtifactKind(parent.kind))
            except LineageError:
                return None
        known[n.row.digest] = n.row
    # Everything passed: write, with ids drawn under the lock, through the driver.
    now = service.utcnow()
    att_rows = [
        {
            "id": att_id,
            "payload_digest": n.verified.payload_digest,
            "predicate_type": n.verified.predicate_type,
            "envelope": n.stored,
            "signer_keyid": n.verified.keyid,
            "principal_id": caller.id,
            "received_at": now,
        }
        for n, att_id in zip(items, next_ids(session, "attestations", len(items)), strict=True)
    ]
    insert_rows(session, _ATT, att_rows)
    attestations = [Attestation.model_construct(**values) for values in att_rows]
    art_ids = next_ids(session, "artifacts", len(items))
    insert_rows(
        session,
        _ART,
        [
            {
                "id": art_id,
                "digest": n.row.digest,
                "kind": n.row.kind,
                "name": n.row.name,
                "version": n.row.version,
                "opaque": n.reg.artifact.opaque,
                "metadata": dict(n.reg.metadata),
                "attestation_id": att.id,
                "created_at": att.received_at,
            }
            for n, att, art_id in zip(items, attestations, art_ids, strict=True)
        ],
    )
    for n, art_id in zip(items, art_ids, strict=True):
        n.row.id = art_id
    hooks = [h for h in service.AFTER_ACCEPT if h is not log._after_accept]
    done: list[_Accepted] = []
    write_rows(
        session,
        "edges",
        ("child_id", "parent_id", "relation", "attestation_id"),
        [
            (n.row.id, known[link.digest].id, link.relation.value, att.id)
            for n, att in zip(items, attestations, strict=True)
            for link in n.reg.parents
        ],
    )
    accepted: service.Accepted = [
        (
            att,
            n.verified,
            artifacts.registration_outcome(
                n.row.id, n.reg, n.reg.parents, known, att, created=True
            ),
        )
        for n, att in zip(items, attestations, strict=True)
    ]
    for hook in hooks:
        many = service.AFTER_ACCEPT_MANY.get(hook)
        if many is not None:
            many(session, accepted)
        else:
            for att, verified, outcome in accepted:
                hook(session, att, verified, outcome)
    for n, (att, _, outcome) in zip(items, accepted, strict=True):
        sub = service.Submission(att, caller.name, created=True, outcome=outcome)
        done.append(_Accepted(sub, entry_bytes(n.stored)))
    return _finish(session, done, append_many, log.notary_for(session))


_ATT = Attestation.__table__  # type: ignore[attr-defined]
_ART = Artifact.__table__  # type: ignore[attr-defined]
_STORED_ATTESTATIONS = select(_ATT.c.payload_digest).where(
    _ATT.c.payload_digest.in_(bindparam("wanted", expanding=True))
)
_ARTIFACTS_BY_DIGEST = select(
    _ART.c.id, _ART.c.digest, _ART.c.kind, _ART.c.name, _ART.c.version
).where(_ART.c.digest.in_(bindparam("wanted", expanding=True)))
_ARTIFACTS_BY_NAME = select(_ART.c.name, _ART.c.version).where(
    _ART.c.name.in_(bindparam("wanted", expanding=True))
)


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _stored_attestations(conn: Any, digests: list[str]) -> bool:
    return any(
        conn.execute(_STORED_ATTESTATIONS, {"wanted": part}).first() is not None
        for part in _chunks(digests)
    )


def _artifacts_by_digest(conn: Any, digests: list[str]) -> dict[str, _Row]:
    out: dict[str, _Row] = {}
    for part in _chunks(digests):
        for r in conn.execute(_ARTIFACTS_BY_DIGEST, {"wanted": part}):
            out[r.digest] = _Row(r.id, r.digest, r.kind, r.name, r.version)
    return out


def _labels_taken(conn: Any, labels: set[tuple[str, str]]) -> bool:
    names = sorted({name for name, _ in labels})
    return any(
        (r.name, r.version) in labels
        for part in _chunks(names)
        for r in conn.execute(_ARTIFACTS_BY_NAME, {"wanted": part})
    )


def _apply_all(session: Session, caller: Caller, raws: list[Any]) -> BatchAccepted:
    from ..log import service as log
    from ..log.batch import append_many

    hooks = [h for h in service.AFTER_ACCEPT if h is not log._after_accept]
    # `service.verify`, with the caller's verifier built once per set of key ids: the batch
    # holds the write lock, so the caller's keys cannot change between its envelopes.
    verifiers: dict[frozenset[str], Any] = {}
    seen: dict[str, int] = {}
    done: list[_Accepted] = []
    for i, raw in enumerate(raws):
        try:
            envelope, stored = service.read_envelope(raw)
            keyids = frozenset(sig.keyid for sig in envelope.signatures)
            if keyids not in verifiers:
                verifiers[keyids] = verifier_for(session, caller, keyids)
            verified = verify_envelope(envelope, verifiers[keyids])
            if verified.payload_digest in seen:
                raise BatchRefusedError(
                    i,
                    400,
                    f"repeats envelopes[{seen[verified.payload_digest]}] (the same payload); "
                    "send each envelope once",
                    "payload",
                )
            seen[verified.payload_digest] = i
            handler = service.handler_for(caller, verified)
            values = {
                "payload_digest": verified.payload_digest,
                "predicate_type": verified.predicate_type,
                "envelope": stored,
                "signer_keyid": verified.keyid,
                "principal_id": caller.id,
                "received_at": service.utcnow(),
            }
            att_id = (
                session.connection()
                .execute(service._insert_new(session), values)
                .scalar_one_or_none()
            )
            if att_id is None:
                done.append(_Accepted(service._already_accepted(session, verified), None))
                continue
            attestation = Attestation.model_construct(id=att_id, **values)
            outcome = handler.apply(session, attestation, verified)
            for hook in hooks:
                hook(session, attestation, verified, outcome)
            sub = service.Submission(attestation, caller.name, created=True, outcome=outcome)
            done.append(_Accepted(sub, entry_bytes(stored)))
        except BatchRefusedError:
            raise
        except VerificationError:
            raise  # the server could not verify: a 500, not the client's envelope
        except LineageError as exc:
            extra = {"path": list(exc.path)} if hasattr(exc, "path") else {}
            raise BatchRefusedError(
                i, _status_for_lineage(exc), exc.message, exc.field, **extra
            ) from exc
        except RegistryError as exc:
            if exc.status_code >= 500:
                raise
            raise BatchRefusedError(
                i, exc.status_code, exc.message, exc.field, **exc.attrs
            ) from exc
    return _finish(session, done, append_many, log.notary_for(session))


def _finish(
    session: Session, done: list[_Accepted], append_many: Any, notary: Any
) -> BatchAccepted:
    """Log every new envelope at once (one checkpoint) and answer each envelope."""
    new = [a for a in done if a.entry is not None]
    proofs = append_many(
        session,
        [(a.sub.attestation.id, a.entry) for a in new],  # type: ignore[misc]
        notary,
    )
    for a, proof in zip(new, proofs, strict=True):
        a.sub.outcome["log_index"] = proof.log_index
        a.sub.outcome["inclusion_proof"] = dict(proof)
    return BatchAccepted.model_construct(
        data=[service.answer(session, a.sub) for a in done],
        count=len(done),
        created=len(new),
        tree_size=proofs[-1].tree_size if proofs else None,
        checkpoint=proofs[-1].checkpoint if proofs else None,
    )


def encode(accepted: BatchAccepted) -> bytes:
    """The answer's JSON, written by pydantic-core in one pass (no intermediate dicts)."""
    return BatchAccepted.__pydantic_serializer__.to_json(accepted)
