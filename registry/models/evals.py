"""Tables of the eval service (`registry/evals/`).

- `eval_runs`: one row per requested run. It is both the run's record (status, progress,
  timings, result) and, on SQLite, the queue itself: a worker claims the oldest `queued` row by
  moving it to `running` in one conditional UPDATE under the database write lock. On PostgreSQL
  the queue is procrastinate's (its tables live in the `procrastinate` schema); `job_id` links
  the run to its job, and the row stays the run's record. `heartbeat_at`, `worker_host` and
  `worker_pid` let any process tell a live run from one whose worker died.
- `eval_plots`: the run's figure (PNG), kept apart so that listing runs never reads images; it is
  in the database, not on the worker's disk, because the API may run on another host.
- `eval_results` and `eval_result_subjects`: derived from accepted eval-result attestations
  (rebuilt by a replay like edges and marks): which run a result reports, and which models
  (students, teachers) it concerns, so an artifact's evals can be listed next to its lineage.
  `run_id` is the run's name in the statement, not a foreign key: a result posted from a local
  run (`studbook eval register`) has no row in `eval_runs`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlmodel import Field, SQLModel

from . import utcnow

_BIG = BigInteger().with_variant(Integer(), "sqlite")


def _ts(nullable: bool = True) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class EvalRun(SQLModel, table=True):
    """A requested eval run, its progress and its outcome."""

    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_status_id", "status", "id"),)

    id: int | None = Field(default=None, sa_column=Column(_BIG, primary_key=True))
    experiment: str = Field(sa_column=Column(String(20), nullable=False))
    preset: str = Field(sa_column=Column(String(20), nullable=False))
    overrides: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    base_id: int | None = Field(
        default=None, sa_column=Column(_BIG, ForeignKey("artifacts.id"), nullable=True)
    )
    cross_base_id: int | None = Field(
        default=None, sa_column=Column(_BIG, ForeignKey("artifacts.id"), nullable=True)
    )
    trait: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    status: str = Field(sa_column=Column(String(10), nullable=False))
    requested_by: int = Field(sa_column=Column(_BIG, ForeignKey("principals.id"), nullable=False))
    created_at: datetime = _ts(nullable=False)
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()
    cancel_requested: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    worker: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    worker_host: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    worker_pid: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    job_id: int | None = Field(default=None, sa_column=Column(_BIG, nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # [{"stage", "done", "total"}] in the order stages first reported
    progress: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # the run's last status lines ("seed 0: teacher 95%, ...")
    messages: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    timings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(String(4000), nullable=True))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # [{"role", "digest", "ref", "kind", "attestation_id"}] as registered when the run finished
    artifacts: list[Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    result_attestation_id: int | None = Field(
        default=None, sa_column=Column(_BIG, ForeignKey("attestations.id"), nullable=True)
    )


class EvalPlot(SQLModel, table=True):
    """A finished run's figure."""

    __tablename__ = "eval_plots"

    run_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("eval_runs.id"), primary_key=True, autoincrement=False)
    )
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    png: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class EvalResultRow(SQLModel, table=True):
    """An accepted eval-result attestation, by the run it reports."""

    __tablename__ = "eval_results"

    attestation_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("attestations.id"), primary_key=True, autoincrement=False)
    )
    run_id: str = Field(sa_column=Column(String(100), nullable=False, index=True))
    experiment: str = Field(sa_column=Column(String(40), nullable=False))
    preset: str = Field(sa_column=Column(String(40), nullable=False))
    verdict: str = Field(sa_column=Column(String(4000), nullable=False))
    metrics: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class EvalResultSubject(SQLModel, table=True):
    """A model an eval result is about, and the part it played (student or teacher)."""

    __tablename__ = "eval_result_subjects"

    attestation_id: int = Field(
        sa_column=Column(
            _BIG,
            ForeignKey("eval_results.attestation_id"),
            primary_key=True,
            autoincrement=False,
        )
    )
    artifact_id: int = Field(
        sa_column=Column(
            _BIG, ForeignKey("artifacts.id"), primary_key=True, autoincrement=False, index=True
        )
    )
    role: str = Field(sa_column=Column(String(100), nullable=False))
    part: str = Field(sa_column=Column(String(10), nullable=False))
