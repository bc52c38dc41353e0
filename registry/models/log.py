"""Tables of the transparency log (`registry/log/`).

- `log_entries`: one row per leaf, in log order. `entry` holds the exact bytes that were hashed
  into the leaf (see `registry.log.service.entry_bytes`), so anyone holding the entries can
  recompute every leaf hash without trusting how the database renders the envelope JSON.
- `log_nodes`: the hash of every complete subtree, keyed `(level, idx)` = leaves
  `[idx * 2**level, (idx + 1) * 2**level)`, level 0 being the leaf hashes (the scheme of
  `lineage.merkle`). Rows are written once, when their last leaf is appended, and never change;
  a proof for any tree size reads O(log n) of them in one query.
- `log_head`: a single row holding the tree size and its frontier (the hashes of the complete
  subtrees whose fold is the root, at most 64 of them). Appends lock it (`SELECT ... FOR UPDATE`
  on PostgreSQL, the database write lock on SQLite), which is what makes indices gap-free and
  unique under concurrent writers; the frontier is every node an append needs, so an append
  reads nothing else.
- `log_keys`: the log's identity: its origin (the checkpoints' first line and key name, chosen at
  the first start) and the public half of its Ed25519 checkpoint key. The private half never
  enters the database: it lives in a file readable by the server's user only
  (`STUDBOOK_LOG_KEY_FILE`, default `<data_dir>/log-key.pem`), so a copy of the database (a
  backup, a replica, a dump handed to an auditor) cannot sign checkpoints. Revision 0006 moved
  keys that older versions kept here out to that file.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
)
from sqlmodel import Field, SQLModel

# INTEGER on SQLite makes a single-column primary key an alias of the rowid (one B-tree).
_BIG = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


class LogHead(SQLModel, table=True):
    """The log's size; one row (`id` = 1), the lock every append takes."""

    __tablename__ = "log_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_log_head_single_row"),)

    id: int = Field(
        default=1, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False)
    )
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # The hashes of `subtree_nodes(0, size)`, concatenated: all an append or a checkpoint reads.
    frontier: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class LogEntry(SQLModel, table=True):
    """One leaf: the accepted envelope's logged bytes and the attestation it records."""

    __tablename__ = "log_entries"

    idx: int = Field(sa_column=Column(_BIG, primary_key=True, autoincrement=False))
    attestation_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("attestations.id"), nullable=False, unique=True)
    )
    envelope_digest: str = Field(max_length=64, unique=True)
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogNode(SQLModel, table=True):
    """The hash of one complete subtree; immutable once written."""

    __tablename__ = "log_nodes"
    # Clustered on the key on SQLite too: a proof's reads are key lookups only.
    __table_args__ = {"sqlite_with_rowid": False}

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LogKey(SQLModel, table=True):
    """The log's identity: origin and public checkpoint key (never the private key).

    The newest row is the active identity; older rows stay so that checkpoints signed before a
    rotation can still be checked by an operator.
    """

    __tablename__ = "log_keys"

    id: int | None = Field(default=None, sa_column=Column(_BIG, primary_key=True))
    origin: str = Field(sa_column=Column(Text, nullable=False))
    # Base64 of the raw 32-byte Ed25519 public key (the last part of the vkey).
    public_key: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


__all__ = ["LogEntry", "LogHead", "LogKey", "LogNode"]
