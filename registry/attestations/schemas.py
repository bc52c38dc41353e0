"""API shapes for attestations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..artifacts.schemas import ArtifactPublic
from ..schema_types import UtcDateTime


class AttestationAccepted(BaseModel):
    """The answer to a submitted envelope."""

    attestation_id: int
    payload_digest: str
    predicate_type: str
    signer_keyid: str
    principal: str
    received_at: UtcDateTime
    created: bool
    artifact: ArtifactPublic | None = None
    edges_added: int = 0
    result: dict[str, Any] | None = None
    log_index: int | None = None
    inclusion_proof: dict[str, Any] | None = None


class AttestationPublic(BaseModel):
    """A stored attestation with its verbatim envelope."""

    id: int
    payload_digest: str
    predicate_type: str
    signer_keyid: str
    principal: str
    received_at: UtcDateTime
    envelope: dict[str, Any]
    statement: dict[str, Any]
