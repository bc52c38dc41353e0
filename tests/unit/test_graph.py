"""Lineage graph: validation, weights ancestry, shared bases, data routes, walks and cycles.

Hand-built graphs pin the definitions (nearest shared bases, tie-breaks, cycle paths); property
tests hold every walk to a deliberately naive oracle: networkx for reachability, and exhaustive
path enumeration for "the least shortest path".
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.digests import opaque_digest
from lineage.errors import CycleError, LineageError, RelationError
from lineage.graph import Direction, LineageGraph, Node, Reach
from lineage.types import ArtifactKind, ArtifactRef, Edge, Relation
from tests.strategies import Lab, LineageCase, dg, fitting_relations, lineage_cases

M, D = ArtifactKind.MODEL, ArtifactKind.DATASET
R = Relation
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------- validation


def test_edge_to_unknown_artifact_is_refused() -> None:
    lab = Lab().model("a")
    with pytest.raises(LineageError) as exc:
        LineageGraph(lab.nodes.values(), [Edge(lab["a"], dg("ghost"), R.FINE_TUNED_FROM)])
    assert exc.value.field == "parents"


def test_relation_joining_wrong_kinds_is_refused() -> None:
    lab = Lab().model("m").dataset("d")
    with pytest.raises(RelationError):
        lab.edge("d", R.FINE_TUNED_FROM, "m").graph()
    with pytest.raises(RelationError):
        Lab().model("m", "n").edge("m", R.GENERATED_BY, "n").graph()


def test_same_digest_with_conflicting_kind_is_refused() -> None:
    with pytest.raises(LineageError):
        LineageGraph([Node(dg("x"), M), Node(dg("x"), D)])


def test_opaque_dataset_is_refused() -> None:
    with pytest.raises(LineageError):
        Node(dg("x"), D, opaque=True)


def test_artifact_refs_and_duplicate_edges_are_accepted() -> None:
    a = ArtifactRef(M, "a", "1", dg("a"))
    b = ArtifactRef(M, "b", "1", dg("b"))
    e = Edge(a.digest, b.digest, R.FINE_TUNED_FROM)
    g = LineageGraph([a, b, a], [e, e])
    assert g.edges == (e,)
    assert g.node(a.digest) == Node(a.digest, M)


def test_unknown_digest_lookups_raise_lineage_error() -> None:
    g = Lab().model("a").graph()
    with pytest.raises(LineageError):
        g.weights_ancestors(dg("nope"))
    with pytest.raises(LineageError):
        g.walk(dg("nope"), Direction.UP)


def test_weights_questions_refuse_datasets() -> None:
    lab = Lab().model("m").dataset("d")
    g = lab.graph()
    with pytest.raises(LineageError):
        g.shares_base(lab["m"], lab["d"])
    with pytest.raises(LineageError):
        g.generators(lab["m"])


# ------------------------------------------------------------------------- weights lineage


def test_weights_ancestors_include_self_and_follow_only_weights_relations() -> None:
    lab = (
        Lab()
        .model("base", "ft", "lora", "q", "teacher", "student")
        .dataset("data")
        .edge("ft", R.FINE_TUNED_FROM, "base")
        .edge("lora", R.ADAPTER_OF, "ft")
        .edge("q", R.QUANTIZED_FROM, "lora")
        .edge("data", R.GENERATED_BY, "teacher")
        .edge("student", R.TRAINED_ON, "data")
    )
    g = lab.graph()
    assert g.weights_ancestors(lab["q"]) == {lab[n] for n in ("q", "lora", "ft", "base")}
    # Learning from a teacher's data does not make the teacher a weights ancestor.
    assert g.weights_ancestors(lab["student"]) == {lab["student"]}
    assert not g.shares_base(lab["student"], lab["teacher"])


def test_siblings_share_their_parent_as_nearest_base() -> None:
    lab = (
        Lab()
        .model("root", "base", "a", "b")
        .edge("base", R.FINE_TUNED_FROM, "root")
        .edge("a", R.PROMPTED_FROM, "base")
        .edge("b", R.FINE_TUNED_FROM, "base")
    )
    g = lab.graph()
    assert g.shares_base(lab["a"], lab["b"])
    # root is shared too, but base is a shared descendant of it: base is the nearest.
    assert g.nearest_shared_bases(lab["a"], lab["b"]) == (lab["base"],)


def test_nearest_shared_base_of_ancestor_and_self() -> None:
    lab = Lab().model("base", "a").edge("a", R.FINE_TUNED_FROM, "base")
    g = lab.graph()
    assert g.nearest_shared_bases(lab["a"], lab["base"]) == (lab["base"],)
    assert g.nearest_shared_bases(lab["a"], lab["a"]) == (lab["a"],)
    assert g.shares_base(lab["a"], lab["a"])


def test_nearest_shared_bases_report_every_tie_sorted_by_digest() -> None:
    lab = (
        Lab()
        .model("x", "y", "a", "b", "z")
        .edge("a", R.MERGED_FROM, "x")
        .edge("a", R.MERGED_FROM, "y")
        .edge("b", R.MERGED_FROM, "x")
        .edge("b", R.MERGED_FROM, "y")
        .edge("x", R.INITIALIZED_FROM, "z")
    )
    g = lab.graph()
    assert g.nearest_shared_bases(lab["a"], lab["b"]) == tuple(sorted((lab["x"], lab["y"])))


def test_unrelated_models_share_nothing() -> None:
    lab = Lab().model("a", "b")
    g = lab.graph()
    assert not g.shares_base(lab["a"], lab["b"])
    assert g.nearest_shared_bases(lab["a"], lab["b"]) == ()


def test_opaque_models_share_a_base_only_through_declared_relations() -> None:
    # Two API-only models both called "gpt-4" by their registrants: the graph never sees names.
    one = ArtifactRef(M, "gpt-4", "1", opaque_digest("openai:gpt-4"), opaque=True)
    two = ArtifactRef(M, "gpt-4", "1", opaque_digest("azure:gpt-4"), opaque=True)
    init = ArtifactRef(M, "gpt-init", "1", opaque_digest("openai:init"), opaque=True)
    g = LineageGraph([one, two, init])
    assert not g.shares_base(one.digest, two.digest)
    declared = g.with_edges(
        [
            Edge(one.digest, init.digest, R.INITIALIZED_FROM),
            Edge(two.digest, init.digest, R.INITIALIZED_FROM),
        ]
    )
    assert declared.nearest_shared_bases(one.digest, two.digest) == (init.digest,)


# ----------------------------------------------------------------------------- data lineage


def test_generators_through_three_derivations_with_the_path() -> None:
    lab = (
        Lab()
        .model("teacher")
        .dataset("raw", "filtered", "mixed", "subsample")
        .edge("raw", R.GENERATED_BY, "teacher")
        .edge("filtered", R.DERIVED_FROM, "raw")
        .edge("mixed", R.DERIVED_FROM, "filtered")
        .edge("subsample", R.DERIVED_FROM, "mixed")
    )
    g = lab.graph()
    (gen,) = g.generators(lab["subsample"])
    assert gen.digest == lab["teacher"]
    assert lab.steps(gen.path) == [
        ("subsample", "derived_from", "mixed"),
        ("mixed", "derived_from", "filtered"),
        ("filtered", "derived_from", "raw"),
        ("raw", "generated_by", "teacher"),
    ]


def test_generators_prefer_the_shortest_route_then_least_digest() -> None:
    lab = (
        Lab()
        .model("g")
        .dataset("target", "near", "p", "q", "far")
        .edge("target", R.DERIVED_FROM, "p")
        .edge("target", R.DERIVED_FROM, "q")
        .edge("p", R.GENERATED_BY, "g")
        .edge("q", R.GENERATED_BY, "g")
        .edge("target", R.DERIVED_FROM, "far")
        .edge("far", R.DERIVED_FROM, "near")
        .edge("near", R.GENERATED_BY, "g")
    )
    g = lab.graph()
    (gen,) = g.generators(lab["target"])
    first = min(lab["p"], lab["q"])
    assert gen.path == (
        Edge(lab["target"], first, R.DERIVED_FROM),
        Edge(first, lab["g"], R.GENERATED_BY),
    )


def test_teachers_and_students_mirror_each_other() -> None:
    lab = (
        Lab()
        .model("t1", "t2", "s")
        .dataset("d1", "d2", "mix")
        .edge("d1", R.GENERATED_BY, "t1")
        .edge("d2", R.GENERATED_BY, "t2")
        .edge("mix", R.DERIVED_FROM, "d1")
        .edge("mix", R.DERIVED_FROM, "d2")
        .edge("s", R.TRAINED_ON, "mix")
    )
    g = lab.graph()
    assert [r.digest for r in g.teachers(lab["s"])] == sorted((lab["t1"], lab["t2"]))
    (student,) = g.students(lab["t1"])
    assert student.digest == lab["s"]
    assert lab.steps(student.path) == [
        ("d1", "generated_by", "t1"),
        ("mix", "derived_from", "d1"),
        ("s", "trained_on", "mix"),
    ]


def test_teachers_stop_at_the_first_model() -> None:
    # s learned from t's data; t learned from u's: u is t's teacher, not s's.
    lab = (
        Lab()
        .model("u", "t", "s")
        .dataset("du", "dt")
        .edge("du", R.GENERATED_BY, "u")
        .edge("t", R.TRAINED_ON, "du")
        .edge("dt", R.GENERATED_BY, "t")
        .edge("s", R.TRAINED_ON, "dt")
    )
    g = lab.graph()
    assert [r.digest for r in g.teachers(lab["s"])] == [lab["t"]]


# ------------------------------------------------------------------------------------ walks


def _chain() -> Lab:
    return (
        Lab()
        .model("base", "ft", "q")
        .dataset("d")
        .edge("ft", R.FINE_TUNED_FROM, "base")
        .edge("ft", R.TRAINED_ON, "d")
        .edge("d", R.GENERATED_BY, "base")
        .edge("q", R.QUANTIZED_FROM, "ft")
    )


def test_walk_up_and_down_with_depth() -> None:
    lab = _chain()
    g = lab.graph()
    up = g.walk(lab["q"], Direction.UP)
    assert (lab.name(up[0].digest), up[0].distance) == ("ft", 1)
    assert {lab.name(r.digest): r.distance for r in up} == {"ft": 1, "base": 2, "d": 2}
    assert g.ancestors(lab["q"], depth=1) == {lab["ft"]}
    assert g.ancestors(lab["q"], depth=0) == frozenset()
    assert g.descendants(lab["base"]) == {lab["ft"], lab["d"], lab["q"]}
    down = {lab.name(r.digest): lab.steps(r.path) for r in g.walk(lab["base"], Direction.DOWN)}
    assert down["q"] == [("ft", "fine_tuned_from", "base"), ("q", "quantized_from", "ft")]
    with pytest.raises(LineageError):
        g.walk(lab["q"], Direction.UP, depth=-1)


def test_walk_can_be_restricted_to_relations() -> None:
    lab = _chain()
    g = lab.graph()
    reached = g.walk(lab["q"], Direction.UP, relations=[R.QUANTIZED_FROM, R.TRAINED_ON])
    assert [lab.name(r.digest) for r in reached] == ["ft", "d"]


def test_lineage_edges_are_the_edges_within_depth() -> None:
    lab = _chain()
    g = lab.graph()
    assert g.lineage_edges(lab["q"], Direction.UP, depth=0) == ()
    assert g.lineage_edges(lab["q"], Direction.UP, depth=1) == (
        Edge(lab["q"], lab["ft"], R.QUANTIZED_FROM),
    )
    assert set(g.lineage_edges(lab["q"], Direction.UP)) == set(g.edges)
    assert set(g.lineage_edges(lab["q"], Direction.UP, depth=2)) == set(g.edges) - {
        Edge(lab["d"], lab["base"], R.GENERATED_BY)
    }


def test_two_relations_between_one_pair_tie_break_by_relation_value() -> None:
    lab = Lab().model("a", "b").edge("b", R.MERGED_FROM, "a").edge("b", R.FINE_TUNED_FROM, "a")
    g = lab.graph()
    assert g.shortest_path(lab["b"], lab["a"]) == (Edge(lab["b"], lab["a"], R.FINE_TUNED_FROM),)
    assert g.shortest_path(lab["a"], lab["b"]) is None
    assert g.shortest_path(lab["a"], lab["a"]) == ()


def test_topological_order_puts_parents_first() -> None:
    lab = _chain()
    g = lab.graph()
    order = g.topological_order()
    for e in g.edges:
        assert order.index(e.parent) < order.index(e.child)


# ----------------------------------------------------------------------------------- cycles


def test_self_loop_is_a_cycle() -> None:
    lab = Lab().model("a")
    with pytest.raises(CycleError) as exc:
        lab.graph().check_acyclic_after_adding([Edge(lab["a"], lab["a"], R.FINE_TUNED_FROM)])
    assert exc.value.path == (lab["a"], lab["a"])


def test_cycle_error_names_the_cycle() -> None:
    lab = (
        Lab()
        .model("a", "b", "c")
        .edge("b", R.FINE_TUNED_FROM, "a")
        .edge("c", R.FINE_TUNED_FROM, "b")
    )
    g = lab.graph()
    closing = Edge(lab["a"], lab["c"], R.MERGED_FROM)
    with pytest.raises(CycleError) as exc:
        g.check_acyclic_after_adding([closing])
    assert exc.value.path == (lab["a"], lab["c"], lab["b"], lab["a"])
    assert exc.value.field == "parents"
    with pytest.raises(CycleError):
        g.with_edges([closing])
    with pytest.raises(CycleError):
        LineageGraph(lab.nodes.values(), [*lab.edges, closing])


def test_cycle_through_data_lineage_is_refused() -> None:
    # A model trained on its own outputs would be its own ancestor.
    lab = Lab().model("m").dataset("d").edge("d", R.GENERATED_BY, "m")
    with pytest.raises(CycleError):
        lab.graph().check_acyclic_after_adding([Edge(lab["m"], lab["d"], R.TRAINED_ON)])


def test_cycle_among_new_edges_only_and_unknown_endpoints() -> None:
    g = LineageGraph()
    x, y = dg("x"), dg("y")
    g.check_acyclic_after_adding([Edge(x, y, R.FINE_TUNED_FROM)])  # fine: unknown is allowed
    with pytest.raises(CycleError) as exc:
        g.check_acyclic_after_adding([Edge(x, y, R.FINE_TUNED_FROM), Edge(y, x, R.MERGED_FROM)])
    first = min((x, y))
    other = y if first == x else x
    assert exc.value.path == (first, other, first)


# ----------------------------------------------------------------------- naive oracles


def _nx(case: LineageCase) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    g.add_nodes_from(a.digest for a in case.artifacts)
    for e in case.edges:
        g.add_edge(e.child, e.parent, key=e.relation.value)
    return g


def _all_paths(
    g: LineageGraph, start: str, direction: Direction, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[Edge, ...]]:
    """Every path from `start`, by exhaustive enumeration (exponential; small graphs only)."""
    yield ()
    edges = g.parent_edges(start) if direction is Direction.UP else g.child_edges(start)
    for e in edges:
        nxt = e.parent if direction is Direction.UP else e.child
        if nxt in seen:
            continue
        for rest in _all_paths(g, nxt, direction, seen | {start}):
            yield (e, *rest)


def _naive_key(path: tuple[Edge, ...], direction: Direction) -> tuple[object, ...]:
    steps = [(e.parent if direction is Direction.UP else e.child, e.relation.value) for e in path]
    return (len(path), steps)


@PROPS
@given(lineage_cases(), st.sampled_from(list(Direction)), st.data())
def test_walks_match_exhaustive_least_shortest_paths(
    case: LineageCase, direction: Direction, data: st.DataObject
) -> None:
    g = case.graph()
    start = data.draw(st.sampled_from([a.digest for a in case.artifacts]))
    best: dict[str, tuple[Edge, ...]] = {}
    for path in _all_paths(g, start, direction):
        if not path:
            continue
        end = path[-1].parent if direction is Direction.UP else path[-1].child
        if end not in best or _naive_key(path, direction) < _naive_key(best[end], direction):
            best[end] = path
    walked = g.walk(start, direction)
    assert {r.digest: r.path for r in walked} == best
    assert [r.digest for r in walked] == sorted(best, key=lambda d: (len(best[d]), d))
    ref = _nx(case)
    expected = nx.descendants(ref, start) if direction is Direction.UP else nx.ancestors(ref, start)
    assert {r.digest for r in walked} == expected


@PROPS
@given(lineage_cases(), st.data())
def test_shared_bases_match_the_definition(case: LineageCase, data: st.DataObject) -> None:
    models = case.models()
    if not models:
        return
    a = data.draw(st.sampled_from(models))
    b = data.draw(st.sampled_from(models))
    weights = nx.DiGraph()
    weights.add_nodes_from(models)
    weights.add_edges_from((e.child, e.parent) for e in case.edges if e.relation.is_weights)
    anc_a = nx.descendants(weights, a) | {a}
    anc_b = nx.descendants(weights, b) | {b}
    shared = anc_a & anc_b
    minimal = {s for s in shared if not any(s in nx.descendants(weights, t) for t in shared)}
    g = case.graph()
    assert g.weights_ancestors(a) == anc_a
    assert g.shares_base(a, b) == bool(shared)
    assert g.nearest_shared_bases(a, b) == tuple(sorted(minimal))
    assert g.nearest_shared_bases(a, b) == g.nearest_shared_bases(b, a)


@PROPS
@given(lineage_cases(), st.data())
def test_generators_match_reachability(case: LineageCase, data: st.DataObject) -> None:
    datasets = case.datasets()
    if not datasets:
        return
    d = data.draw(st.sampled_from(datasets))
    derived = nx.DiGraph()
    derived.add_nodes_from(datasets)
    derived.add_edges_from((e.child, e.parent) for e in case.edges if e.relation is R.DERIVED_FROM)
    lineage = nx.descendants(derived, d) | {d}
    expected = {e.parent for e in case.edges if e.relation is R.GENERATED_BY and e.child in lineage}
    g = case.graph()
    found = g.generators(d)
    assert {r.digest for r in found} == expected
    for r in found:
        assert r.path[-1].relation is R.GENERATED_BY and r.path[-1].parent == r.digest
        assert all(e.relation is R.DERIVED_FROM for e in r.path[:-1])
        assert len(r.path) == nx.shortest_path_length(derived, d, r.path[-1].child) + 1


@PROPS
@given(lineage_cases(max_artifacts=8), st.data())
def test_cycle_check_agrees_with_networkx(case: LineageCase, data: st.DataObject) -> None:
    arts = case.artifacts
    if not arts:
        return
    extra = []
    for _ in range(data.draw(st.integers(1, 3))):
        c = data.draw(st.sampled_from(arts))
        p = data.draw(st.sampled_from(arts))
        rels = fitting_relations(c.kind, p.kind)
        extra.append(Edge(c.digest, p.digest, data.draw(st.sampled_from(rels))))
    ref = _nx(case)
    for e in extra:
        ref.add_edge(e.child, e.parent, key=e.relation.value)
    g = case.graph()
    if nx.is_directed_acyclic_graph(ref):
        g.check_acyclic_after_adding(extra)
        return
    with pytest.raises(CycleError) as exc:
        g.check_acyclic_after_adding(extra)
    path = exc.value.path
    assert path[0] == path[-1] and len(path) >= 2
    for child, parent in itertools.pairwise(path):
        assert ref.has_edge(child, parent)


@PROPS
@given(lineage_cases(), st.randoms(use_true_random=False))
def test_answers_do_not_depend_on_input_order(case: LineageCase, rnd: random.Random) -> None:
    g = case.graph()
    arts, edges = list(case.artifacts), list(case.edges)
    rnd.shuffle(arts)
    rnd.shuffle(edges)
    h = LineageGraph(arts, edges)
    assert h.edges == g.edges
    assert h.topological_order() == g.topological_order()
    for a in case.artifacts:
        for direction in Direction:
            assert h.walk(a.digest, direction) == g.walk(a.digest, direction)
        if a.kind is M:
            assert h.teachers(a.digest) == g.teachers(a.digest)
            assert h.students(a.digest) == g.students(a.digest)
        else:
            assert h.generators(a.digest) == g.generators(a.digest)


def test_reach_distance() -> None:
    assert Reach(dg("a"), ()).distance == 0
