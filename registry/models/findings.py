"""Tables of weights evidence (`registry/weights/`).

- `model_fingerprints`: one row per registered model whose registration signed a fingerprint
  (`metadata.fingerprint`), with its scheme and domain (vocabulary size or input width) and
  whether the model is a root of weights lineage (no weights parent). It is the index the
  after-registration test reads its candidates from: the most recent roots of one scheme and
  domain, by key, not a scan of every artifact's metadata. Derived from the registrations (and
  from confirmed findings, which add a weights edge), rebuilt by the audit's replay.
- `findings`: a disagreement between a model's weights and declared lineage, as the registry's
  own signed statement said it (the `attestation_id` row, signed with the log's key and logged),
  with the statistic and p-value, and where its review stands: `open` until a reviewer's signed
  confirmation or dismissal (`decision_attestation_id`) decides it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from . import utcnow

_BIG = BigInteger().with_variant(Integer(), "sqlite")


class ModelFingerprint(SQLModel, table=True):
    """A fingerprinted model, indexed by input space for the shared-base tests."""

    __tablename__ = "model_fingerprints"
    __table_args__ = (
        Index("ix_model_fingerprints_space", "scheme", "domain", "root", "artifact_id"),
    )

    artifact_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("artifacts.id"), primary_key=True, autoincrement=False)
    )
    scheme: str = Field(sa_column=Column(String(100), nullable=False))
    domain: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bool = Field(sa_column=Column(Boolean, nullable=False))
    # sha256 of the fingerprint's content (`registry.weights.service.content_key`): the key
    # its parsed Gram is cached under, so a candidate's metadata is read only on a cache miss.
    content_sha256: str = Field(sa_column=Column(String(64), nullable=False))


class Finding(SQLModel, table=True):
    """One finding and its review status."""

    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("kind", "model_id", "other_id", name="uq_findings_kind_pair"),
        Index("ix_findings_status_id", "status", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(_BIG, primary_key=True))
    attestation_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("attestations.id"), nullable=False, unique=True)
    )
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    model_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("artifacts.id"), nullable=False, index=True)
    )
    other_id: int = Field(
        sa_column=Column(_BIG, ForeignKey("artifacts.id"), nullable=False, index=True)
    )
    relation: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    statistic: float = Field(sa_column=Column(Float, nullable=False))
    p_value: float = Field(sa_column=Column(Float, nullable=False))
    permutations: int = Field(sa_column=Column(Integer, nullable=False))
    reason: str = Field(sa_column=Column(String(500), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    decision_attestation_id: int | None = Field(
        default=None, sa_column=Column(_BIG, ForeignKey("attestations.id"), nullable=True)
    )
    decision_reason: str | None = Field(default=None, sa_column=Column(String(4000), nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


__all__ = ["Finding", "ModelFingerprint"]
