"""HTTP routes for the risk engine."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlmodel import Session

from ..auth import Caller
from ..boundary import MAX_LIMIT, MAX_OFFSET
from ..deps import end_read, read_only
from . import service
from .schemas import FineTuneCheckPublic, FineTuneCheckRequest, FlagsPublic, MarksPublic


class RiskController(Controller):
    """Flags in force, the review queue, and the fine-tune check."""

    tags = ["risk"]

    @get("/v1/flags", sync_to_thread=True, summary="Flags in force")
    def flags(self, db_session: Session, caller: Caller, trait: str | None = None) -> FlagsPublic:
        rows = service.list_flags(db_session, trait)
        return FlagsPublic(data=rows, count=len(rows))

    @get(
        "/v1/at-risk",
        sync_to_thread=True,
        summary="Review queue: at-risk models not yet reviewed, newest first",
    )
    def at_risk(
        self,
        db_session: Session,
        caller: Caller,
        trait: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=MAX_LIMIT),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> MarksPublic:
        rows, total = service.at_risk_queue(db_session, trait, limit, offset)
        return MarksPublic(data=rows, count=total, limit=limit, offset=offset)

    @post(
        "/v1/checks/fine-tune",
        sync_to_thread=True,
        status_code=200,
        summary="Would fine-tuning this base on these datasets be at risk?",
    )
    def fine_tune(
        self, data: FineTuneCheckRequest, db_session: Session, caller: Caller
    ) -> FineTuneCheckPublic:
        read_only(db_session)
        answer = service.check_fine_tune(db_session, data.base, data.datasets)
        end_read(db_session)
        return answer
