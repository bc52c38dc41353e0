"""Transparency log: entries, complete-subtree nodes, head (the append lock), checkpoint key.

Attestations accepted before this revision are appended in id order (their acceptance order), so
that every accepted envelope is in the log from the moment the log exists. The leaf bytes are
computed here with a frozen copy of `registry.log.leaf.entry_bytes`: a migration must keep
producing the same bytes whatever the application code later becomes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 20:19:02.223197
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

from lineage.merkle import leaf_hash, new_nodes_for_append


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 2000


def _entry_bytes(envelope: Any) -> bytes:
    # Frozen copy of registry.log.leaf.entry_bytes (leaf format v1).
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def upgrade() -> None:
    op.create_table('log_head',
    sa.Column('id', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('frontier', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name='ck_log_head_single_row'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('log_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('log_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx'),
    sqlite_with_rowid=False
    )
    op.create_table('log_entries',
    sa.Column('idx', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('attestation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('envelope_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('entry', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['attestation_id'], ['attestations.id'], ),
    sa.PrimaryKeyConstraint('idx'),
    sa.UniqueConstraint('attestation_id'),
    sa.UniqueConstraint('envelope_digest')
    )
    _backfill()


def _backfill() -> None:
    """Append every existing attestation, in id order, and write the head row."""
    bind = op.get_bind()
    attestations = sa.table(
        'attestations', sa.column('id', sa.BigInteger()), sa.column('envelope', sa.JSON())
    )
    entries = sa.table(
        'log_entries',
        sa.column('idx', sa.BigInteger()),
        sa.column('attestation_id', sa.BigInteger()),
        sa.column('envelope_digest', sa.String()),
        sa.column('entry', sa.LargeBinary()),
    )
    nodes = sa.table(
        'log_nodes',
        sa.column('level', sa.SmallInteger()),
        sa.column('idx', sa.BigInteger()),
        sa.column('hash', sa.LargeBinary()),
    )
    head = sa.table(
        'log_head',
        sa.column('id', sa.SmallInteger()),
        sa.column('size', sa.BigInteger()),
        sa.column('frontier', sa.LargeBinary()),
        sa.column('updated_at', sa.DateTime(timezone=True)),
    )
    # Appending reads only left siblings, and the left sibling at each level is the newest node
    # of that level: keeping one node per level keeps memory at O(log n).
    newest: dict[int, tuple[int, bytes]] = {}

    def left_sibling(level: int, idx: int) -> bytes:
        have_idx, h = newest[level]
        assert have_idx == idx
        return h

    size, last_id = 0, None
    while True:
        query = sa.select(attestations.c.id, attestations.c.envelope).order_by(attestations.c.id)
        if last_id is not None:
            query = query.where(attestations.c.id > last_id)
        rows = bind.execute(query.limit(_BATCH)).all()
        if not rows:
            break
        entry_rows, node_rows = [], []
        for att_id, envelope in rows:
            entry = _entry_bytes(envelope)
            entry_rows.append(
                {
                    'idx': size,
                    'attestation_id': att_id,
                    'envelope_digest': hashlib.sha256(entry).hexdigest(),
                    'entry': entry,
                }
            )
            for level, idx, h in new_nodes_for_append(size, leaf_hash(entry), left_sibling):
                newest[level] = (idx, h)
                node_rows.append({'level': level, 'idx': idx, 'hash': h})
            size += 1
            last_id = att_id
        bind.execute(entries.insert(), entry_rows)
        bind.execute(nodes.insert(), node_rows)
    # The frontier: the newest node of each level whose bit is set in the size, largest first.
    frontier = b''.join(
        newest[level][1] for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1
    )
    bind.execute(
        head.insert().values(id=1, size=size, frontier=frontier, updated_at=datetime.now(UTC))
    )


def downgrade() -> None:
    op.drop_table('log_entries')
    op.drop_table('log_nodes')
    op.drop_table('log_keys')
    op.drop_table('log_head')
