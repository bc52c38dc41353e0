"""Lineage indexes for the risk rule: weights-ancestor sets and data sources.

Both tables follow from the edges alone (see `registry/risk/derived.py`), so an existing registry
is backfilled here: the ancestor sets with one recursive query, the data sources dataset by
dataset, parents first, with the same least-shortest-path choice ingest makes. The backfill is
written against the tables as they stand at this revision, not against the service code, so it
keeps working as the service changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_WEIGHTS = ('adapter_of', 'fine_tuned_from', 'initialized_from', 'merged_from', 'prompted_from',
            'quantized_from')


def upgrade() -> None:
    op.create_table('weights_ancestors',
    sa.Column('model_id', _BIG, autoincrement=False, nullable=False),
    sa.Column('ancestor_id', _BIG, autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['ancestor_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['artifacts.id'], ),
    sa.PrimaryKeyConstraint('model_id', 'ancestor_id')
    )
    with op.batch_alter_table('weights_ancestors', schema=None) as batch_op:
        batch_op.create_index('ix_weights_ancestors_ancestor', ['ancestor_id'], unique=False)

    op.create_table('data_sources',
    sa.Column('dataset_id', _BIG, autoincrement=False, nullable=False),
    sa.Column('source_id', _BIG, autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('distance', sa.Integer(), nullable=False),
    sa.Column('path', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['source_id'], ['artifacts.id'], ),
    sa.PrimaryKeyConstraint('dataset_id', 'source_id')
    )
    with op.batch_alter_table('data_sources', schema=None) as batch_op:
        batch_op.create_index('ix_data_sources_source', ['source_id'], unique=False)

    _backfill(op.get_bind())


def _backfill(conn: Any) -> None:
    weights = ", ".join(f"'{r}'" for r in _WEIGHTS)
    conn.execute(sa.text(
        "INSERT INTO weights_ancestors (model_id, ancestor_id) "
        "WITH RECURSIVE wa(model_id, ancestor_id) AS ("
        "SELECT id, id FROM artifacts WHERE kind = 'model' UNION "
        "SELECT wa.model_id, e.parent_id FROM wa JOIN edges e ON e.child_id = wa.ancestor_id "
        f"WHERE e.relation IN ({weights})) SELECT model_id, ancestor_id FROM wa"
    ))
    datasets = [
        r[0] for r in conn.execute(sa.text("SELECT id FROM artifacts WHERE kind = 'dataset'"))
    ]
    if not datasets:
        return
    parents: dict[int, list[tuple[str, str, int, str]]] = {d: [] for d in datasets}
    for c, p, rel, digest, kind in conn.execute(sa.text(
        "SELECT e.child_id, e.parent_id, e.relation, a.digest, a.kind FROM edges e "
        "JOIN artifacts a ON a.id = e.parent_id "
        "WHERE e.relation IN ('derived_from', 'generated_by')"
    )):
        parents[c].append((digest, rel, p, kind))
    done: dict[int, dict[int, tuple[str, int, list[Any]]]] = {}
    table = sa.table('data_sources', sa.column('dataset_id'), sa.column('source_id'),
                     sa.column('kind'), sa.column('distance'), sa.column('path', sa.JSON()))
    # Parents first: a depth-first order over derived_from parents (an iterative post-order).
    for root in datasets:
        stack = [(root, False)]
        while stack:
            d, ready = stack.pop()
            if d in done:
                continue
            pending = [p for _, rel, p, _ in parents[d] if rel == 'derived_from' and p not in done]
            if pending and not ready:
                stack.append((d, True))
                stack.extend((p, False) for p in pending)
                continue
            best: dict[int, tuple[str, int, list[Any]]] = {d: ('dataset', 0, [])}
            for _, rel, p, kind in sorted(parents[d]):
                if rel == 'generated_by':
                    offers = [(p, (kind, 1, [[p, rel]]))]
                else:
                    offers = [
                        (s, (k, n + 1, [[p, rel], *path])) for s, (k, n, path) in done[p].items()
                    ]
                for s, cand in offers:
                    if s not in best or cand[1] < best[s][1]:
                        best[s] = cand
            done[d] = best
    rows = [
        {"dataset_id": d, "source_id": s, "kind": k, "distance": n, "path": path}
        for d, best in done.items()
        for s, (k, n, path) in best.items()
    ]
    for i in range(0, len(rows), 5000):
        conn.execute(sa.insert(table), rows[i : i + 5000])


def downgrade() -> None:
    with op.batch_alter_table('data_sources', schema=None) as batch_op:
        batch_op.drop_index('ix_data_sources_source')

    op.drop_table('data_sources')
    with op.batch_alter_table('weights_ancestors', schema=None) as batch_op:
        batch_op.drop_index('ix_weights_ancestors_ancestor')

    op.drop_table('weights_ancestors')
