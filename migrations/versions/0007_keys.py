"""Keys: room for ECDSA public keys (PEM SubjectPublicKeyInfo), and each key's possession proof.

Ed25519 keys are stored as base64 of their 32 raw bytes (44 characters); an ECDSA P-384 key in
PEM is about 215. The column grows from VARCHAR(64) to VARCHAR(400), the request limit.
`keys.proof` keeps the DSSE envelope the key signed when it was registered (NULL for keys
registered before proofs were required).

On PostgreSQL that is one ALTER COLUMN. SQLite cannot alter a column type, and the usual batch
rebuild (copy, drop, rename) would drop `keys` while `attestations` references it, which fails
with foreign keys enforced (they are, and the pragma cannot be turned off inside the migration's
transaction). SQLite does not enforce VARCHAR lengths, so the change touches only the declared
type text: it is made with the procedure SQLite documents for schema edits that leave the stored
content unchanged (`writable_schema`, then a `schema_version` bump so that every connection
re-reads the schema).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_retype(old: str, new: str) -> None:
    """Rewrite `keys.public_key`'s declared type in SQLite's schema table."""
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'keys'"
    )
    create = sql.scalar_one()
    before, after = f"public_key {old}", f"public_key {new}"
    if create.count(before) != 1:
        raise RuntimeError(f"unexpected keys table definition, cannot retype public_key: {create}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'keys'",
        (create.replace(before, after),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    op.add_column("keys", sa.Column("proof", sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_retype("VARCHAR(64)", "VARCHAR(400)")
    else:
        op.alter_column(
            "keys",
            "public_key",
            existing_type=sa.String(length=64),
            type_=sa.String(length=400),
            existing_nullable=False,
        )


def downgrade() -> None:
    bind = op.get_bind()
    longer = bind.exec_driver_sql("SELECT count(*) FROM keys WHERE length(public_key) > 64")
    if longer.scalar_one():
        raise RuntimeError("ECDSA keys are registered; revoke and delete them before downgrading")
    op.drop_column("keys", "proof")  # SQLite 3.35+ drops a column in place
    if bind.dialect.name == "sqlite":
        _sqlite_retype("VARCHAR(400)", "VARCHAR(64)")
    else:
        op.alter_column(
            "keys",
            "public_key",
            existing_type=sa.String(length=400),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
