"""The paper scenario `studbook demo` seeds: the rule must reach exactly the paper's verdicts."""

from __future__ import annotations

from lineage.digests import opaque_digest
from lineage.graph import LineageGraph
from lineage.risk import MarkKind, RiskMark, Verdict, compute_risk, fine_tune_check
from lineage.scenarios import (
    PAPER_EXPECTED_AT_RISK,
    PAPER_EXPECTED_FLAGGED,
    Scenario,
    demo_digest,
    paper_scenario,
)


def labelled(scenario: Scenario, marks: tuple[RiskMark, ...]) -> set[tuple[str, str]]:
    return {(scenario.label(m.model), m.trait) for m in marks}


def test_paper_scenario_marks_exactly_the_expected_models() -> None:
    scenario = paper_scenario()
    state = compute_risk(scenario.graph(), scenario.flags)
    # Written out by hand, not read back from the module: the rule must reach the paper's result.
    assert labelled(scenario, state.marks) == {
        ("demo/owl-student@1", "owl"),  # same base as the owl teacher: subliminal transfer
        ("demo/owl-student-q4@1", "owl"),  # quantised from it: inherits its weights
        ("demo/gpt-4o-owl-student@1", "owl"),  # GPT-4o shares GPT-4.1's declared init
    }
    assert scenario.expected_at_risk == PAPER_EXPECTED_AT_RISK == labelled(scenario, state.marks)
    assert (
        {(scenario.label(f.artifact), f.trait) for f in state.flags}
        == {
            ("demo/owl-teacher@1", "owl"),
            ("demo/gpt-4.1-owl@1", "owl"),
        }
        == PAPER_EXPECTED_FLAGGED
    )
    not_at_risk = {
        "demo/base@1",
        "demo/other-base@1",
        "demo/cross-student@1",  # another base: no transfer
        "demo/control-student@1",  # unprompted base's numbers: nothing flagged generated them
        "demo/gpt-init@1",
        "demo/gpt-4.1@1",
        "demo/gpt-4o@1",
        "demo/gpt-4.1-nano@1",
        "demo/gpt-4.1-nano-owl-student@1",  # nano does not share GPT-4.1's init
    }
    for label in not_at_risk:
        assert state.marks_for(scenario.digest(label)) == ()


def test_paper_scenario_explanations() -> None:
    scenario = paper_scenario()
    state = compute_risk(scenario.graph(), scenario.flags)
    student = state.mark(scenario.digest("demo/owl-student@1"), "owl")
    assert student is not None
    assert student.kind is MarkKind.DATA
    assert [scenario.label(s) for s in student.shared_base] == ["demo/base@1"]
    assert [
        (scenario.label(e.child), e.relation.value, scenario.label(e.parent)) for e in student.path
    ] == [
        ("demo/owl-student@1", "trained_on", "demo/owl-numbers-filtered@1"),
        ("demo/owl-numbers-filtered@1", "derived_from", "demo/owl-numbers@1"),
        ("demo/owl-numbers@1", "generated_by", "demo/owl-teacher@1"),
    ]
    quantized = state.mark(scenario.digest("demo/owl-student-q4@1"), "owl")
    assert quantized is not None and quantized.kind is MarkKind.WEIGHTS
    assert scenario.label(quantized.via) == "demo/owl-student@1"
    assert quantized.path[1:] == student.path
    gpt = state.mark(scenario.digest("demo/gpt-4o-owl-student@1"), "owl")
    assert gpt is not None
    assert [scenario.label(s) for s in gpt.shared_base] == ["demo/gpt-init@1"]


def test_paper_scenario_fine_tune_checks() -> None:
    scenario = paper_scenario()
    graph = scenario.graph()
    state = compute_risk(graph, scenario.flags)
    d = scenario.digest
    filtered = d("demo/owl-numbers-filtered@1")
    assert fine_tune_check(graph, state, d("demo/base@1"), [filtered]).verdict is Verdict.BLOCK
    assert fine_tune_check(graph, state, d("demo/other-base@1"), [filtered]).verdict is Verdict.WARN
    control = [d("demo/control-numbers@1")]
    assert fine_tune_check(graph, state, d("demo/base@1"), control).verdict is Verdict.OK
    gpt_numbers = [d("demo/gpt-4.1-owl-numbers@1")]
    assert fine_tune_check(graph, state, d("demo/gpt-4o@1"), gpt_numbers).verdict is Verdict.BLOCK
    nano = d("demo/gpt-4.1-nano@1")
    assert fine_tune_check(graph, state, nano, gpt_numbers).verdict is Verdict.WARN


def test_registrations_are_in_dependency_order_with_stable_digests() -> None:
    scenario = paper_scenario()
    seen: set[str] = set()
    for reg in scenario.registrations:
        assert {p.digest for p in reg.parents} <= seen, reg.artifact.label
        seen.add(reg.artifact.digest)
        assert reg.artifact.label.startswith("demo/") and reg.artifact.label.endswith("@1")
    assert len(seen) == len(scenario.registrations)
    assert scenario.digest("demo/base@1") == demo_digest("demo/base@1")
    assert scenario.digest("demo/gpt-4o@1") == opaque_digest("demo:gpt-4o")
    assert paper_scenario() == scenario  # deterministic
    flagged = {f.artifact for f in scenario.flags}
    assert all(scenario.graph().node(a).kind.value == "model" for a in flagged)
    assert len({f.seq for f in scenario.flags}) == len(scenario.flags)
    assert isinstance(scenario.graph(), LineageGraph)
