"""Tables of the risk engine (`registry/risk/`). Both are derived from signed statements.

- `risk_statements`: one row per accepted flag or clearance, ordered by `seq` (the accepting
  attestation's id: writes are serialised, so it is the acceptance order). Rebuilt from envelopes.
- `risk_marks`: one row per at-risk (model, trait) with its explanation, kept current inside the
  transaction of every write that can change it. `created_at` is when the mark first appeared,
  which orders the review queue; it survives recomputations that leave the mark in place.

Two more tables index the lineage for the risk rule, independent of any flag, so that a fine-tune
check and a mark's recomputation are a handful of indexed lookups instead of a walk of the graph
(see `registry/risk/derived.py`). Both follow from the edges alone, are written in the transaction
of the registration that adds the edges, and are rebuilt from envelopes by the audit:

- `weights_ancestors`: per model, its weights-lineage ancestor set (itself included). Two models
  share a base exactly when their sets meet.
- `data_sources`: per dataset, every dataset its data came from through `derived_from` (itself
  included, at distance 0) and every model that generated any of it, each with the least shortest
  path the rule reports (`path`: `[[parent id, relation], ...]` from the dataset to the source).

`risk_marks`, `weights_ancestors` and `data_sources` hold artifact ids without foreign keys
(revision 0012): the service derives every row from artifacts and edges it has just read in the
same transaction, artifacts are never deleted, and the audit rebuilds the three tables and
compares; a foreign key would make each of the ten thousand marks of one flag probe and lock an
artifact row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from . import utcnow

_BIG = BigInteger().with_variant(Integer(), "sqlite")


class RiskStatement(SQLModel, table=True):
    """A reviewer's flag or clearance of (artifact, trait)."""

    __tablename__ = "risk_statements"
    __table_args__ = (Index("ix_risk_statements_artifact_trait", "artifact_id", "trait"),)

    id: int | None = Field(default=None, sa_column=Column(_BIG, primary_key=True))
    attestation_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("attestations.id"), nullable=False, unique=True)
    )
    artifact_id: int = Field(sa_column=Column(_BIG, ForeignKey("artifacts.id"), nullable=False))
    statement: str = Field(sa_column=Column(String(10), nullable=False))  # flag | clearance
    trait: str = Field(sa_column=Column(String(100), nullable=False, index=True))
    severity: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))
    reason: str = Field(sa_column=Column(String(4000), nullable=False))
    evidence: list[str] = Field(sa_column=Column(JSON, nullable=False))
    seq: int = Field(sa_column=Column(_BIG, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class RiskMarkRow(SQLModel, table=True):
    """An at-risk (model, trait) and the path that explains it."""

    __tablename__ = "risk_marks"
    __table_args__ = (Index("ix_risk_marks_trait_created", "trait", "created_at"),)

    model_id: int = Field(sa_column=Column(_BIG, primary_key=True, autoincrement=False))
    trait: str = Field(sa_column=Column(String(100), primary_key=True))
    kind: str = Field(sa_column=Column(String(10), nullable=False))  # data | weights
    source_id: int = Field(sa_column=Column(_BIG, nullable=False))
    via_id: int = Field(sa_column=Column(_BIG, nullable=False))
    # [[child digest, parent digest, relation], ...] from the model to the flagged source
    path: list[Any] = Field(sa_column=Column(JSON, nullable=False))
    shared_base: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )


class WeightsAncestor(SQLModel, table=True):
    """`ancestor_id` is `model_id` or one of the models its weights descend from."""

    __tablename__ = "weights_ancestors"
    # No index by ancestor (revision 0012): descendants are found over `edges`.

    model_id: int = Field(sa_column=Column(_BIG, primary_key=True, autoincrement=False))
    ancestor_id: int = Field(sa_column=Column(_BIG, primary_key=True, autoincrement=False))


class DataSource(SQLModel, table=True):
    """A dataset (`kind` "dataset") or generating model (`kind` "model") behind a dataset."""

    __tablename__ = "data_sources"
    __table_args__ = (Index("ix_data_sources_source", "source_id"),)

    dataset_id: int = Field(sa_column=Column(_BIG, primary_key=True, autoincrement=False))
    source_id: int = Field(sa_column=Column(_BIG, primary_key=True, autoincrement=False))
    kind: str = Field(sa_column=Column(String(10), nullable=False))  # model | dataset
    distance: int = Field(sa_column=Column(Integer, nullable=False))
    # [[parent id, relation], ...]: the least shortest path from the dataset to the source
    path: list[Any] = Field(sa_column=Column(JSON, nullable=False))
