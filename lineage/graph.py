"""The lineage graph and the walks the risk rule and lineage queries are made of.

A `LineageGraph` is an immutable, validated snapshot: every edge joins two known artifacts of the
kinds its relation allows, and no artifact is its own ancestor. It answers the questions the risk
rule is written in (weights ancestors, "shares a base", which models generated a dataset's data)
and the questions lineage pages ask (ancestors and descendants to a depth, with paths).

This module is the *reference*: the registry answers the same questions with recursive SQL and
property tests hold the two equal. Every answer is therefore defined independently of the
algorithm and of input order:

- **Shortest paths.** A path is a tuple of `Edge`s walked from a start artifact. Among the shortest
  paths (fewest edges) we return the lexicographically least, comparing step by step the key
  `(digest of the artifact the step arrives at, relation value)`. Breadth-first search that visits
  each node's steps in that key order, and keeps the first path that reaches a node, yields exactly
  this path (layer by layer the queue stays in lexicographic order of the paths), so SQL can
  reproduce it by ordering a path string of fixed-width digests and relation names.
- **Nearest shared bases.** Two models share a base when their weights-lineage ancestor sets (each
  model included) intersect. The intersection S is closed upwards (an ancestor of a shared ancestor
  is shared), so "closest to both" means the minimal elements of S: the shared ancestors none of
  whose strict weights-descendants is also in S (the lowest common ancestors of the DAG). There may
  be several (two models that both merge X and Y report X and Y); they are all returned, sorted by
  digest. If one model is a weights ancestor of the other, it is the only nearest base; a model
  shares itself as its own nearest base.
- **Opaque models** (API-only) are nodes like any other. Sharing is decided by declared
  `initialized_from` / `fine_tuned_from` / ... edges alone; the graph never sees names, so two
  opaque models called "gpt-4" share nothing unless someone signed a relation saying so.

Lineage is append-only (edges come from signed, logged statements), so there is no removal;
`with_edges` and `with_artifacts` return a new graph.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .errors import CycleError, LineageError
from .types import ArtifactKind, ArtifactRef, Edge, Relation, check_digest

__all__ = [
    "Direction",
    "LineageGraph",
    "Node",
    "Reach",
    "path_key",
    "step_key",
]


class Direction(StrEnum):
    """Which way a lineage walk goes: towards parents (`up`) or towards children (`down`)."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Node:
    """An artifact as the graph sees it: identity, kind and whether it is API-only.

    Names and versions are deliberately absent: they are for people, and nothing in the lineage
    rules may depend on them (two opaque models with equal names are unrelated unless declared).
    """

    digest: str
    kind: ArtifactKind
    opaque: bool = False

    def __post_init__(self) -> None:
        check_digest(self.digest)
        if self.opaque and self.kind is not ArtifactKind.MODEL:
            raise LineageError(f"only models can be opaque: {self.digest}", field="opaque")

    @classmethod
    def of(cls, artifact: ArtifactRef | Node) -> Node:
        """The node of an `ArtifactRef` (or a node, unchanged)."""
        if isinstance(artifact, Node):
            return artifact
        return cls(artifact.digest, artifact.kind, artifact.opaque)


@dataclass(frozen=True, slots=True)
class Reach:
    """An artifact reached by a walk, with the (least shortest) path of edges that reached it."""

    digest: str
    path: tuple[Edge, ...]

    @property
    def distance(self) -> int:
        """Number of edges walked."""
        return len(self.path)


def step_key(edge: Edge, direction: Direction = Direction.UP) -> tuple[str, str]:
    """The tie-break key of one step: the digest it arrives at, then the relation's wire name."""
    match direction:
        case Direction.UP:
            return (edge.parent, edge.relation.value)
        case Direction.DOWN:
            return (edge.child, edge.relation.value)


def path_key(
    path: tuple[Edge, ...], direction: Direction = Direction.UP
) -> tuple[int, tuple[tuple[str, str], ...]]:
    """Sort key of a path: fewer edges first, then lexicographic by `step_key`."""
    return (len(path), tuple(step_key(e, direction) for e in path))


_Steps = Callable[[str], Iterable[Edge]]


class LineageGraph:
    """A validated, immutable lineage DAG over artifact digests.

    Build it with `LineageGraph(artifacts, edges)`; it refuses edges to unknown artifacts
    (`LineageError`, field `parents`), relations joining the wrong kinds (`RelationError`) and
    cycles (`CycleError` with the cycle's path). Duplicate identical edges collapse into one.
    """

    __slots__ = ("_anc_cache", "_down", "_edges", "_nodes", "_up")

    def __init__(
        self,
        artifacts: Iterable[ArtifactRef | Node] = (),
        edges: Iterable[Edge] = (),
    ) -> None:
        nodes: dict[str, Node] = {}
        for artifact in artifacts:
            node = Node.of(artifact)
            known = nodes.get(node.digest)
            if known is not None and known != node:
                raise LineageError(
                    f"artifact {node.digest} given twice with different kind or opacity",
                    field="artifact",
                )
            nodes[node.digest] = node
        self._nodes: dict[str, Node] = dict(sorted(nodes.items()))
        self._up: dict[str, list[Edge]] = {d: [] for d in self._nodes}
        self._down: dict[str, list[Edge]] = {d: [] for d in self._nodes}
        self._edges: tuple[Edge, ...] = ()
        self._anc_cache: dict[str, frozenset[str]] = {}
        new = self._validated(edges)
        self.check_acyclic_after_adding(new)
        self._add(new)

    # ----------------------------------------------------------------- construction helpers

    def _validated(self, edges: Iterable[Edge]) -> list[Edge]:
        """Edges not yet in the graph, checked for known endpoints and fitting kinds."""
        fresh: set[Edge] = set()
        present = set(self._edges)
        for edge in edges:
            for end, digest in (("child", edge.child), ("parent", edge.parent)):
                if digest not in self._nodes:
                    raise LineageError(
                        f"edge {edge.relation.value} refers to unknown {end} artifact {digest}",
                        field="parents",
                    )
            edge.relation.check_kinds(self._nodes[edge.child].kind, self._nodes[edge.parent].kind)
            if edge not in present:
                fresh.add(edge)
        return sorted(fresh, key=_edge_sort_key)

    def _add(self, edges: list[Edge]) -> None:
        for edge in edges:
            self._up[edge.child].append(edge)
            self._down[edge.parent].append(edge)
        for lst in self._up.values():
            lst.sort(key=lambda e: step_key(e, Direction.UP))
        for lst in self._down.values():
            lst.sort(key=lambda e: step_key(e, Direction.DOWN))
        self._edges = tuple(sorted((*self._edges, *edges), key=_edge_sort_key))
        self._anc_cache = {}

    def with_artifacts(self, artifacts: Iterable[ArtifactRef | Node]) -> LineageGraph:
        """A new graph with more artifacts (and the same edges)."""
        return LineageGraph((*self._nodes.values(), *artifacts), self._edges)

    def with_edges(self, edges: Iterable[Edge]) -> LineageGraph:
        """A new graph with more edges, validated as in the constructor.

        Raises:
            LineageError: an endpoint is unknown. RelationError: kinds do not fit.
            CycleError: the edges would close a cycle.
        """
        return LineageGraph(self._nodes.values(), (*self._edges, *edges))

    # ------------------------------------------------------------------------- plain access

    @property
    def edges(self) -> tuple[Edge, ...]:
        """All edges, sorted by (child, parent, relation)."""
        return self._edges

    @property
    def nodes(self) -> Mapping[str, Node]:
        """Digest -> node, sorted by digest (read-only)."""
        return MappingProxyType(self._nodes)

    def __contains__(self, digest: object) -> bool:
        return digest in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, digest: str) -> Node:
        """The node of `digest`.

        Raises:
            LineageError: no such artifact (field `artifact`).
        """
        try:
            return self._nodes[digest]
        except KeyError:
            raise LineageError(f"unknown artifact {digest}", field="artifact") from None

    def kind(self, digest: str) -> ArtifactKind:
        """Model or dataset."""
        return self.node(digest).kind

    def models(self) -> tuple[str, ...]:
        """Digests of all models, sorted."""
        return tuple(d for d, n in self._nodes.items() if n.kind is ArtifactKind.MODEL)

    def datasets(self) -> tuple[str, ...]:
        """Digests of all datasets, sorted."""
        return tuple(d for d, n in self._nodes.items() if n.kind is ArtifactKind.DATASET)

    def _model(self, digest: str, field: str = "artifact") -> str:
        if self.node(digest).kind is not ArtifactKind.MODEL:
            raise LineageError(f"{digest} is a dataset, expected a model", field=field)
        return digest

    def _dataset(self, digest: str, field: str = "artifact") -> str:
        if self.node(digest).kind is not ArtifactKind.DATASET:
            raise LineageError(f"{digest} is a model, expected a dataset", field=field)
        return digest

    def parent_edges(self, digest: str) -> tuple[Edge, ...]:
        """Edges from `digest` to its parents, in step-key order."""
        self.node(digest)
        return tuple(self._up[digest])

    def child_edges(self, digest: str) -> tuple[Edge, ...]:
        """Edges from children to `digest`, in step-key (child digest, relation) order."""
        self.node(digest)
        return tuple(self._down[digest])

    def weights_parents(self, model: str) -> tuple[Edge, ...]:
        """The weights-lineage edges from `model` to the models its weights come from."""
        return tuple(e for e in self.parent_edges(self._model(model)) if e.relation.is_weights)

    def weights_children(self, model: str) -> tuple[Edge, ...]:
        """The weights-lineage edges from models whose weights come from `model`."""
        return tuple(e for e in self.child_edges(self._model(model)) if e.relation.is_weights)

    def topological_order(self) -> tuple[str, ...]:
        """Every artifact after all its parents; among those ready, the smallest digest first."""
        pending = {d: len({e.parent for e in self._up[d]}) for d in self._nodes}
        ready = [d for d, n in pending.items() if n == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            d = heapq.heappop(ready)
            order.append(d)
            for child in sorted({e.child for e in self._down[d]}):
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, child)
        return tuple(order)

    # ------------------------------------------------------------------------------ walks

    def _bfs(self, start: str, steps: _Steps, depth: int | None = None) -> dict[str, Reach]:
        """Least shortest paths from `start` to everything `steps` reaches.

        `steps(node)` yields the edges that may be walked from `node`, already in step-key order
        (the adjacency lists are kept sorted), which is what makes the first path found to a
        node the lexicographically least of its shortest paths.
        """
        found: dict[str, Reach] = {start: Reach(start, ())}
        queue: deque[str] = deque([start])
        while queue:
            here = queue.popleft()
            path = found[here].path
            if depth is not None and len(path) >= depth:
                continue
            for edge in steps(here):
                there = edge.parent if edge.child == here else edge.child
                if there not in found:
                    found[there] = Reach(there, (*path, edge))
                    queue.append(there)
        return found

    def walk(
        self,
        digest: str,
        direction: Direction,
        depth: int | None = None,
        relations: Iterable[Relation] | None = None,
    ) -> tuple[Reach, ...]:
        """Everything reachable from `digest` (excluded) going `direction`, with paths.

        Args:
            digest: where to start.
            direction: `UP` follows child -> parent edges (ancestors), `DOWN` the reverse.
            depth: at most this many edges (None: unbounded). Must not be negative.
            relations: follow only these relations (None: all nine).

        Returns:
            One `Reach` per artifact, ordered by (distance, digest), each with its least shortest
            path (see the module docstring).
        """
        self.node(digest)
        if depth is not None and depth < 0:
            raise LineageError(f"depth must be 0 or more, got {depth}", field="depth")
        allowed = frozenset(Relation) if relations is None else frozenset(relations)
        adjacency = self._up if direction is Direction.UP else self._down

        def steps(node: str) -> Iterable[Edge]:
            return (e for e in adjacency[node] if e.relation in allowed)

        found = self._bfs(digest, steps, depth)
        del found[digest]
        return tuple(sorted(found.values(), key=lambda r: (r.distance, r.digest)))

    def ancestors(self, digest: str, depth: int | None = None) -> frozenset[str]:
        """Artifacts reachable by following parents over all relations (itself excluded)."""
        return frozenset(r.digest for r in self.walk(digest, Direction.UP, depth))

    def descendants(self, digest: str, depth: int | None = None) -> frozenset[str]:
        """Artifacts reachable by following children over all relations (itself excluded)."""
        return frozenset(r.digest for r in self.walk(digest, Direction.DOWN, depth))

    def lineage_edges(
        self, digest: str, direction: Direction, depth: int | None = None
    ) -> tuple[Edge, ...]:
        """The edges a lineage drawing of `digest` to `depth` shows.

        These are the edges leaving (in `direction`) every artifact within distance `depth - 1`,
        i.e. every edge lying on some walk of at most `depth` edges; sorted by (child, parent,
        relation). A depth of 0 shows no edges.
        """
        if depth is not None and depth < 0:
            raise LineageError(f"depth must be 0 or more, got {depth}", field="depth")
        adjacency = self._up if direction is Direction.UP else self._down
        reach = {digest: 0} | {r.digest: r.distance for r in self.walk(digest, direction)}
        chosen = {
            e for d, dist in reach.items() if depth is None or dist < depth for e in adjacency[d]
        }
        return tuple(sorted(chosen, key=_edge_sort_key))

    def shortest_path(
        self,
        start: str,
        goal: str,
        direction: Direction = Direction.UP,
        relations: Iterable[Relation] | None = None,
    ) -> tuple[Edge, ...] | None:
        """The least shortest path from `start` to `goal`, `()` if equal, None if unreachable."""
        self.node(goal)
        if start == goal:
            self.node(start)
            return ()
        for reach in self.walk(start, direction, None, relations):
            if reach.digest == goal:
                return reach.path
        return None

    # ------------------------------------------------------------------- weights lineage

    def weights_ancestors(self, model: str) -> frozenset[str]:
        """`model` and every model its weights descend from, via weights relations only.

        Data lineage never contributes: a model trained on another model's outputs does not
        share that model's weights. Memoised; the graph is immutable.
        """
        cached = self._anc_cache.get(model)
        if cached is not None:
            return cached
        self._model(model)
        found = frozenset(
            self._bfs(model, lambda n: (e for e in self._up[n] if e.relation.is_weights))
        )
        self._anc_cache[model] = found
        return found

    def shares_base(self, a: str, b: str) -> bool:
        """Whether the weights-ancestor sets of models `a` and `b` (each included) intersect.

        Raises:
            LineageError: either is unknown or a dataset.
        """
        return not self.weights_ancestors(a).isdisjoint(self.weights_ancestors(b))

    def nearest_shared_bases(self, a: str, b: str) -> tuple[str, ...]:
        """The shared weights ancestors closest to both, sorted by digest; () if none.

        Precisely the minimal elements of S = ancestors(a) & ancestors(b): the members of S none
        of whose strict weights-descendants is in S. Ties (several minimal elements, as after
        merges) are all returned.
        """
        shared = self.weights_ancestors(a) & self.weights_ancestors(b)
        # s is non-minimal iff it is a strict weights ancestor of another member of S.
        dominated: set[str] = set()
        for s in shared:
            dominated |= self.weights_ancestors(s) - {s}
        return tuple(sorted(shared - dominated))

    # ---------------------------------------------------------------------- data lineage

    def _data_steps(self, origin: str) -> _Steps:
        """Steps of a data route: trained_on from `origin` only, then derived_from and
        generated_by between datasets; a model other than the origin ends the route."""

        def steps(node: str) -> Iterable[Edge]:
            match self._nodes[node].kind:
                case ArtifactKind.MODEL:
                    if node != origin:
                        return ()
                    return (e for e in self._up[node] if e.relation is Relation.TRAINED_ON)
                case ArtifactKind.DATASET:
                    return (
                        e
                        for e in self._up[node]
                        if e.relation in (Relation.DERIVED_FROM, Relation.GENERATED_BY)
                    )

        return steps

    def _routes(self, origin: str) -> tuple[Reach, ...]:
        found = self._bfs(origin, self._data_steps(origin))
        return tuple(
            r for d, r in found.items() if d != origin and self._nodes[d].kind is ArtifactKind.MODEL
        )

    def generators(self, dataset: str) -> tuple[Reach, ...]:
        """Models that generated `dataset`'s data, directly or behind any chain of derived_from.

        Each comes with its least shortest path `dataset -derived_from-> ... -generated_by-> G`.
        Sorted by digest.
        """
        self._dataset(dataset, field="dataset")
        return tuple(sorted(self._routes(dataset), key=lambda r: r.digest))

    def teachers(self, model: str) -> tuple[Reach, ...]:
        """Models whose generated data `model` was trained on, through any derived_from chain.

        Paths run `model -trained_on-> D -derived_from-> ... -generated_by-> G`, least shortest.
        Sorted by digest. Whether a teacher shares a base is a separate question
        (`shares_base`), because the risk rule needs both the route and the answer.
        """
        self._model(model, field="model")
        return tuple(sorted(self._routes(model), key=lambda r: r.digest))

    def students(self, model: str) -> tuple[Reach, ...]:
        """Models trained on data `model` generated, through any derived_from chain.

        The mirror of `teachers`: paths run downwards,
        `model <-generated_by- D <-derived_from- ... <-trained_on- S`, least shortest with steps
        keyed by the child reached. Sorted by digest.
        """
        self._model(model, field="model")

        def steps(node: str) -> Iterable[Edge]:
            match self._nodes[node].kind:
                case ArtifactKind.MODEL:
                    if node != model:
                        return ()
                    return (e for e in self._down[node] if e.relation is Relation.GENERATED_BY)
                case ArtifactKind.DATASET:
                    return (
                        e
                        for e in self._down[node]
                        if e.relation in (Relation.DERIVED_FROM, Relation.TRAINED_ON)
                    )

        found = self._bfs(model, steps)
        return tuple(
            sorted(
                (
                    r
                    for d, r in found.items()
                    if d != model and self._nodes[d].kind is ArtifactKind.MODEL
                ),
                key=lambda r: r.digest,
            )
        )

    # ----------------------------------------------------------------------------- cycles

    def check_acyclic_after_adding(self, edges: Iterable[Edge]) -> None:
        """Refuse `edges` if adding them to this graph would make an artifact its own ancestor.

        Endpoints need not be known yet (an artifact being registered has no node): unknown
        digests are simply nodes with no other edges.

        Raises:
            CycleError: with `path` = the digests of one cycle, child -> parent, first and last
                equal. The reported cycle is deterministic: the first new edge (in
                (child, parent, relation) order) that closes one, followed by the least shortest
                path back from its parent to its child.
        """
        new = sorted(set(edges), key=_edge_sort_key)
        up: dict[str, list[Edge]] = {}
        for e in (*self._edges, *new):
            up.setdefault(e.child, []).append(e)
        if _is_acyclic(up):
            return
        # Slow path, only to explain a refusal: find the first new edge on a cycle.
        for lst in up.values():
            lst.sort(key=lambda e: step_key(e, Direction.UP))
        for edge in new:
            if edge.child == edge.parent:
                path: tuple[str, ...] = (edge.child, edge.child)
            else:
                found = self._bfs(edge.parent, lambda n: up.get(n, ()))
                back = found.get(edge.child)
                if back is None:
                    continue
                path = (edge.child, edge.parent, *(e.parent for e in back.path))
            raise CycleError(
                f"adding {edge.relation.value} from {edge.child} to {edge.parent} would make "
                f"an artifact its own ancestor: {' -> '.join(path)}",
                path=path,
            )
        raise AssertionError("unreachable: the existing graph is acyclic")  # pragma: no cover


def _is_acyclic(up: Mapping[str, Iterable[Edge]]) -> bool:
    """Kahn's algorithm over child -> parent adjacency: True when every node can be removed."""
    indegree: dict[str, int] = {}
    for child, edges in up.items():
        indegree.setdefault(child, 0)
        for e in edges:
            indegree[e.parent] = indegree.get(e.parent, 0) + 1
    ready = [d for d, n in indegree.items() if n == 0]
    removed = 0
    while ready:
        d = ready.pop()
        removed += 1
        for e in up.get(d, ()):
            indegree[e.parent] -= 1
            if indegree[e.parent] == 0:
                ready.append(e.parent)
    return removed == len(indegree)


def _edge_sort_key(edge: Edge) -> tuple[str, str, str]:
    return (edge.child, edge.parent, edge.relation.value)
