"""API shapes for ecosystem imports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..artifacts.schemas import ArtifactPublic
from ..schema_types import UtcDateTime


class OmsImport(BaseModel):
    """A model-signing bundle and, unless the artifact is already registered, its registration."""

    bundle: dict[str, Any] = Field(description="The model-signing bundle (the model.sig file).")
    registration: dict[str, Any] | None = Field(
        default=None,
        description="The caller's signed Studbook registration (DSSE envelope) of the model "
        "the bundle signs; omit it when an artifact with that digest is already registered.",
    )


class OmsImported(BaseModel):
    """What an import did."""

    signature_id: int
    created: bool = Field(description="False when this bundle was already kept for the artifact.")
    artifact: ArtifactPublic
    attestation_id: int | None
    subject_digest: str
    files: int
    signer_keyid: str | None = Field(description="The registered key that made the signature.")
    signer_identity: str | None = Field(description="The certificate identity (keyless).")


class SignaturePublic(BaseModel):
    """A model-signing bundle kept as evidence for an artifact."""

    id: int
    artifact_digest: str
    payload_digest: str
    subject_name: str
    files: int
    signer_keyid: str | None
    signer_identity: str | None
    principal: str
    received_at: UtcDateTime
    bundle: dict[str, Any] | None = None


class SignaturesPublic(BaseModel):
    """The bundles kept for one artifact."""

    data: list[SignaturePublic]
    count: int
