"""HTTP routes for eval runs."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from sqlmodel import Session

from ..auth import Caller
from ..boundary import MAX_ID, MAX_LIMIT, MAX_OFFSET
from . import service
from .schemas import EvalCreate, EvalRunPublic, EvalRunsPublic, EvalStatus

# Run ids are database ids: refused with 400 beyond what a 64-bit column holds.
RunId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="Eval run id.")]


class EvalController(Controller):
    """Queue trait-transfer evals, follow them, read their results."""

    path = "/v1/evals"
    tags = ["evals"]

    @post(
        "/",
        sync_to_thread=True,
        summary="Queue an eval run (registrars and reviewers)",
        description="Runs execute in worker processes; follow them with GET /v1/evals/{id}. "
        "A finished run registers its lineage and a signed eval-result attestation.",
    )
    def submit(self, data: EvalCreate, db_session: Session, caller: Caller) -> EvalRunPublic:
        run = service.submit_run(db_session, caller, data)
        return service.to_public(db_session, [run], full=True)[0]

    @get("/", sync_to_thread=True, summary="List eval runs, newest first")
    def list(
        self,
        db_session: Session,
        caller: Caller,
        status: EvalStatus | None = None,
        experiment: str | None = None,
        limit: int = Parameter(default=50, ge=1, le=MAX_LIMIT),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> EvalRunsPublic:
        rows, total = service.list_runs(db_session, status, experiment, limit, offset)
        data = service.to_public(db_session, rows, full=False)
        return EvalRunsPublic(data=data, count=total, limit=limit, offset=offset)

    @get("/{run_id:int}", sync_to_thread=True, summary="Status, progress, timings and result")
    def show(self, db_session: Session, caller: Caller, run_id: RunId) -> EvalRunPublic:
        run = service.get_run(db_session, run_id)
        return service.to_public(db_session, [run], full=True)[0]

    @delete(
        "/{run_id:int}",
        sync_to_thread=True,
        status_code=HTTP_200_OK,
        summary="Cancel a run",
        description="200 with the cancelled run when it was queued; 202 when it is running and "
        "its worker has been asked to stop it.",
    )
    def cancel(self, db_session: Session, caller: Caller, run_id: RunId) -> Response[EvalRunPublic]:
        run = service.cancel_run(db_session, caller, run_id)
        code = HTTP_202_ACCEPTED if run.status == EvalStatus.RUNNING.value else HTTP_200_OK
        return Response(service.to_public(db_session, [run], full=True)[0], status_code=code)

    @get("/{run_id:int}/plot", sync_to_thread=True, summary="The run's figure (PNG)")
    def plot(self, db_session: Session, caller: Caller, run_id: RunId) -> Response[bytes]:
        return Response(service.plot_png(db_session, run_id), media_type="image/png")
