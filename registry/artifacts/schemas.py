"""API shapes for artifacts and lineage."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from lineage.types import ArtifactKind, Relation

from ..schema_types import UtcDateTime


class ArtifactPublic(BaseModel):
    """An artifact as the API shows it."""

    id: int
    digest: str
    kind: ArtifactKind
    name: str
    version: str
    ref: str
    opaque: bool
    metadata: dict[str, Any]
    owner: str = Field(
        description="The principal that first registered the artifact (the submitter of "
        "`attestation_id`); only it or an admin may add parents to it."
    )
    attestation_id: int = Field(description="The attestation that first registered it.")
    created_at: UtcDateTime


class ArtifactsPublic(BaseModel):
    """A page of artifacts."""

    data: list[ArtifactPublic]
    count: int
    limit: int
    offset: int


class Direction(StrEnum):
    """Which way a lineage query walks."""

    UP = "up"
    DOWN = "down"


class EdgePublic(BaseModel):
    """child -> parent, with the statement that asserted it."""

    child: str
    parent: str
    relation: Relation
    attestation_id: int = Field(description="The attestation that asserted this edge.")
    asserted_by: str = Field(description="The principal that submitted that attestation.")
    asserted_at: UtcDateTime = Field(description="When the registry accepted it.")


class AddedEdge(BaseModel):
    """An edge a registration added (for an amendment, each one is said out loud)."""

    relation: Relation
    parent: str = Field(description="The parent's digest.")
    parent_ref: str = Field(description="The parent's name@version.")


class LineageNode(BaseModel):
    """A node of a lineage answer, with its distance from the start."""

    artifact: ArtifactPublic
    depth: int
    flags: list[dict[str, Any]] = []
    at_risk: list[dict[str, Any]] = []


class LineagePublic(BaseModel):
    """Nodes and edges reachable from `root` in `direction`, up to `depth` hops."""

    root: str
    direction: Direction
    depth: int
    nodes: list[LineageNode]
    edges: list[EdgePublic]
    truncated: bool
