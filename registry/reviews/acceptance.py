"""The risk-acceptance predicate: a reviewer accepts a model's risk for a trait until a date.

Kept apart from the flag and clearance handlers (`registry/risk/service.py`) because it changes
no mark: an accepted model stays at risk, and its descendants too. It only takes the model off the
review queue until the acceptance expires (`registry/reviews/service.py`), so a decision to live
with a risk is recorded, signed and logged like any other, and comes back when it lapses.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session

from lineage.review import ACCEPTANCE_PREDICATE, MAX_ACCEPTANCE_DAYS, parse_acceptance
from lineage.statements import VerifiedStatement

from ..errors import UnprocessableError
from ..models import Artifact, Attestation, RiskAcceptance, RiskMarkRow

__all__ = ["ACCEPTANCE_PREDICATE", "apply_acceptance", "rows"]

_A = Artifact.__table__  # type: ignore[attr-defined]
_M = RiskMarkRow.__table__  # type: ignore[attr-defined]
_ACC = RiskAcceptance.__table__  # type: ignore[attr-defined]


def apply_acceptance(
    session: Session, attestation: Attestation, verified: VerifiedStatement
) -> dict[str, Any]:
    """Predicate handler: store an acceptance (no commit).

    Judged at the statement's acceptance time (`received_at`), so that a replay of the log
    reaches the same answer years later.

    Raises:
        InvalidStatementError: malformed predicate.
        UnprocessableError: unknown artifact, no risk to accept, or an expiry not in
            (received, received + MAX_ACCEPTANCE_DAYS].
    """
    claim = parse_acceptance(verified.statement)
    artifact_id = session.scalar(select(_A.c.id).where(_A.c.digest == claim.artifact))
    if artifact_id is None:
        raise UnprocessableError(
            f"unknown artifact sha256:{claim.artifact}: register it before reviewing it",
            field="subject[0].digest",
            digest=claim.artifact,
        )
    received = attestation.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    if claim.expires <= received:
        raise UnprocessableError(
            "predicate.expires must be in the future", field="predicate.expires"
        )
    if claim.expires > received + timedelta(days=MAX_ACCEPTANCE_DAYS):
        raise UnprocessableError(
            f"predicate.expires must be at most {MAX_ACCEPTANCE_DAYS} days ahead: an accepted "
            "risk is reviewed again at least once a year",
            field="predicate.expires",
        )
    marked = session.scalar(
        select(_M.c.model_id).where(_M.c.model_id == artifact_id, _M.c.trait == claim.trait)
    )
    if marked is None:
        raise UnprocessableError(
            f"sha256:{claim.artifact} is not at risk for {claim.trait!r}: there is no risk to "
            "accept",
            field="predicate.trait",
        )
    session.execute(
        insert(_ACC).values(
            attestation_id=attestation.id,
            artifact_id=artifact_id,
            trait=claim.trait,
            reason=claim.reason,
            expires_at=claim.expires,
            created_at=received,
        )
    )
    return {
        "result": {
            "trait": claim.trait,
            "artifact": claim.artifact,
            "expires": claim.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    }


def rows(session: Session) -> Any:
    """`risk_acceptances` by natural key, for the audit's replay."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in session.execute(select(_ACC, _A.c.digest).join(_A, _A.c.id == _ACC.c.artifact_id)):
        expires = r.expires_at if r.expires_at.tzinfo else r.expires_at.replace(tzinfo=UTC)
        out[(r.attestation_id,)] = {
            "artifact": r.digest,
            "trait": r.trait,
            "reason": r.reason,
            "expires": expires.astimezone(UTC).isoformat(),
        }
    return out
