"""Risk engine: reviewers' flags and clearances, and derived at-risk marks.

No flag or clearance predicate was accepted before this revision, so there is nothing to backfill.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:20:20.308186
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_marks',
    sa.Column('model_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('trait', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('via_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('path', sa.JSON(), nullable=False),
    sa.Column('shared_base', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['source_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['via_id'], ['artifacts.id'], ),
    sa.PrimaryKeyConstraint('model_id', 'trait')
    )
    with op.batch_alter_table('risk_marks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_marks_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_risk_marks_trait_created', ['trait', 'created_at'], unique=False)

    op.create_table('risk_statements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attestation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('artifact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('statement', sa.String(length=10), nullable=False),
    sa.Column('trait', sa.String(length=100), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=True),
    sa.Column('reason', sa.String(length=4000), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['artifact_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['attestation_id'], ['attestations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('attestation_id')
    )
    with op.batch_alter_table('risk_statements', schema=None) as batch_op:
        batch_op.create_index('ix_risk_statements_artifact_trait', ['artifact_id', 'trait'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_statements_trait'), ['trait'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('risk_statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_statements_trait'))
        batch_op.drop_index('ix_risk_statements_artifact_trait')

    op.drop_table('risk_statements')
    with op.batch_alter_table('risk_marks', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_marks_trait_created')
        batch_op.drop_index(batch_op.f('ix_risk_marks_created_at'))

    op.drop_table('risk_marks')
