"""HTTP routes of the transparency log.

The checkpoint and the proofs are public: they hold only hashes, and witnesses and monitors
(which hold no Studbook token) must be able to fetch them. The entries reveal what was
registered, so they need a token like every other read of the registry.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, MediaType, get
from litestar.params import QueryParameter
from sqlmodel import Session

from ..auth import Caller
from ..boundary import MAX_ID
from . import service
from .schemas import ConsistencyProofPublic, InclusionProofPublic, LogEntriesPublic, LogInfo


class LogController(Controller):
    """Checkpoints, entries and proofs of the log of accepted envelopes."""

    path = "/v1/log"
    tags = ["log"]

    @get("/", sync_to_thread=True, summary="The log's key, size, root and checkpoint")
    def info(self, db_session: Session) -> LogInfo:
        return service.info(db_session, service.notary_for(db_session))

    @get(
        "/checkpoint",
        sync_to_thread=True,
        media_type=MediaType.TEXT,
        summary="The current checkpoint (C2SP tlog-checkpoint in a signed note)",
    )
    def checkpoint(self, db_session: Session) -> str:
        return service.signed_checkpoint(db_session, service.notary_for(db_session))

    @get("/entries", sync_to_thread=True, summary="Log entries start..end (inclusive)")
    def entries(
        self,
        db_session: Session,
        caller: Caller,
        start: Annotated[int, QueryParameter(ge=0, le=MAX_ID, description="First index.")],
        end: Annotated[
            int | None, QueryParameter(ge=0, le=MAX_ID, description="Last index, inclusive.")
        ] = None,
    ) -> LogEntriesPublic:
        return service.entries(db_session, start, end)

    @get(
        "/proof/inclusion",
        sync_to_thread=True,
        summary="Inclusion proof of an entry",
        description="Name the entry by `index`, by `digest` (sha256 of the entry bytes) or by "
        "`payload_digest` (sha256 of the DSSE payload); `tree_size` defaults to the whole log.",
    )
    def inclusion(
        self,
        db_session: Session,
        index: Annotated[int | None, QueryParameter(ge=0, le=MAX_ID)] = None,
        digest: Annotated[str | None, QueryParameter()] = None,
        payload_digest: Annotated[str | None, QueryParameter()] = None,
        tree_size: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
    ) -> InclusionProofPublic:
        notary = service.notary_for(db_session)
        return service.inclusion(
            db_session,
            notary,
            index=index,
            digest=digest,
            payload_digest=payload_digest,
            size=tree_size,
        )

    @get("/proof/consistency", sync_to_thread=True, summary="Consistency proof between two sizes")
    def consistency(
        self,
        db_session: Session,
        first: Annotated[
            int, QueryParameter(name="from", ge=0, le=MAX_ID, description="Older tree size.")
        ],
        second: Annotated[
            int | None,
            QueryParameter(name="to", ge=0, le=MAX_ID, description="Newer size; default: now."),
        ] = None,
    ) -> ConsistencyProofPublic:
        return service.consistency(db_session, service.notary_for(db_session), first, second)
