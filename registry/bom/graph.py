"""The format-neutral picture of a model's upstream lineage that both BOM writers read.

The SPDX and CycloneDX writers take this frozen value, never database rows, so each writer is a
pure function of what the registry knows (and can be tested without a database), and both formats
always describe the same nodes, edges and risk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from lineage.types import ArtifactKind, Relation

__all__ = ["BomEdge", "BomGraph", "BomNode", "BomRisk", "RiskStatus"]

# The two ways an artifact carries a trait in a BOM.
RiskStatus = str  # "flagged" (a reviewer's statement) or "at_risk" (derived, with a path)


@dataclass(frozen=True, slots=True)
class BomNode:
    """One artifact of the lineage."""

    digest: str
    kind: ArtifactKind
    name: str
    version: str
    opaque: bool
    registered_by: str
    registered_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class BomEdge:
    """child -> parent by relation (digests)."""

    child: str
    parent: str
    relation: Relation


@dataclass(frozen=True, slots=True)
class BomRisk:
    """A flag in force on, or an at-risk mark of, one artifact of the lineage.

    `path` is the explanation of a mark (child, parent, relation) from the marked model to the
    flagged source; a flag has an empty path and names its own evidence.
    """

    artifact: str
    trait: str
    status: RiskStatus
    severity: str
    reason: str
    evidence: tuple[str, ...]
    source: str
    path: tuple[tuple[str, str, str], ...] = ()
    shared_base: tuple[str, ...] = ()


@dataclass(frozen=True)  # no slots: the indexes below are cached in the instance dict
class BomGraph:
    """A model's whole upstream lineage with its risk, as one value."""

    root: str
    nodes: tuple[BomNode, ...]
    edges: tuple[BomEdge, ...]
    risks: tuple[BomRisk, ...]
    generated_at: datetime
    server: str = "Studbook"
    truncated: bool = False

    def node(self, digest: str) -> BomNode:
        """The node with `digest` (KeyError if absent)."""
        return self._by_digest[digest]

    def parents(self, digest: str) -> list[BomEdge]:
        """Edges from `digest` to its parents, in a stable order."""
        return self._by_child.get(digest, [])

    def labels(self) -> dict[str, str]:
        """digest -> `name@version` of every node."""
        return {d: n.ref for d, n in self._by_digest.items()}

    # Indexes built once per graph: writers ask per node, and a scan each time is quadratic.
    @cached_property
    def _by_digest(self) -> dict[str, BomNode]:
        return {n.digest: n for n in self.nodes}

    @cached_property
    def _by_child(self) -> dict[str, list[BomEdge]]:
        out: dict[str, list[BomEdge]] = {}
        for e in self.edges:
            out.setdefault(e.child, []).append(e)
        return out
