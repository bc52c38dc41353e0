"""Review workspace: browser sessions, when each reviewer last saw the queue, risk acceptances.

`risk_acceptances` is derived from signed statements (the risk-acceptance predicate); no such
statement was accepted before this revision, so there is nothing to backfill.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_id", _ID, nullable=False),
        sa.Column("token_id", _ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_principal_id"), ["principal_id"])
        batch_op.create_index(batch_op.f("ix_web_sessions_token_id"), ["token_id"])
        batch_op.create_index(batch_op.f("ix_web_sessions_expires_at"), ["expires_at"])
    op.create_table(
        "review_seen",
        sa.Column("principal_id", _ID, autoincrement=False, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.PrimaryKeyConstraint("principal_id"),
    )
    op.create_table(
        "risk_acceptances",
        sa.Column("attestation_id", _ID, autoincrement=False, nullable=False),
        sa.Column("artifact_id", _ID, nullable=False),
        sa.Column("trait", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=4000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"]),
        sa.ForeignKeyConstraint(["attestation_id"], ["attestations.id"]),
        sa.PrimaryKeyConstraint("attestation_id"),
    )
    with op.batch_alter_table("risk_acceptances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_acceptances_artifact_trait", ["artifact_id", "trait"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("risk_acceptances", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_acceptances_artifact_trait")
    op.drop_table("risk_acceptances")
    op.drop_table("review_seen")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_token_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_principal_id"))
    op.drop_table("web_sessions")
