"""Ecosystem imports: model-signing bundles kept as evidence (`model_signatures`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_signatures",
        sa.Column("id", _ID, nullable=False),
        sa.Column("artifact_digest", sa.String(length=64), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("subject_name", sa.String(length=500), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("signer_keyid", sa.String(length=64), nullable=True),
        sa.Column("signer_identity", sa.String(length=500), nullable=True),
        sa.Column("principal_id", _ID, nullable=False),
        sa.Column("bundle", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.ForeignKeyConstraint(["signer_keyid"], ["keys.keyid"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "artifact_digest", "payload_digest", name="uq_model_signatures_artifact_payload"
        ),
    )
    with op.batch_alter_table("model_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_signatures_artifact_digest"), ["artifact_digest"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("model_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_signatures_artifact_digest"))
    op.drop_table("model_signatures")
