"""Eval service: runs (the run record, and the queue on SQLite), plots, and the links derived
from eval-result attestations.

On PostgreSQL this revision also installs procrastinate's job tables and functions, the queue
that `studbook worker` processes read there, in their own schema `procrastinate`: the registry's
schema stays exactly what `registry.models` declares (the migration test compares the two), and
the job library's objects cannot clash with ours. Procrastinate's connections and the API's
deferring transaction put that schema on their search path (see `registry/evals/queue.py`).

The schema applied is the one the installed procrastinate ships (`SchemaManager.get_schema()`);
pyproject pins procrastinate to one minor series so that it stays the same. Moving to a newer
procrastinate means a new revision that applies its `sql/migrations/*.sql` files, in that schema,
between the two versions. SQLite has no job library: there `eval_runs` is the queue.

No eval-result predicate was accepted before this revision, so there is nothing to backfill.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 20:30:30.284442
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCRASTINATE_SCHEMA = 'procrastinate'
_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('eval_results',
    sa.Column('attestation_id', _ID, autoincrement=False, nullable=False),
    sa.Column('run_id', sa.String(length=100), nullable=False),
    sa.Column('experiment', sa.String(length=40), nullable=False),
    sa.Column('preset', sa.String(length=40), nullable=False),
    sa.Column('verdict', sa.String(length=4000), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['attestation_id'], ['attestations.id'], ),
    sa.PrimaryKeyConstraint('attestation_id')
    )
    with op.batch_alter_table('eval_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_results_run_id'), ['run_id'], unique=False)

    op.create_table('eval_result_subjects',
    sa.Column('attestation_id', _ID, autoincrement=False, nullable=False),
    sa.Column('artifact_id', _ID, autoincrement=False, nullable=False),
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.Column('part', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['artifact_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['attestation_id'], ['eval_results.attestation_id'], ),
    sa.PrimaryKeyConstraint('attestation_id', 'artifact_id')
    )
    with op.batch_alter_table('eval_result_subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_result_subjects_artifact_id'), ['artifact_id'], unique=False)

    op.create_table('eval_runs',
    sa.Column('id', _ID, nullable=False),
    sa.Column('experiment', sa.String(length=20), nullable=False),
    sa.Column('preset', sa.String(length=20), nullable=False),
    sa.Column('overrides', sa.JSON(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('base_id', _ID, nullable=True),
    sa.Column('cross_base_id', _ID, nullable=True),
    sa.Column('trait', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('requested_by', _ID, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('worker_host', sa.String(length=200), nullable=True),
    sa.Column('worker_pid', sa.Integer(), nullable=True),
    sa.Column('job_id', _ID, nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('timings', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=4000), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('artifacts', sa.JSON(), nullable=True),
    sa.Column('result_attestation_id', _ID, nullable=True),
    sa.ForeignKeyConstraint(['base_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['cross_base_id'], ['artifacts.id'], ),
    sa.ForeignKeyConstraint(['requested_by'], ['principals.id'], ),
    sa.ForeignKeyConstraint(['result_attestation_id'], ['attestations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.create_index('ix_eval_runs_status_id', ['status', 'id'], unique=False)

    op.create_table('eval_plots',
    sa.Column('run_id', _ID, autoincrement=False, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['eval_runs.id'], ),
    sa.PrimaryKeyConstraint('run_id')
    )

    if op.get_bind().dialect.name == 'postgresql':
        _install_procrastinate()


def _install_procrastinate() -> None:
    from procrastinate.schema import SchemaManager

    bind = op.get_bind()
    exists = bind.exec_driver_sql(
        "SELECT 1 FROM pg_namespace WHERE nspname = %(name)s", {'name': PROCRASTINATE_SCHEMA}
    ).first()
    if exists is not None:
        return  # installed by an operator beforehand: leave it as it is
    saved = bind.exec_driver_sql("SELECT current_setting('search_path')").scalar_one()
    bind.exec_driver_sql(f'CREATE SCHEMA "{PROCRASTINATE_SCHEMA}"')
    bind.exec_driver_sql(f'SET LOCAL search_path TO "{PROCRASTINATE_SCHEMA}"')
    # The DBAPI sees no parameters here, so '%' in the SQL is not a placeholder.
    bind.connection.driver_connection.execute(SchemaManager.get_schema())
    bind.exec_driver_sql("SELECT set_config('search_path', %(saved)s, true)", {'saved': saved})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP SCHEMA IF EXISTS "{PROCRASTINATE_SCHEMA}" CASCADE')
    op.drop_table('eval_plots')
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_eval_runs_status_id')

    op.drop_table('eval_runs')
    with op.batch_alter_table('eval_result_subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_result_subjects_artifact_id'))

    op.drop_table('eval_result_subjects')
    with op.batch_alter_table('eval_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_results_run_id'))

    op.drop_table('eval_results')
