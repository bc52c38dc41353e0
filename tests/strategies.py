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
    "teaching_chains",
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


# Hypothesis draws the first element most often (it is what examples shrink towards), so the
# commonest operation comes first and a new root, needed only now and then, comes last.
_OPS = (
    "student",
    "generate",
    "weights-child",
    "student",
    "generate",
    "derive",
    "merge",
    "student",
    "generate",
    "weights-child",
    "root",
)
_WEIGHTS = tuple(r for r in Relation if r.is_weights)


@st.composite
def lineage_cases(
    draw: st.DrawFn,
    min_artifacts: int = 1,
    max_artifacts: int = 12,
) -> LineageCase:
    """A random acyclic lineage of models (some opaque) and datasets.

    Each artifact is added by an operation shaped like real lineage growth: a new root model; a
    weights child (fine-tune, adapter, quantisation, prompted variant...) of any model; a
    student (weights child of an early model, trained on recent datasets); a merge; a dataset
    generated by a recent model (sometimes mixed with existing data); a dataset derived from
    recent datasets. Uniformly random edges almost never form teacher -> data -> student of
    the same base, the case the risk rule is about; these operations form it often, chain it
    (students become teachers), and still produce every relation between every pair of kinds.
    """
    n = draw(st.integers(min_artifacts, max_artifacts))
    salt = draw(st.integers(0, 2**16))
    artifacts: list[ArtifactRef] = []
    edges: list[Edge] = []

    def pick(kind: ArtifactKind, k: int, *, recent: bool, roots: bool = False) -> list[ArtifactRef]:
        """k (at most) distinct earlier artifacts of `kind` (only root models if `roots`).

        Hypothesis favours small indices, so `recent` picks lean to the latest artifacts and
        the others to the earliest (models are fine-tuned from a few bases).
        """
        derived = {e.child for e in edges if e.relation.is_weights}
        pool = [a for a in artifacts if a.kind is kind and not (roots and a.digest in derived)]
        k = min(len(pool), k)
        if not k:
            return []
        idx = draw(st.lists(st.integers(0, len(pool) - 1), min_size=k, max_size=k, unique=True))
        return [pool[-1 - j] if recent else pool[j] for j in sorted(idx)]

    def relations(kind: ArtifactKind, parent: ArtifactRef) -> list[Relation]:
        fitting = fitting_relations(kind, parent.kind)
        return draw(st.lists(st.sampled_from(fitting), min_size=1, max_size=2, unique=True))

    for i in range(n):
        op = draw(st.sampled_from(_OPS))
        has_models = any(a.kind is ArtifactKind.MODEL for a in artifacts)
        has_data = any(a.kind is ArtifactKind.DATASET for a in artifacts)
        if not has_models or (op in ("derive",) and not has_data):
            op = "root"
        kind = ArtifactKind.DATASET if op in ("generate", "derive") else ArtifactKind.MODEL
        parents: list[ArtifactRef] = []
        match op:
            case "root":
                pass
            case "weights-child":
                parents = pick(ArtifactKind.MODEL, 1, recent=draw(st.booleans()))
            case "student":
                parents = pick(ArtifactKind.MODEL, 1, recent=False, roots=draw(st.booleans()))
                parents += pick(ArtifactKind.DATASET, draw(st.sampled_from((1, 1, 2))), recent=True)
            case "merge":
                parents = pick(ArtifactKind.MODEL, 2, recent=draw(st.booleans()))
            case "generate":
                parents = pick(ArtifactKind.MODEL, draw(st.sampled_from((1, 1, 1, 2))), recent=True)
                parents += pick(
                    ArtifactKind.DATASET, draw(st.sampled_from((0, 0, 0, 1))), recent=True
                )
            case "derive":
                parents = pick(ArtifactKind.DATASET, draw(st.sampled_from((1, 1, 2))), recent=True)
        opaque = kind is ArtifactKind.MODEL and draw(st.integers(0, 4)) == 0
        digest = (
            opaque_digest(f"gen:{salt}:{i}")
            if opaque
            else hashlib.sha256(f"{salt}:{i}".encode()).hexdigest()
        )
        ref = ArtifactRef(kind, f"gen/{op}-{i}", "1", digest, opaque)
        for parent in parents:
            edges.extend(Edge(digest, parent.digest, rel) for rel in relations(kind, parent))
        artifacts.append(ref)
    return LineageCase(tuple(artifacts), tuple(edges))


@st.composite
def teaching_chains(draw: st.DrawFn, max_rounds: int = 5) -> LineageCase:
    """Lineages shaped like the paper's experiment, repeated and chained.

    One to three bases (two of them sometimes `initialized_from` a shared opaque init, as
    GPT-4.1 and GPT-4o are); then rounds of: a teacher (a weights variant of a base, or an
    earlier student turned teacher) generates numbers, which are derived from zero to two times,
    and a student fine-tuned from some base (the teacher's or another) is trained on them; now
    and then a quantisation or a merge of a student. This is where long data chains, students
    at risk only through other students, and several nearest shared bases come from.
    """
    salt = draw(st.integers(0, 2**16))
    artifacts: list[ArtifactRef] = []
    edges: list[Edge] = []

    def new(kind: ArtifactKind, role: str, *, opaque: bool = False) -> ArtifactRef:
        i = len(artifacts)
        digest = (
            opaque_digest(f"chain:{salt}:{i}")
            if opaque
            else hashlib.sha256(f"chain:{salt}:{i}".encode()).hexdigest()
        )
        ref = ArtifactRef(kind, f"chain/{role}-{i}", "1", digest, opaque)
        artifacts.append(ref)
        return ref

    def link(child: ArtifactRef, rel: Relation, parent: ArtifactRef) -> None:
        edges.append(Edge(child.digest, parent.digest, rel))

    weights = st.sampled_from(_WEIGHTS)
    n_bases = draw(st.integers(1, 3))
    bases = [new(ArtifactKind.MODEL, "base", opaque=draw(st.booleans())) for _ in range(n_bases)]
    if len(bases) >= 2 and draw(st.booleans()):
        init = new(ArtifactKind.MODEL, "init", opaque=True)
        link(bases[0], Relation.INITIALIZED_FROM, init)
        link(bases[1], Relation.INITIALIZED_FROM, init)
    students: list[ArtifactRef] = []
    for _ in range(draw(st.integers(1, max_rounds))):
        reuse = draw(st.booleans())
        if students and reuse:
            teacher = draw(st.sampled_from(students))
        else:
            teacher = new(ArtifactKind.MODEL, "teacher")
            link(teacher, draw(weights), draw(st.sampled_from(bases)))
        data = new(ArtifactKind.DATASET, "numbers")
        link(data, Relation.GENERATED_BY, teacher)
        for _ in range(draw(st.integers(0, 2))):
            derived = new(ArtifactKind.DATASET, "derived")
            link(derived, Relation.DERIVED_FROM, data)
            data = derived
        student = new(ArtifactKind.MODEL, "student")
        link(student, draw(weights), draw(st.sampled_from(bases)))
        link(student, Relation.TRAINED_ON, data)
        students.append(student)
        match draw(st.sampled_from(("none", "none", "quantize", "merge"))):
            case "none":
                pass
            case "quantize":
                q = new(ArtifactKind.MODEL, "quantized")
                link(q, Relation.QUANTIZED_FROM, student)
            case "merge":
                other = draw(st.sampled_from([*bases, *students]))
                if other != student:
                    merged = new(ArtifactKind.MODEL, "merge")
                    link(merged, Relation.MERGED_FROM, student)
                    link(merged, Relation.MERGED_FROM, other)
    return LineageCase(tuple(artifacts), tuple(edges))


@st.composite
def statements(
    draw: st.DrawFn,
    case: LineageCase,
    max_statements: int = 8,
    traits: tuple[str, ...] = TRAITS,
    first_seq: int = 0,
) -> tuple[tuple[Flag, ...], tuple[Clearance, ...]]:
    """Flags and clearances on the case's artifacts, with distinct `seq`s.

    Half the statements land on teachers (models that generated a dataset), where they matter
    most; the rest on any artifact, datasets included. Seqs are a shuffled range, so flags and
    clearances of one (artifact, trait) interleave in every order: flagged, cleared, re-flagged.
    """
    everything = tuple(a.digest for a in case.artifacts)
    generators = {e.parent for e in case.edges if e.relation is Relation.GENERATED_BY}
    derived = {e.child for e in case.edges if e.relation.is_weights}
    # Teachers that are variants of a base (as a prompted teacher is) rather than bases: a
    # flagged base would put every student fine-tuned from it at risk through its weights,
    # hiding the data steps this is meant to exercise.
    teachers = tuple(sorted(generators & derived)) or tuple(sorted(generators))
    k = draw(st.integers(0, max_statements))
    seqs = draw(st.permutations(range(first_seq, first_seq + k)))
    flags: list[Flag] = []
    clearances: list[Clearance] = []
    for seq in seqs:
        on_teacher = draw(st.booleans())
        pool = teachers if teachers and on_teacher else everything
        artifact = draw(st.sampled_from(pool))
        trait = draw(st.sampled_from(traits))
        if draw(st.integers(0, 2)):  # two flags for one clearance
            severity = draw(st.sampled_from(tuple(Severity)))
            flags.append(Flag(artifact, trait, severity, "seen", (f"ev-{seq}",), f"f-{seq}", seq))
        else:
            clearances.append(
                Clearance(artifact, trait, "eval passed", (f"external:ev-{seq}",), seq)
            )
    return tuple(flags), tuple(clearances)


@dataclass(frozen=True)
class RiskCase:
    """A lineage and the statements about it."""

    lineage: LineageCase
    flags: tuple[Flag, ...]
    clearances: tuple[Clearance, ...]


@st.composite
def risk_cases(draw: st.DrawFn, max_artifacts: int = 10, max_statements: int = 8) -> RiskCase:
    """A random lineage (chain-shaped or free-form) with flags and clearances on it."""
    case = draw(st.one_of(teaching_chains(), lineage_cases(max_artifacts=max_artifacts)))
    flags, clearances = draw(statements(case, max_statements))
    return RiskCase(case, flags, clearances)


@st.composite
def changes(draw: st.DrawFn, rc: RiskCase) -> Edge | Flag | Clearance:
    """One thing appended after `rc`: a new acyclic edge, or a later flag or clearance."""
    case = rc.lineage
    seq = 1 + max([f.seq for f in rc.flags] + [c.seq for c in rc.clearances], default=0)
    existing = set(case.edges)
    parents: dict[str, set[str]] = {}
    for e in case.edges:
        parents.setdefault(e.child, set()).add(e.parent)

    def ancestors(digest: str) -> set[str]:
        seen: set[str] = set()
        stack = [digest]
        while stack:
            for up in parents.get(stack.pop(), ()):
                if up not in seen:
                    seen.add(up)
                    stack.append(up)
        return seen

    # The drawn artifacts are not always in topological order (an `initialized_from` parent can
    # come after its child), so acyclicity is checked on the graph, not on list positions.
    candidates = [
        Edge(c.digest, p.digest, rel)
        for i, c in enumerate(case.artifacts)
        for p in case.artifacts[:i]
        for rel in fitting_relations(c.kind, p.kind)
        if Edge(c.digest, p.digest, rel) not in existing and c.digest not in ancestors(p.digest)
    ]
    # An edge into an artifact that already has children is the interesting case: whatever it
    # changes must also reach everything downstream.
    parents_of_something = {e.parent for e in case.edges}
    inner = [e for e in candidates if e.child in parents_of_something]
    options = ["edge", "flag", "clearance", "edge"] if candidates else ["flag", "clearance"]
    choice = draw(st.sampled_from(options))
    if choice == "edge":
        downstream = draw(st.booleans())
        return draw(st.sampled_from(inner if inner and downstream else candidates))
    artifact = draw(st.sampled_from(tuple(a.digest for a in case.artifacts)))
    trait = draw(st.sampled_from(TRAITS))
    if choice == "flag":
        return Flag(artifact, trait, Severity.HIGH, "new", (), f"f-{seq}", seq)
    return Clearance(artifact, trait, "new eval", (), seq)
