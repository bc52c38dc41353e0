"""Tables of the review workspace (`registry/sessions/`, `registry/reviews/`).

- `web_sessions`: a browser's signed-in session. Only the sha256 of the session secret and of its
  CSRF token are stored (both 256-bit random, so a fast hash is enough and a database leak gives
  no usable cookie). A session hangs off the API token it was opened with: revoking that token,
  or the principal's role changing, ends it at the next request.
- `review_seen`: per principal, when they last looked at the review queue, so the queue can say
  what changed since.
- `risk_acceptances`: a reviewer's signed acceptance of a model's risk for a trait, with a reason
  and an expiry. Derived from envelopes like the other review statements, rebuilt by the audit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from . import utcnow

_BIG = BigInteger().with_variant(Integer(), "sqlite")


class WebSession(SQLModel, table=True):
    """A signed-in browser session."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    csrf_hash: str = Field(sa_column=Column(String(64), nullable=False))
    principal_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("principals.id"), nullable=False, index=True)
    )
    token_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("api_tokens.id"), nullable=False, index=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class ReviewSeen(SQLModel, table=True):
    """When a principal last looked at the review queue."""

    __tablename__ = "review_seen"

    principal_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("principals.id"), primary_key=True, autoincrement=False)
    )
    seen_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RiskAcceptance(SQLModel, table=True):
    """A signed acceptance of (model, trait) risk until `expires_at`."""

    __tablename__ = "risk_acceptances"
    __table_args__ = (Index("ix_risk_acceptances_artifact_trait", "artifact_id", "trait"),)

    attestation_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("attestations.id"), primary_key=True, autoincrement=False)
    )
    artifact_id: int = Field(sa_column=Column(_BIG, ForeignKey("artifacts.id"), nullable=False))
    trait: str = Field(sa_column=Column(String(100), nullable=False))
    reason: str = Field(sa_column=Column(String(4000), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
