"""Value types of the lineage graph.

Artifacts are identified by content (a sha256 digest), not by name: two registrations of the same
bytes are the same artifact whatever they are called. Relations form a closed set; each knows its
family (weights lineage vs data lineage) and which kinds of artifact it may join, so that the rule
"a dataset cannot be fine-tuned from a model" lives in one table instead of in every caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import DigestError, RelationError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactKind(StrEnum):
    """What an artifact is."""

    MODEL = "model"
    DATASET = "dataset"


class RelationFamily(StrEnum):
    """Weights lineage (the child's weights come from the parent's) or data lineage."""

    WEIGHTS = "weights"
    DATA = "data"


class Relation(StrEnum):
    """An edge from child to parent. Values are the wire names."""

    FINE_TUNED_FROM = "fine_tuned_from"
    ADAPTER_OF = "adapter_of"
    MERGED_FROM = "merged_from"
    QUANTIZED_FROM = "quantized_from"
    PROMPTED_FROM = "prompted_from"
    INITIALIZED_FROM = "initialized_from"
    TRAINED_ON = "trained_on"
    GENERATED_BY = "generated_by"
    DERIVED_FROM = "derived_from"

    @property
    def family(self) -> RelationFamily:
        """Whether the relation carries weights or data lineage."""
        return _RULES[self][0]

    @property
    def child_kind(self) -> ArtifactKind:
        """The kind the child of this relation must be."""
        return _RULES[self][1]

    @property
    def parent_kind(self) -> ArtifactKind:
        """The kind the parent of this relation must be."""
        return _RULES[self][2]

    @property
    def is_weights(self) -> bool:
        """True for the six weights-lineage relations."""
        return self.family is RelationFamily.WEIGHTS

    def check_kinds(self, child: ArtifactKind, parent: ArtifactKind) -> None:
        """Raise `RelationError` unless this relation may join `child` to `parent`.

        Raises:
            RelationError: the kinds do not fit, naming what was expected.
        """
        if child is not self.child_kind or parent is not self.parent_kind:
            raise RelationError(
                f"relation {self.value!r} joins a {self.child_kind.value} (child) to a "
                f"{self.parent_kind.value} (parent), got a {child.value} to a {parent.value}",
                relation=self.value,
                child_kind=child.value,
                parent_kind=parent.value,
            )


_M, _D = ArtifactKind.MODEL, ArtifactKind.DATASET
_W, _DL = RelationFamily.WEIGHTS, RelationFamily.DATA
_RULES: dict[Relation, tuple[RelationFamily, ArtifactKind, ArtifactKind]] = {
    Relation.FINE_TUNED_FROM: (_W, _M, _M),
    Relation.ADAPTER_OF: (_W, _M, _M),
    Relation.MERGED_FROM: (_W, _M, _M),
    Relation.QUANTIZED_FROM: (_W, _M, _M),
    Relation.PROMPTED_FROM: (_W, _M, _M),
    Relation.INITIALIZED_FROM: (_W, _M, _M),
    Relation.TRAINED_ON: (_DL, _M, _D),
    Relation.GENERATED_BY: (_DL, _D, _M),
    Relation.DERIVED_FROM: (_DL, _D, _D),
}

WEIGHTS_RELATIONS: frozenset[Relation] = frozenset(r for r in Relation if r.is_weights)
DATA_RELATIONS: frozenset[Relation] = frozenset(r for r in Relation if not r.is_weights)


def check_digest(digest: str, *, field_name: str = "digest") -> str:
    """Return `digest` as 64 lowercase hex characters, accepting an optional `sha256:` prefix.

    Raises:
        DigestError: the value is not a sha256 hex digest.
    """
    value = digest[7:] if digest.startswith("sha256:") else digest
    if not _HEX64.match(value):
        raise DigestError(
            f"{field_name} must be 64 lowercase hex characters (sha256), got {digest!r}",
            field=field_name,
        )
    return value


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A model or dataset: its content digest plus the human name and version it was given."""

    kind: ArtifactKind
    name: str
    version: str
    digest: str
    opaque: bool = False

    def __post_init__(self) -> None:
        check_digest(self.digest)

    @property
    def label(self) -> str:
        """`name@version`, the human reference."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Edge:
    """child -> parent by `relation`; endpoints are artifact digests."""

    child: str
    parent: str
    relation: Relation


@dataclass(frozen=True, slots=True)
class ParentLink:
    """A declared parent of an artifact being registered."""

    relation: Relation
    digest: str


@dataclass(frozen=True, slots=True)
class Registration:
    """What one registration statement says: an artifact and its declared parents."""

    artifact: ArtifactRef
    parents: tuple[ParentLink, ...] = ()
    metadata: dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    def edges(self) -> tuple[Edge, ...]:
        """The edges this registration adds, child first."""
        return tuple(Edge(self.artifact.digest, p.digest, p.relation) for p in self.parents)
