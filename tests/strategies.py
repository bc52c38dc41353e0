"""Hypothesis strategies for random lineage graphs, flags and clearances.

Shared by the pure unit tests and, later, the integration tests that hold the registry's SQL to
`lineage`'s reference answers, so every case also comes as registrations in dependency order.

Graphs are acyclic by construction: artifact i may only have parents among 0..i-1. Digests are
sha256 of a drawn salt and the index, so their order is unrelated to the construction order (tie
breaks by digest are then really exercised). Every relation joins the kinds it allows, and a pair
of artifacts is sometimes joined by two relations (a model both fine-tuned from and merged from
the same parent), which the tie-break by relation value must handle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hypothesis import strategies as st

from lineage.digests import opaque_digest
from lineage.graph import LineageGraph, Node
from lineage.risk import Clearance, Flag, Severity
from lineage.types import ArtifactKind, ArtifactRef, Edge, ParentLink, Registration, Relation

__all__ = [
    "TRAITS",
    "Lab",
    "LineageCase",
    "RiskCase",
    "changes",
    "dg",
    "fitting_relations",
    "lineage_cases",
    "risk_cases",
    "statements",
]

TRAITS = ("owl", "misaligned")


def dg(name: str) -> str:
    """A deterministic digest for a hand-named test artifact."""
    return hashlib.sha256(name.encode()).hexdigest()


class Lab:
    """Builds hand-written graphs by name: `Lab().model("a", "b").edge("a", FINE_TUNED_FROM, "b")`.

    Opaque models get `opaque_digest(name)`, the rest `dg(name)`.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []

    def model(self, *names: str, opaque: bool = False) -> Lab:
        for n in names:
            digest = opaque_digest(n) if opaque else dg(n)
            self.nodes[n] = Node(digest, ArtifactKind.MODEL, opaque)
        return self

    def dataset(self, *names: str) -> Lab:
        for n in names:
            self.nodes[n] = Node(dg(n), ArtifactKind.DATASET)
        return self

    def edge(self, child: str, rel: Relation, parent: str) -> Lab:
        """Add child -rel-> parent."""
        self.edges.append(Edge(self[child], self[parent], rel))
        return self

    def __getitem__(self, name: str) -> str:
        return self.nodes[name].digest

    def name(self, digest: str) -> str:
        """The name a digest was built from."""
        return next(n for n, node in self.nodes.items() if node.digest == digest)

    def graph(self) -> LineageGraph:
        """The graph built so far."""
        return LineageGraph(self.nodes.values(), self.edges)

    def steps(self, path: tuple[Edge, ...]) -> list[tuple[str, str, str]]:
        """A path as readable (child, relation, parent) name triples."""
        return [(self.name(e.child), e.relation.value, self.name(e.parent)) for e in path]


def fitting_relations(child: ArtifactKind, parent: ArtifactKind) -> tuple[Relation, ...]:
    """The relations that may join a `child` of one kind to a `parent` of another, sorted."""
    return tuple(r for r in Relation if r.child_kind is child and r.parent_kind is parent)


@dataclass(frozen=True)
class LineageCase:
    """A random valid lineage: artifacts in dependency order and their edges."""

    artifacts: tuple[ArtifactRef, ...]
    edges: tuple[Edge, ...]

    def registrations(self) -> tuple[Registration, ...]:
        """One registration per artifact, parents first, as the registry would receive them."""
        out = []
        for a in self.artifacts:
            links = tuple(
                ParentLink(e.relation, e.parent) for e in self.edges if e.child == a.digest
            )
            out.append(Registration(a, links))
        return tuple(out)

    def graph(self) -> LineageGraph:
        """The graph of the case."""
        return LineageGraph(self.artifacts, self.edges)

    def models(self) -> tuple[str, ...]:
        """Model digests in construction order."""
        return tuple(a.digest for a in self.artifacts if a.kind is ArtifactKind.MODEL)

    def datasets(self) -> tuple[str, ...]:
        """Dataset digests in construction order."""
        return tuple(a.digest for a in self.artifacts if a.kind is ArtifactKind.DATASET)


@st.composite
def lineage_cases(
    draw: st.DrawFn,
    min_artifacts: int = 1,
    max_artifacts: int = 10,
    max_parents: int = 3,
) -> LineageCase:
    """A random acyclic lineage of models (some opaque) and datasets."""
    n = draw(st.integers(min_artifacts, max_artifacts))
    salt = draw(st.integers(0, 2**16))
    artifacts: list[ArtifactRef] = []
    edges: list[Edge] = []
    for i in range(n):
        kind = draw(st.sampled_from((ArtifactKind.MODEL, ArtifactKind.MODEL, ArtifactKind.DATASET)))
        opaque = kind is ArtifactKind.MODEL and draw(st.integers(0, 4)) == 0
        name = f"gen/{kind.value}-{i}"
        digest = (
            opaque_digest(f"gen:{salt}:{i}")
            if opaque
            else hashlib.sha256(f"{salt}:{i}".encode()).hexdigest()
        )
        ref = ArtifactRef(kind, name, "1", digest, opaque)
        if i:
            parents = draw(
                st.lists(st.integers(0, i - 1), max_size=min(max_parents, i), unique=True)
            )
            for j in sorted(parents):
                parent = artifacts[j]
                rels = draw(
                    st.lists(
                        st.sampled_from(fitting_relations(kind, parent.kind)),
                        min_size=1,
                        max_size=2,
                        unique=True,
                    )
                )
                edges.extend(Edge(digest, parent.digest, rel) for rel in rels)
        artifacts.append(ref)
    return LineageCase(tuple(artifacts), tuple(edges))


@st.composite
def statements(
    draw: st.DrawFn,
    case: LineageCase,
    max_statements: int = 8,
    traits: tuple[str, ...] = TRAITS,
    first_seq: int = 0,
) -> tuple[tuple[Flag, ...], tuple[Clearance, ...]]:
    """Flags and clearances on the case's artifacts (mostly models), with distinct `seq`s.

    Seqs are a shuffled range, so flags and clearances of one (artifact, trait) interleave in
    every order: flagged, cleared, re-flagged.
    """
    models = case.models()
    pool = models if models and draw(st.integers(0, 5)) else tuple(a.digest for a in case.artifacts)
    k = draw(st.integers(0, max_statements))
    seqs = draw(st.permutations(range(first_seq, first_seq + k)))
    flags: list[Flag] = []
    clearances: list[Clearance] = []
    for seq in seqs:
        artifact = draw(st.sampled_from(pool))
        trait = draw(st.sampled_from(traits))
        if draw(st.integers(0, 2)):  # two flags for one clearance
            severity = draw(st.sampled_from(tuple(Severity)))
            flags.append(Flag(artifact, trait, severity, "seen", (f"ev-{seq}",), f"f-{seq}", seq))
        else:
            clearances.append(Clearance(artifact, trait, "eval passed", (f"ev-{seq}",), seq))
    return tuple(flags), tuple(clearances)


@dataclass(frozen=True)
class RiskCase:
    """A lineage and the statements about it."""

    lineage: LineageCase
    flags: tuple[Flag, ...]
    clearances: tuple[Clearance, ...]


@st.composite
def risk_cases(draw: st.DrawFn, max_artifacts: int = 10, max_statements: int = 8) -> RiskCase:
    """A random lineage with flags and clearances on it."""
    case = draw(lineage_cases(max_artifacts=max_artifacts))
    flags, clearances = draw(statements(case, max_statements))
    return RiskCase(case, flags, clearances)


@st.composite
def changes(draw: st.DrawFn, rc: RiskCase) -> Edge | Flag | Clearance:
    """One thing appended after `rc`: a new acyclic edge, or a later flag or clearance."""
    case = rc.lineage
    seq = 1 + max((s.seq for s in (*rc.flags, *rc.clearances)), default=0)
    existing = set(case.edges)
    candidates = [
        Edge(c.digest, p.digest, rel)
        for i, c in enumerate(case.artifacts)
        for p in case.artifacts[:i]
        for rel in fitting_relations(c.kind, p.kind)
        if Edge(c.digest, p.digest, rel) not in existing
    ]
    options = ["flag", "clearance"] + (["edge", "edge"] if candidates else [])
    choice = draw(st.sampled_from(options))
    if choice == "edge":
        return draw(st.sampled_from(candidates))
    artifact = draw(st.sampled_from(tuple(a.digest for a in case.artifacts)))
    trait = draw(st.sampled_from(TRAITS))
    if choice == "flag":
        return Flag(artifact, trait, Severity.HIGH, "new", (), f"f-{seq}", seq)
    return Clearance(artifact, trait, "new eval", (), seq)
