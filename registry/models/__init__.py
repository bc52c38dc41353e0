"""Tables. Only Alembic migrations create or change them; handlers never return a row.

The signed envelope is the source of truth: `attestations.envelope` holds it verbatim, and every
other table (artifacts, edges, and later flags and risk marks) is derived from envelopes and can
be rebuilt from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from .log import LogEntry, LogHead, LogKey, LogNode  # noqa: F401  (the transparency log)

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid alias) on SQLite.
_ID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Timezone-aware now, for defaults."""
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), **kw))


class Principal(SQLModel, table=True):
    """A person or pipeline that can call the API."""

    __tablename__ = "principals"

    id: int | None = Field(default=None, sa_type=_ID, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    role: str = Field(max_length=20)
    created_at: datetime = _ts(nullable=False)


class ApiToken(SQLModel, table=True):
    """A bearer token. Only its sha256 is stored: tokens are 256-bit random, so a fast hash is
    enough, and a database leak does not leak usable tokens."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, sa_type=_ID, primary_key=True)
    principal_id: int = Field(foreign_key="principals.id", sa_type=_ID, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(nullable=False)
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class SigningKey(SQLModel, table=True):
    """A principal's public key: Ed25519 (base64 of the raw 32 bytes) or ECDSA P-256/P-384 (PEM
    SubjectPublicKeyInfo), the forms of `lineage.dsse.public_key_text`. Registered only with
    proof of possession; revoked keys are kept: old signatures name them."""

    __tablename__ = "keys"

    keyid: str = Field(max_length=64, primary_key=True)
    public_key: str = Field(max_length=400)
    principal_id: int = Field(foreign_key="principals.id", sa_type=_ID, index=True)
    created_at: datetime = _ts(nullable=False)
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # The possession proof the key was registered with (a DSSE envelope the key signed naming its
    # principal), so anyone can check that its holder, not the registry, bound it to the
    # principal. None only for keys registered before proofs were required.
    proof: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Attestation(SQLModel, table=True):
    """A verified DSSE envelope, stored exactly as received."""

    __tablename__ = "attestations"

    id: int | None = Field(default=None, sa_type=_ID, primary_key=True)
    payload_digest: str = Field(max_length=64, unique=True)
    predicate_type: str = Field(max_length=200, index=True)
    envelope: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    signer_keyid: str = Field(foreign_key="keys.keyid", max_length=64)
    principal_id: int = Field(foreign_key="principals.id", sa_type=_ID)
    received_at: datetime = _ts(nullable=False)


class Artifact(SQLModel, table=True):
    """A model or dataset, identified by its content digest."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_artifacts_name_version"),)

    id: int | None = Field(default=None, sa_type=_ID, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=10, index=True)
    # Looked up by name through `uq_artifacts_name_version` (revision 0013).
    name: str = Field(max_length=200)
    version: str = Field(max_length=100)
    opaque: bool = False
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    attestation_id: int = Field(foreign_key="attestations.id", sa_type=_ID)
    created_at: datetime = _ts(nullable=False)


class LineageEdge(SQLModel, table=True):
    """child -> parent by relation, as declared by an attestation."""

    __tablename__ = "edges"
    __table_args__ = (
        UniqueConstraint("child_id", "parent_id", "relation", name="uq_edges_child_parent_rel"),
        Index("ix_edges_parent_id", "parent_id"),
    )

    id: int | None = Field(default=None, sa_type=_ID, primary_key=True)
    child_id: int = Field(foreign_key="artifacts.id", sa_type=_ID)
    parent_id: int = Field(foreign_key="artifacts.id", sa_type=_ID)
    relation: str = Field(max_length=20)
    attestation_id: int = Field(foreign_key="attestations.id", sa_type=_ID)


__all__ = [
    "ApiToken",
    "Artifact",
    "Attestation",
    "DataSource",
    "LineageEdge",
    "Principal",
    "RiskMarkRow",
    "RiskStatement",
    "SigningKey",
    "WeightsAncestor",
    "utcnow",
]

# Domain tables (evals, risk); imported last because they use `utcnow` from this module.
from .ecosystem import ModelSignature  # noqa: E402, F401  (ecosystem imports)
from .evals import EvalPlot, EvalResultRow, EvalResultSubject, EvalRun  # noqa: E402, F401
from .findings import Finding, ModelFingerprint  # noqa: E402, F401  (weights evidence)
from .risk import DataSource, RiskMarkRow, RiskStatement, WeightsAncestor  # noqa: E402
from .web import ReviewSeen, RiskAcceptance, WebSession  # noqa: E402, F401  (review workspace)
