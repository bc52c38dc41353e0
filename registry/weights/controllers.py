"""HTTP routes for weights evidence: the shared-base check and the findings queue.

Decisions on findings are signed statements (`POST /v1/attestations`, reviewers only); these
routes read. Any authenticated principal may call them.
"""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlmodel import Session

from lineage.findings import FindingKind, FindingStatus
from lineage.fingerprint import PERMUTATIONS

from ..auth import Caller
from ..boundary import MAX_ID, MAX_LIMIT, MAX_OFFSET
from . import service
from .schemas import FindingPublic, FindingsPublic, SharedBasePublic, SharedBaseRequest


class WeightsController(Controller):
    """Shared-base checks from fingerprints, and findings."""

    tags = ["weights"]

    @post(
        "/v1/checks/shared-base",
        sync_to_thread=True,
        status_code=200,
        summary="Do two models share a base, from their weights' fingerprints?",
        description="Each side is a registered artifact's reference (its signed fingerprint is "
        "used) or a fingerprint's JSON form. Answers the statistic (Pearson r of the Grams), "
        f"its permutation p-value ({PERMUTATIONS} relabellings) and the decision, or "
        "`comparable: false` with the reason. 404 for an unknown reference, 422 for an artifact "
        f"registered without a fingerprint, 400 for a malformed fingerprint (or more than "
        f"{service.MAX_INDICES} inputs); `field` names the side.",
    )
    def shared_base(
        self, data: SharedBaseRequest, db_session: Session, caller: Caller
    ) -> SharedBasePublic:
        return service.compare(db_session, data.a, data.b)

    @get("/v1/findings", sync_to_thread=True, summary="Findings from the weights, newest first")
    def findings(
        self,
        db_session: Session,
        caller: Caller,
        status: FindingStatus | None = None,
        kind: FindingKind | None = None,
        model: str | None = Parameter(default=None, max_length=300),
        limit: int = Parameter(default=50, ge=1, le=MAX_LIMIT),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> FindingsPublic:
        return service.list_findings(db_session, status, model, limit, offset, kind=kind)

    @get("/v1/findings/{finding_id:int}", sync_to_thread=True, summary="One finding")
    def finding(
        self,
        db_session: Session,
        caller: Caller,
        finding_id: int = Parameter(ge=1, le=MAX_ID),
    ) -> FindingPublic:
        return service.get_finding(db_session, finding_id)
