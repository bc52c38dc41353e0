"""The at-risk rule, flags and clearances, the fine-tune check and incremental updates.

Hand-built lineages pin each clause of DESIGN.md's rule; property tests hold `compute_risk` to a
second, deliberately naive implementation: the two rules iterated over every model until nothing
changes (for the at-risk set), and exhaustive enumeration of every risk path (for the
explanations), with networkx for every ancestry question.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.errors import LineageError
from lineage.graph import LineageGraph, Node
from lineage.risk import (
    CheckReason,
    Clearance,
    Flag,
    MarkKind,
    ReasonKind,
    RiskState,
    Severity,
    Verdict,
    affected_by,
    compute_risk,
    fine_tune_check,
    update_risk,
)
from lineage.types import ArtifactKind, Edge, Relation
from tests.strategies import Lab, RiskCase, changes, dg, risk_cases

R = Relation
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def flag(lab: Lab, name: str, trait: str = "owl", seq: int = 0) -> Flag:
    return Flag(lab[name], trait, Severity.HIGH, "reviewed", ("eval",), f"flag-{seq}", seq)


def clear(lab: Lab, name: str, trait: str = "owl", seq: int = 1) -> Clearance:
    return Clearance(lab[name], trait, "eval shows no trait", ("eval",), seq)


def at_risk(lab: Lab, state: RiskState) -> set[tuple[str, str]]:
    return {(lab.name(m.model), m.trait) for m in state.marks}


def paper_lab() -> Lab:
    """base -> owl teacher (prompted) -> numbers -> filtered -> student of the same base."""
    return (
        Lab()
        .model("base", "teacher", "student", "other-base", "cross-student")
        .dataset("numbers", "filtered")
        .edge("teacher", R.PROMPTED_FROM, "base")
        .edge("numbers", R.GENERATED_BY, "teacher")
        .edge("filtered", R.DERIVED_FROM, "numbers")
        .edge("student", R.FINE_TUNED_FROM, "base")
        .edge("student", R.TRAINED_ON, "filtered")
        .edge("cross-student", R.FINE_TUNED_FROM, "other-base")
        .edge("cross-student", R.TRAINED_ON, "filtered")
    )


# ------------------------------------------------------------------------------ the rule


def test_shared_base_student_is_at_risk_and_other_base_is_not() -> None:
    lab = paper_lab()
    state = compute_risk(lab.graph(), [flag(lab, "teacher")])
    assert at_risk(lab, state) == {("student", "owl")}
    mark = state.mark(lab["student"], "owl")
    assert mark is not None
    assert mark.kind is MarkKind.DATA
    assert mark.source == mark.via == lab["teacher"]
    assert mark.shared_base == (lab["base"],)
    assert lab.steps(mark.path) == [
        ("student", "trained_on", "filtered"),
        ("filtered", "derived_from", "numbers"),
        ("numbers", "generated_by", "teacher"),
    ]
    assert state.mark(lab["cross-student"], "owl") is None
    # The flag is a flag, not a mark; the base is upstream of the teacher, never at risk.
    assert state.is_flagged(lab["teacher"], "owl")
    assert state.mark(lab["teacher"], "owl") is None
    assert state.carries(lab["teacher"], "owl") and state.carries(lab["student"], "owl")
    assert state.traits() == ("owl",)


def test_risk_passes_through_students_that_become_teachers() -> None:
    lab = (
        Lab()
        .model("base", "teacher", "student", "grand-student", "great-grand-student")
        .dataset("d1", "d2", "d3")
        .edge("teacher", R.PROMPTED_FROM, "base")
        .edge("d1", R.GENERATED_BY, "teacher")
        .edge("student", R.FINE_TUNED_FROM, "base")
        .edge("student", R.TRAINED_ON, "d1")
        .edge("d2", R.GENERATED_BY, "student")
        .edge("grand-student", R.FINE_TUNED_FROM, "base")
        .edge("grand-student", R.TRAINED_ON, "d2")
        .edge("d3", R.GENERATED_BY, "grand-student")
        .edge("great-grand-student", R.FINE_TUNED_FROM, "base")
        .edge("great-grand-student", R.TRAINED_ON, "d3")
    )
    state = compute_risk(lab.graph(), [flag(lab, "teacher")])
    assert at_risk(lab, state) == {
        ("student", "owl"),
        ("grand-student", "owl"),
        ("great-grand-student", "owl"),
    }
    mark = state.mark(lab["great-grand-student"], "owl")
    assert mark is not None
    assert mark.via == lab["grand-student"] and mark.source == lab["teacher"]
    assert [lab.name(e.parent) for e in mark.path] == [
        "d3",
        "grand-student",
        "d2",
        "student",
        "d1",
        "teacher",
    ]


def test_chain_stops_where_a_student_of_another_base_teaches() -> None:
    lab = (
        Lab()
        .model("base", "teacher", "student", "b2", "s2", "s3")
        .dataset("d1", "d2", "d3")
        .edge("teacher", R.PROMPTED_FROM, "base")
        .edge("d1", R.GENERATED_BY, "teacher")
        .edge("student", R.FINE_TUNED_FROM, "base")
        .edge("student", R.TRAINED_ON, "d1")
        .edge("d2", R.GENERATED_BY, "student")
        .edge("s2", R.FINE_TUNED_FROM, "b2")
        .edge("s2", R.TRAINED_ON, "d2")  # different base: not at risk
        .edge("d3", R.GENERATED_BY, "s2")
        .edge("s3", R.FINE_TUNED_FROM, "b2")
        .edge("s3", R.TRAINED_ON, "d3")  # shares b2 with s2, but s2 carries nothing
    )
    state = compute_risk(lab.graph(), [flag(lab, "teacher")])
    assert at_risk(lab, state) == {("student", "owl")}


def test_dataset_derived_three_times_before_training() -> None:
    lab = (
        Lab()
        .model("base", "teacher", "student")
        .dataset("raw", "filtered", "mixed", "subsample")
        .edge("teacher", R.FINE_TUNED_FROM, "base")
        .edge("raw", R.GENERATED_BY, "teacher")
        .edge("filtered", R.DERIVED_FROM, "raw")
        .edge("mixed", R.DERIVED_FROM, "filtered")
        .edge("subsample", R.DERIVED_FROM, "mixed")
        .edge("student", R.ADAPTER_OF, "base")
        .edge("student", R.TRAINED_ON, "subsample")
    )
    state = compute_risk(lab.graph(), [flag(lab, "teacher")])
    mark = state.mark(lab["student"], "owl")
    assert mark is not None
    assert len(mark.path) == 5 and mark.shared_base == (lab["base"],)


def test_fine_tunes_and_merges_of_an_at_risk_model_are_at_risk() -> None:
    lab = paper_lab().model("clean", "merge", "merge-q").edge("merge", R.MERGED_FROM, "student")
    lab.edge("merge", R.MERGED_FROM, "clean").edge("merge-q", R.QUANTIZED_FROM, "merge")
    state = compute_risk(lab.graph(), [flag(lab, "teacher")])
    assert at_risk(lab, state) == {("student", "owl"), ("merge", "owl"), ("merge-q", "owl")}
    mark = state.mark(lab["merge-q"], "owl")
    assert mark is not None
    assert mark.kind is MarkKind.WEIGHTS and mark.via == lab["merge"]
    assert mark.shared_base == ()
    assert lab.steps(mark.path)[:2] == [
        ("merge-q", "quantized_from", "merge"),
        ("merge", "merged_from", "student"),
    ]
    assert mark.source == lab["teacher"]


def test_flagged_base_puts_every_weights_descendant_at_risk_but_not_students() -> None:
    lab = (
        Lab()
        .model("base", "ft", "other", "s")
        .dataset("d")
        .edge("ft", R.FINE_TUNED_FROM, "base")
        .edge("d", R.GENERATED_BY, "base")
        .edge("s", R.FINE_TUNED_FROM, "other")
        .edge("s", R.TRAINED_ON, "d")
    )
    state = compute_risk(lab.graph(), [flag(lab, "base", "misaligned")])
    assert at_risk(lab, state) == {("ft", "misaligned")}


def test_opaque_teacher_transfers_only_through_a_declared_initialisation() -> None:
    lab = (
        Lab()
        .model("init", "gpt-4.1", "gpt-4o", "nano", "gpt-4o-student", "nano-student", opaque=True)
        .dataset("numbers")
        .edge("gpt-4.1", R.INITIALIZED_FROM, "init")
        .edge("gpt-4o", R.INITIALIZED_FROM, "init")
        .edge("numbers", R.GENERATED_BY, "gpt-4.1")
        .edge("gpt-4o-student", R.FINE_TUNED_FROM, "gpt-4o")
        .edge("gpt-4o-student", R.TRAINED_ON, "numbers")
        .edge("nano-student", R.FINE_TUNED_FROM, "nano")
        .edge("nano-student", R.TRAINED_ON, "numbers")
    )
    state = compute_risk(lab.graph(), [flag(lab, "gpt-4.1")])
    assert at_risk(lab, state) == {("gpt-4o-student", "owl")}
    mark = state.mark(lab["gpt-4o-student"], "owl")
    assert mark is not None and mark.shared_base == (lab["init"],)


def test_traits_are_independent() -> None:
    lab = paper_lab()
    state = compute_risk(
        lab.graph(), [flag(lab, "teacher", "owl", 0), flag(lab, "cross-student", "misaligned", 1)]
    )
    assert at_risk(lab, state) == {("student", "owl")}
    assert state.traits() == ("misaligned", "owl")


# ------------------------------------------------------------------- flags and clearances


def two_teacher_lab() -> Lab:
    """student learned from two flagged-able teachers; grand learned from student."""
    return (
        Lab()
        .model("base", "t1", "t2", "student", "grand", "ft")
        .dataset("d1", "d2", "ds")
        .edge("t1", R.PROMPTED_FROM, "base")
        .edge("t2", R.PROMPTED_FROM, "base")
        .edge("d1", R.GENERATED_BY, "t1")
        .edge("d2", R.GENERATED_BY, "t2")
        .edge("student", R.FINE_TUNED_FROM, "base")
        .edge("student", R.TRAINED_ON, "d1")
        .edge("student", R.TRAINED_ON, "d2")
        .edge("ds", R.GENERATED_BY, "student")
        .edge("grand", R.FINE_TUNED_FROM, "base")
        .edge("grand", R.TRAINED_ON, "ds")
        .edge("ft", R.FINE_TUNED_FROM, "student")
    )


def test_clearance_stops_propagation_through_the_cleared_model() -> None:
    lab = two_teacher_lab()
    g = lab.graph()
    state = compute_risk(g, [flag(lab, "t1", seq=0)], [clear(lab, "student", seq=5)])
    assert at_risk(lab, state) == set()
    assert state.is_cleared(lab["student"], "owl")
    assert [c.artifact for c in state.clearances] == [lab["student"]]


def test_clearance_does_not_stop_other_paths() -> None:
    lab = two_teacher_lab().edge("grand", R.TRAINED_ON, "d2")
    g = lab.graph()
    state = compute_risk(g, [flag(lab, "t2", seq=0)], [clear(lab, "student", seq=5)])
    # grand learned from the cleared student and, directly, from t2: still at risk via t2.
    assert at_risk(lab, state) == {("grand", "owl")}
    mark = state.mark(lab["grand"], "owl")
    assert mark is not None and mark.via == lab["t2"]


def test_clearing_a_teacher_leaves_the_other_teachers_path() -> None:
    lab = two_teacher_lab()
    flags = [flag(lab, "t1", seq=0), flag(lab, "t2", seq=1)]
    state = compute_risk(lab.graph(), flags, [clear(lab, "t1", seq=2)])
    mark = state.mark(lab["student"], "owl")
    assert mark is not None and mark.source == lab["t2"]
    assert at_risk(lab, state) == {("student", "owl"), ("grand", "owl"), ("ft", "owl")}
    assert not state.is_flagged(lab["t1"], "owl")


def test_later_clearance_lifts_a_flag_and_later_flag_reapplies() -> None:
    lab = paper_lab()
    g = lab.graph()
    lifted = compute_risk(g, [flag(lab, "teacher", seq=1)], [clear(lab, "teacher", seq=2)])
    assert lifted.flags == () and lifted.marks == ()
    assert lifted.is_cleared(lab["teacher"], "owl")
    earlier = compute_risk(g, [flag(lab, "teacher", seq=3)], [clear(lab, "teacher", seq=2)])
    assert at_risk(lab, earlier) == {("student", "owl")}
    assert earlier.clearances == ()
    reflagged = compute_risk(
        g,
        [flag(lab, "teacher", seq=1), flag(lab, "teacher", seq=3)],
        [clear(lab, "teacher", seq=2)],
    )
    assert [f.seq for f in reflagged.flags] == [3]
    assert at_risk(lab, reflagged) == {("student", "owl")}


def test_flag_on_an_at_risk_model_reports_a_flag_not_a_mark() -> None:
    lab = paper_lab()
    state = compute_risk(lab.graph(), [flag(lab, "teacher", seq=0), flag(lab, "student", seq=1)])
    assert state.mark(lab["student"], "owl") is None
    assert state.is_flagged(lab["student"], "owl")


def test_clearance_of_an_unflagged_model_that_is_not_at_risk_is_kept() -> None:
    lab = paper_lab()
    state = compute_risk(lab.graph(), [], [clear(lab, "base")])
    assert state.marks == () and state.is_cleared(lab["base"], "owl")


def test_flag_and_clearance_with_the_same_seq_are_refused() -> None:
    lab = paper_lab()
    with pytest.raises(LineageError) as exc:
        compute_risk(lab.graph(), [flag(lab, "teacher", seq=4)], [clear(lab, "teacher", seq=4)])
    assert exc.value.field == "seq"


def test_statements_on_unknown_artifacts_are_refused() -> None:
    lab = paper_lab()
    with pytest.raises(LineageError):
        compute_risk(lab.graph(), [Flag(dg("ghost"), "owl", Severity.LOW, "", (), "f", 0)])


def test_statement_fields_are_checked() -> None:
    with pytest.raises(LineageError):
        Flag(dg("a"), " owl", Severity.LOW, "", (), "f", 0)
    with pytest.raises(LineageError):
        Clearance(dg("a"), "owl", "", (), -1)


def test_dataset_flags_make_no_marks_and_dataset_clearances_stop_nothing() -> None:
    lab = paper_lab()
    g = lab.graph()
    state = compute_risk(g, [flag(lab, "filtered", seq=0)])
    assert state.marks == () and state.is_flagged(lab["filtered"], "owl")
    # Inspecting the data cannot clear what its generator passed on.
    state = compute_risk(g, [flag(lab, "teacher", seq=0)], [clear(lab, "filtered", seq=1)])
    assert at_risk(lab, state) == {("student", "owl")}


def test_severity_and_verdict_ranks() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3]
    assert [v.rank for v in Verdict] == [0, 1, 2]


# ---------------------------------------------------------------------------- determinism


def test_same_answer_for_any_input_order() -> None:
    lab = two_teacher_lab().edge("grand", R.TRAINED_ON, "d2")
    flags = [flag(lab, "t1", seq=0), flag(lab, "t2", seq=1), flag(lab, "t1", "misaligned", 2)]
    clears = [clear(lab, "t1", "misaligned", 3)]
    expected = compute_risk(lab.graph(), flags, clears)
    rnd = random.Random(7)
    for _ in range(20):
        nodes, edges = list(lab.nodes.values()), list(lab.edges)
        rnd.shuffle(nodes)
        rnd.shuffle(edges)
        fs = list(flags)
        rnd.shuffle(fs)
        assert compute_risk(LineageGraph(nodes, edges), fs + fs, clears) == expected


@PROPS
@given(risk_cases(), st.randoms(use_true_random=False))
def test_same_answer_for_any_input_order_property(rc: RiskCase, rnd: random.Random) -> None:
    expected = compute_risk(rc.lineage.graph(), rc.flags, rc.clearances)
    arts, edges = list(rc.lineage.artifacts), list(rc.lineage.edges)
    fs, cs = list(rc.flags), list(rc.clearances)
    for items in (arts, edges, fs, cs):
        rnd.shuffle(items)
    assert compute_risk(LineageGraph(arts, edges), fs, cs) == expected


# ------------------------------------------------------------------------- fine-tune check


def test_fine_tune_check_ok_warn_block() -> None:
    lab = paper_lab().dataset("control").model("unflagged").edge("control", R.GENERATED_BY, "base")
    g = lab.graph()
    state = compute_risk(g, [flag(lab, "teacher")])

    ok = fine_tune_check(g, state, lab["base"], [lab["control"]])
    assert ok.verdict is Verdict.OK and ok.reasons == ()

    warn = fine_tune_check(g, state, lab["other-base"], [lab["filtered"]])
    assert warn.verdict is Verdict.WARN
    (reason,) = warn.reasons
    assert reason.kind is ReasonKind.TEACHER_NO_SHARED_BASE and reason.via == lab["teacher"]
    assert reason.shared_base == ()

    block = fine_tune_check(g, state, lab["base"], [lab["filtered"], lab["control"]])
    assert block.verdict is Verdict.BLOCK
    (reason,) = block.reasons
    assert reason == CheckReason(
        ReasonKind.TEACHER_SHARES_BASE,
        "owl",
        lab["filtered"],
        lab["teacher"],
        lab["teacher"],
        (
            Edge(lab["filtered"], lab["numbers"], R.DERIVED_FROM),
            Edge(lab["numbers"], lab["teacher"], R.GENERATED_BY),
        ),
        (lab["base"],),
    )
    assert reason.verdict is Verdict.BLOCK


def test_fine_tune_check_blocks_an_at_risk_or_flagged_base() -> None:
    lab = paper_lab()
    g = lab.graph()
    state = compute_risk(g, [flag(lab, "teacher")])
    result = fine_tune_check(g, state, lab["student"], [])
    assert result.verdict is Verdict.BLOCK
    (reason,) = result.reasons
    assert reason.kind is ReasonKind.BASE and reason.source == lab["teacher"]
    assert reason.dataset is None and len(reason.path) == 3
    flagged = fine_tune_check(g, state, lab["teacher"], [])
    assert flagged.reasons[0].path == () and flagged.verdict is Verdict.BLOCK
    cleared = compute_risk(g, [flag(lab, "teacher", seq=0)], [clear(lab, "student", seq=1)])
    assert fine_tune_check(g, cleared, lab["student"], []).verdict is Verdict.OK


def test_fine_tune_check_warns_about_flagged_datasets_and_sorts_block_first() -> None:
    lab = paper_lab()
    g = lab.graph()
    state = compute_risk(g, [flag(lab, "teacher", seq=0), flag(lab, "numbers", "toxic", seq=1)])
    result = fine_tune_check(g, state, lab["base"], [lab["filtered"]])
    assert [r.kind for r in result.reasons] == [
        ReasonKind.TEACHER_SHARES_BASE,
        ReasonKind.FLAGGED_DATASET,
    ]
    assert result.reasons[1].path == (Edge(lab["filtered"], lab["numbers"], R.DERIVED_FROM),)


def test_fine_tune_check_refuses_wrong_kinds() -> None:
    lab = paper_lab()
    g = lab.graph()
    state = compute_risk(g, [])
    with pytest.raises(LineageError):
        fine_tune_check(g, state, lab["filtered"], [])
    with pytest.raises(LineageError):
        fine_tune_check(g, state, lab["base"], [lab["student"]])


# -------------------------------------------------------------- the naive second opinion


class Naive:
    """DESIGN.md's rule transcribed as literally as possible, with networkx for ancestry."""

    def __init__(self, rc: RiskCase) -> None:
        case = rc.lineage
        self.kinds = {a.digest: a.kind for a in case.artifacts}
        self.models = [d for d, k in self.kinds.items() if k is ArtifactKind.MODEL]
        self.edges = case.edges
        self.weights = nx.DiGraph()
        self.weights.add_nodes_from(self.models)
        self.weights.add_edges_from(
            (e.child, e.parent) for e in case.edges if e.relation.is_weights
        )
        # For each (artifact, trait), the kind of the latest statement decides.
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        for f in rc.flags:
            key = (f.artifact, f.trait)
            latest[key] = max(latest.get(key, (-1, "")), (f.seq, "flag"))
        for c in rc.clearances:
            key = (c.artifact, c.trait)
            latest[key] = max(latest.get(key, (-1, "")), (c.seq, "clear"))
        self.flagged = {k for k, (_, s) in latest.items() if s == "flag"}
        self.cleared = {k for k, (_, s) in latest.items() if s == "clear"}
        self.traits = sorted({t for a, t in self.flagged if self.kinds[a] is ArtifactKind.MODEL})

    def ancestors(self, m: str) -> set[str]:
        return set(nx.descendants(self.weights, m)) | {m}

    def nearest(self, a: str, b: str) -> tuple[str, ...]:
        shared = self.ancestors(a) & self.ancestors(b)
        return tuple(
            sorted(
                s for s in shared if not any(s in nx.descendants(self.weights, t) for t in shared)
            )
        )

    def data_routes(self, m: str) -> Iterator[tuple[str, tuple[Edge, ...]]]:
        """Every route m -trained_on-> D -derived_from->* D' -generated_by-> G."""

        def from_dataset(d: str, path: tuple[Edge, ...]) -> Iterator[tuple[str, tuple[Edge, ...]]]:
            for e in self.edges:
                if e.child != d:
                    continue
                if e.relation is R.GENERATED_BY:
                    yield e.parent, (*path, e)
                elif e.relation is R.DERIVED_FROM:
                    yield from from_dataset(e.parent, (*path, e))

        for e in self.edges:
            if e.child == m and e.relation is R.TRAINED_ON:
                yield from from_dataset(e.parent, (e,))

    def hops(self, m: str) -> Iterator[tuple[str, tuple[Edge, ...]]]:
        for e in self.edges:
            if e.child == m and e.relation.is_weights:
                yield e.parent, (e,)
        for g, path in self.data_routes(m):
            if self.ancestors(m) & self.ancestors(g):
                yield g, path

    def fixed_point(self) -> set[tuple[str, str]]:
        """Apply the two rules to every model until nothing changes."""
        marked: set[tuple[str, str]] = set()
        changed = True
        while changed:
            changed = False
            for t in self.traits:
                for m in self.models:
                    key = (m, t)
                    if key in marked or key in self.flagged or key in self.cleared:
                        continue
                    carriers = self.flagged | marked
                    if any((x, t) in carriers for x, _ in self.hops(m)):
                        marked.add(key)
                        changed = True
        return marked

    def risk_paths(self, m: str, t: str) -> Iterator[tuple[Edge, ...]]:
        """Every chain of hops from m to a model flagged for t through uncleared models."""
        for x, hop in self.hops(m):
            if (x, t) in self.flagged:
                yield hop
            elif (x, t) not in self.cleared:
                for rest in self.risk_paths(x, t):
                    yield (*hop, *rest)

    @staticmethod
    def key(path: tuple[Edge, ...]) -> tuple[object, ...]:
        return (len(path), [(e.parent, e.relation.value) for e in path])


@PROPS
@given(risk_cases())
def test_compute_risk_matches_the_naive_fixed_point_and_path_enumeration(rc: RiskCase) -> None:
    naive = Naive(rc)
    state = compute_risk(rc.lineage.graph(), rc.flags, rc.clearances)
    assert state.at_risk() == naive.fixed_point()
    assert {(f.artifact, f.trait) for f in state.flags} == naive.flagged
    assert {(c.artifact, c.trait) for c in state.clearances} == naive.cleared
    for mark in state.marks:
        best = min(naive.risk_paths(mark.model, mark.trait), key=naive.key)
        assert mark.path == best
        assert best[0].child == mark.model and mark.source == best[-1].parent
        assert (mark.source, mark.trait) in naive.flagged
        if best[0].relation.is_weights:
            assert mark.kind is MarkKind.WEIGHTS and mark.via == best[0].parent
            assert mark.shared_base == ()
        else:
            via = next(e.parent for e in best if e.relation is R.GENERATED_BY)
            assert mark.kind is MarkKind.DATA and mark.via == via
            assert mark.shared_base == naive.nearest(mark.model, via)
        # Optimal substructure: the path continues as the via's own explanation.
        upstream = state.mark(mark.via, mark.trait)
        tail = () if upstream is None else upstream.path
        assert upstream is not None or state.is_flagged(mark.via, mark.trait)
        assert mark.path[len(mark.path) - len(tail) :] == tail


@PROPS
@given(st.data())
def test_incremental_update_equals_full_recomputation(data: st.DataObject) -> None:
    rc = data.draw(risk_cases())
    change = data.draw(changes(rc))
    before_graph = rc.lineage.graph()
    before = compute_risk(before_graph, rc.flags, rc.clearances)
    flags, clears, graph = list(rc.flags), list(rc.clearances), before_graph
    if isinstance(change, Edge):
        graph = before_graph.with_edges([change])
    elif isinstance(change, Flag):
        flags.append(change)
    else:
        clears.append(change)
    after = compute_risk(graph, flags, clears)
    region = affected_by(graph, [change])
    changed = {m.model for m in set(before.marks) ^ set(after.marks)}
    changed |= {
        f.artifact
        for f in set(before.flags) ^ set(after.flags)
        if graph.kind(f.artifact) is ArtifactKind.MODEL
    }
    assert changed <= region
    assert update_risk(graph, before, flags, clears, [change]) == after


@PROPS
@given(risk_cases(), st.data())
def test_fine_tune_check_agrees_with_marking_the_fine_tuned_model(
    rc: RiskCase, data: st.DataObject
) -> None:
    case = rc.lineage
    if not case.models():
        return
    base = data.draw(st.sampled_from(case.models()))
    datasets = (
        data.draw(st.lists(st.sampled_from(case.datasets()), max_size=3)) if case.datasets() else []
    )
    graph = case.graph()
    state = compute_risk(graph, rc.flags, rc.clearances)
    result = fine_tune_check(graph, state, base, datasets)

    hypothetical = dg("hypothetical fine-tune")
    extended = graph.with_artifacts([Node(hypothetical, ArtifactKind.MODEL)]).with_edges(
        [Edge(hypothetical, base, R.FINE_TUNED_FROM)]
        + [Edge(hypothetical, d, R.TRAINED_ON) for d in datasets]
    )
    marks = compute_risk(extended, rc.flags, rc.clearances).marks_for(hypothetical)
    blocking = [r for r in result.reasons if r.verdict is Verdict.BLOCK]
    assert {m.trait for m in marks} == {r.trait for r in blocking}
    assert (result.verdict is Verdict.BLOCK) == bool(marks)
    for m in marks:
        # The mark's path is the best blocking reason's path behind one virtual edge.
        assert any(r.path == m.path[1:] and r.source == m.source for r in blocking)
    naive = Naive(rc)
    carriers = naive.flagged | naive.fixed_point()
    for r in result.reasons:
        match r.kind:
            case ReasonKind.TEACHER_NO_SHARED_BASE:
                assert (r.via, r.trait) in carriers
                assert not naive.ancestors(base) & naive.ancestors(r.via)
            case ReasonKind.FLAGGED_DATASET:
                assert (r.via, r.trait) in naive.flagged
            case ReasonKind.BASE:
                assert r.via == base and (base, r.trait) in carriers
            case ReasonKind.TEACHER_SHARES_BASE:
                assert r.shared_base == naive.nearest(base, r.via)
    if result.verdict is Verdict.OK:
        assert result.reasons == ()


# ------------------------------------------------------------------ incremental, by hand


def test_new_edge_reaches_everything_downstream() -> None:
    # student-2 learns from student, which is not (yet) trained on the teacher's numbers.
    lab = (
        paper_lab()
        .model("student-2")
        .dataset("from-student")
        .edge("from-student", R.GENERATED_BY, "student")
        .edge("student-2", R.FINE_TUNED_FROM, "base")
        .edge("student-2", R.TRAINED_ON, "from-student")
    )
    lab.edges.remove(Edge(lab["student"], lab["filtered"], R.TRAINED_ON))
    flags = [flag(lab, "teacher")]
    before = compute_risk(lab.graph(), flags)
    assert at_risk(lab, before) == set()
    new_edge = Edge(lab["student"], lab["filtered"], R.TRAINED_ON)
    graph = lab.graph().with_edges([new_edge])
    region = affected_by(graph, [new_edge])
    assert {lab.name(m) for m in region} == {"student", "student-2"}
    after = update_risk(graph, before, flags, [], [new_edge])
    assert after == compute_risk(graph, flags)
    assert at_risk(lab, after) == {("student", "owl"), ("student-2", "owl")}


def test_affected_by_a_flag_follows_rule_steps_only() -> None:
    lab = paper_lab().model("ft").edge("ft", R.FINE_TUNED_FROM, "student")
    graph = lab.graph()
    region = affected_by(graph, [flag(lab, "teacher")])
    # cross-student learned from the teacher but shares no base: a flag cannot reach it.
    assert {lab.name(m) for m in region} == {"teacher", "student", "ft"}
    assert affected_by(graph, [flag(lab, "filtered")]) == frozenset()
    assert affected_by(graph, [clear(lab, "ft")]) == {lab["ft"]}
