"""HTTP routes for attestations."""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlmodel import Session

from lineage.dsse import b64decode

from ..auth import Caller
from ..boundary import MAX_ID
from . import batch, service
from .schemas import AttestationAccepted, AttestationPublic


def server_timing(timing: dict[str, float]) -> str:
    """A W3C Server-Timing header value: each phase's name and its duration in milliseconds."""
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in timing.items())


class AttestationController(Controller):
    """Submit and read signed statements."""

    path = "/v1/attestations"
    tags = ["attestations"]

    @post(
        "/",
        sync_to_thread=True,
        summary="Submit a DSSE envelope",
        description="A DSSE envelope (payloadType application/vnd.in-toto+json) holding an in-toto "
        "Statement v1, signed with one of the caller's registered Ed25519 keys. 201 when new, 200 "
        "when the same payload was already accepted.\n\n" + service.INGEST_RULES,
    )
    def submit(
        self, data: dict[str, Any], db_session: Session, caller: Caller
    ) -> Response[AttestationAccepted]:
        sub = service.submit(db_session, caller, data)
        body = service.answer(db_session, sub)
        return Response(body, status_code=HTTP_201_CREATED if sub.created else HTTP_200_OK)

    @post(
        "/batch",
        sync_to_thread=True,
        request_max_body_size=batch.MAX_BATCH_BYTES,
        summary="Submit many DSSE envelopes in one transaction",
        description=f"1 to {batch.MAX_BATCH} envelopes, applied in order (parents before "
        "children), each verified and answered as POST /v1/attestations would; one transaction "
        "and one signed checkpoint for the batch. All or nothing: if any envelope is refused, "
        "nothing is written and the answer is that envelope's error, its `field` prefixed with "
        "`envelopes[i]` and `index` = i. An envelope accepted before is answered as a "
        "re-submission; the same envelope twice in one batch is refused. 201 when any envelope "
        "was new, 200 when all were re-submissions. The `Server-Timing` header gives the "
        "milliseconds spent checking signatures outside the write lock (`prepare`), waiting for "
        "it (`lock`) and holding it (`write`).",
    )
    def submit_batch(
        self, data: batch.BatchRequest, db_session: Session, caller: Caller
    ) -> Response[batch.BatchAccepted]:
        timing: dict[str, float] = {}
        answer = batch.submit_batch(db_session, caller, data.envelopes, timing)
        return Response(  # type: ignore[return-value]  # the same JSON, encoded in one pass
            batch.encode(answer),
            status_code=HTTP_201_CREATED if answer.created else HTTP_200_OK,
            headers={"Server-Timing": server_timing(timing)},
        )

    @get("/{attestation_id:int}", sync_to_thread=True, summary="Get a stored attestation")
    def get(
        self,
        db_session: Session,
        caller: Caller,
        attestation_id: int = Parameter(ge=1, le=MAX_ID, description="Attestation id."),
    ) -> AttestationPublic:
        att, principal = service.get(db_session, attestation_id)
        statement = json.loads(b64decode(att.envelope["payload"], field="payload"))
        return AttestationPublic(
            id=att.id,  # type: ignore[arg-type]
            payload_digest=att.payload_digest,
            predicate_type=att.predicate_type,
            signer_keyid=att.signer_keyid,
            principal=principal,
            received_at=att.received_at,
            envelope=att.envelope,
            statement=statement,
        )
