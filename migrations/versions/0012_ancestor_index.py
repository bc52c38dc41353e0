"""Drop the index of `weights_ancestors` by ancestor.

Every new model inserts one row per weights ancestor, and an index by ancestor put each of those
rows on a different page: on deep lineages that index cost more than everything else a
registration writes. Only an amendment looked descendants up through it; it now walks the
weights edges down instead (`registry/risk/derived.py`). Reads by model use the primary key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("weights_ancestors", schema=None) as batch_op:
        batch_op.drop_index("ix_weights_ancestors_ancestor")


def downgrade() -> None:
    with op.batch_alter_table("weights_ancestors", schema=None) as batch_op:
        batch_op.create_index("ix_weights_ancestors_ancestor", ["ancestor_id"], unique=False)
