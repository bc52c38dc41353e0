"""Tables of the ecosystem imports (`registry/imports/`).

`model_signatures`: OpenSSF model-signing bundles kept as evidence for an artifact, exactly as
received (the bundle is a signed document; like an envelope, it is stored verbatim and parsed
lazily). The row is linked to its artifact by digest, the artifact's identity, rather than by
id: the bundle is checked and recorded in the same transaction that registers the artifact, before
the artifact row exists, so that a refusal of either writes neither.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from . import utcnow

_BIG = BigInteger().with_variant(Integer(), "sqlite")


class ModelSignature(SQLModel, table=True):
    """A verified model-signing bundle for the artifact with `artifact_digest`."""

    __tablename__ = "model_signatures"
    __table_args__ = (
        UniqueConstraint(
            "artifact_digest", "payload_digest", name="uq_model_signatures_artifact_payload"
        ),
    )

    id: int | None = Field(default=None, sa_type=_BIG, primary_key=True)
    artifact_digest: str = Field(max_length=64, index=True)
    payload_digest: str = Field(max_length=64)
    subject_name: str = Field(max_length=500)
    files: int
    signer_keyid: str | None = Field(default=None, foreign_key="keys.keyid", max_length=64)
    signer_identity: str | None = Field(default=None, max_length=500)
    principal_id: int = Field(foreign_key="principals.id", sa_type=_BIG)
    bundle: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
