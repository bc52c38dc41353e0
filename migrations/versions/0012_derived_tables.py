"""Derived lineage and risk tables: no index of `weights_ancestors` by ancestor, no foreign keys.

`weights_ancestors`, `data_sources` and `risk_marks` are derived: the service writes them from
the artifacts and edges it has just checked, in the same transaction, artifacts are never deleted,
and the audit rebuilds all three from the envelopes and compares. What they cost on writes:

- every new model inserts one `weights_ancestors` row per weights ancestor, and an index by
  ancestor put each of those rows on a different page: on deep lineages it cost more than
  everything else a registration writes. Only an amendment looked descendants up through it; it
  now walks the weights edges down instead (`registry/risk/derived.py`);
- each foreign key made every inserted row probe and lock an `artifacts` row: three per risk mark,
  so a flag marking ten thousand models spent more time in those checks than in the insert.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFERENCES = {
    "weights_ancestors": ("model_id", "ancestor_id"),
    "data_sources": ("dataset_id", "source_id"),
    "risk_marks": ("model_id", "source_id", "via_id"),
}
# SQLite's foreign keys have no names; batch mode names them by this convention to drop them.
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("weights_ancestors", schema=None) as batch_op:
        batch_op.drop_index("ix_weights_ancestors_ancestor")
    bind = op.get_bind()
    for table, columns in _REFERENCES.items():
        if bind.dialect.name == "sqlite":
            with op.batch_alter_table(
                table, recreate="always", naming_convention=_CONVENTION
            ) as batch_op:
                for column in columns:
                    batch_op.drop_constraint(f"fk_{table}_{column}_artifacts", type_="foreignkey")
        else:
            for fk in sa.inspect(bind).get_foreign_keys(table):
                op.drop_constraint(fk["name"], table, type_="foreignkey")


def downgrade() -> None:
    for table, columns in _REFERENCES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.create_foreign_key(
                    f"fk_{table}_{column}_artifacts", "artifacts", [column], ["id"]
                )
    with op.batch_alter_table("weights_ancestors", schema=None) as batch_op:
        batch_op.create_index("ix_weights_ancestors_ancestor", ["ancestor_id"], unique=False)
