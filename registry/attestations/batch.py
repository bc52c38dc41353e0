"""Bulk ingest: many envelopes in one request, one transaction and one signed checkpoint.

Importers (a model hub's cards, a pipeline's backlog) register thousands of artifacts at a time;
one request and one checkpoint signature per envelope would spend most of the server's time on
HTTP and on signing tree heads nobody reads. A batch runs, for each envelope in order, exactly the
steps of a single submission (`service.read_envelope`, `verify`, `handler_for`, the predicate
handler, every `AFTER_ACCEPT` hook but the log's), so the same checks hold envelope by envelope;
then it appends every accepted envelope to the transparency log at once (`registry.log.batch`)
and commits. Each envelope gets its own answer, with its inclusion proof in the tree the batch
ends and that tree's one signed checkpoint.

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

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lineage.errors import LineageError, VerificationError
from lineage.logleaf import entry_bytes
from lineage.statements import verify_envelope

from ..auth import Caller
from ..db import begin_write
from ..errors import RegistryError, _status_for_lineage
from ..keys.service import verifier_for
from ..models import Attestation
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


def submit_batch(session: Session, caller: Caller, raws: list[Any]) -> BatchAccepted:
    """Verify and apply every envelope in order in one transaction; commits on success.

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
    for attempt in (1, 2):
        begin_write(session)
        try:
            answer = _apply_all(session, caller, raws)
            session.commit()
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
    new = [a for a in done if a.entry is not None]
    proofs = append_many(
        session,
        [(a.sub.attestation.id, a.entry) for a in new],  # type: ignore[misc]
        log.notary_for(session),
    )
    for a, proof in zip(new, proofs, strict=True):
        a.sub.outcome["log_index"] = proof.log_index
        a.sub.outcome["inclusion_proof"] = proof.model_dump()
    return BatchAccepted(
        data=[answer(session, a.sub) for a in done],
        count=len(done),
        created=len(new),
        tree_size=proofs[-1].tree_size if proofs else None,
        checkpoint=proofs[-1].checkpoint if proofs else None,
    )


def answer(session: Session, sub: service.Submission) -> AttestationAccepted:
    """One envelope's answer, as POST /v1/attestations gives it."""
    att = sub.attestation
    return AttestationAccepted(
        attestation_id=att.id,  # type: ignore[arg-type]
        payload_digest=att.payload_digest,
        predicate_type=att.predicate_type,
        signer_keyid=att.signer_keyid,
        principal=sub.principal,
        received_at=att.received_at,
        created=sub.created,
        artifact=service.artifact_of(session, sub),
        edges_added=int(sub.outcome.get("edges_added", 0)),
        amended=bool(sub.outcome.get("amended", False)),
        added_edges=sub.outcome.get("added_edges", []),
        result=sub.outcome.get("result"),
        log_index=sub.outcome.get("log_index"),
        inclusion_proof=sub.outcome.get("inclusion_proof"),
    )
