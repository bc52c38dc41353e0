"""Artifacts: no separate index on `name`.

`uq_artifacts_name_version`, the unique index on (name, version), already serves every lookup by
name (`name = ?`, `name IN (...)`, with or without the version), so `ix_artifacts_name` only cost
each registration one more random index page to write. Substring search (`LIKE '%q%'`) uses
neither.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_artifacts_name", table_name="artifacts")


def downgrade() -> None:
    op.create_index("ix_artifacts_name", "artifacts", ["name"], unique=False)
