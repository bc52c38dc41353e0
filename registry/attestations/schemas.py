"""API shapes for attestations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..artifacts.schemas import AddedEdge, ArtifactPublic
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
    edges_added: int = Field(default=0, description="How many edges this statement added.")
    amended: bool = Field(
        default=False,
        description="True when an already registered artifact got new parents (an amendment, "
        "by its owner or an admin); `added_edges` lists them.",
    )
    added_edges: list[AddedEdge] = Field(
        default_factory=list, description="The edges this statement added: relation and parent."
    )
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
