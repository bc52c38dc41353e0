"""HTTP routes of the review workspace: the queue, the last look, and the artifact browser."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlmodel import Session

from lineage.types import ArtifactKind

from ..auth import Caller
from ..boundary import MAX_LIMIT, MAX_OFFSET
from . import service
from .schemas import BrowsePublic, BrowseStatus, QueuePublic, QueueSort, SeenPublic

_Text = Annotated[str | None, Parameter(max_length=200)]


class ReviewController(Controller):
    """What a reviewer works from."""

    path = "/v1/review"
    tags = ["review"]

    @get(
        "/queue",
        sync_to_thread=True,
        summary="The review queue: at-risk models nobody has decided on",
        description="At-risk marks less accepted risks (until their expiry), with the flag's "
        "severity, the model's owner, the path in one line, counts per trait, and what changed "
        "since the caller last marked the queue seen.",
    )
    def queue(
        self,
        db_session: Session,
        caller: Caller,
        trait: _Text = None,
        q: _Text = None,
        sort: QueueSort = QueueSort.NEWEST,
    ) -> QueuePublic:
        return service.queue(db_session, caller, trait, q, sort)

    @post("/seen", sync_to_thread=True, status_code=200, summary="Mark the queue seen now")
    def seen(self, db_session: Session, caller: Caller) -> SeenPublic:
        return service.mark_seen(db_session, caller)

    @get("/artifacts", sync_to_thread=True, summary="Browse artifacts with owner and risk status")
    def browse(
        self,
        db_session: Session,
        caller: Caller,
        q: _Text = None,
        kind: ArtifactKind | None = None,
        owner: _Text = None,
        status: BrowseStatus | None = None,
        trait: _Text = None,
        limit: int = Parameter(default=50, ge=1, le=MAX_LIMIT),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> BrowsePublic:
        return service.browse(
            db_session,
            q=q,
            kind=kind.value if kind else None,
            owner=owner,
            status=status,
            trait=trait,
            limit=limit,
            offset=offset,
        )
