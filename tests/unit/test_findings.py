"""Finding and decision statements (their wire shape and refusals), and the screening statistic,
held to the number `shared_base` reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lineage.errors import InvalidStatementError
from lineage.findings import (
    FindingKind,
    confirmation_statement,
    dismissal_statement,
    finding_statement,
    parse_decision,
    parse_finding,
    screen,
)
from lineage.statements import canonical_json, parse_statement

np = pytest.importorskip("numpy")

from lineage.fingerprint import fingerprint_tensors, shared_base  # noqa: E402

A, B, REG = "a" * 64, "b" * 64, "c" * 64


def _finding(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "statistic": 0.93,
        "p_value": 0.001,
        "permutations": 999,
        "reason": "the input layers share an initialisation",
        "scheme": "studbook.dev/fingerprint/embedding-gram/v1",
        "registration": REG,
    }
    args.update(kw)
    return finding_statement(
        FindingKind.UNDECLARED_SHARED_BASE, (A, "x/student@1"), (B, "x/base@1"), **args
    )


def test_finding_round_trips_through_its_signed_bytes() -> None:
    statement = _finding()
    claim = parse_finding(parse_statement(canonical_json(statement)))
    assert claim.kind is FindingKind.UNDECLARED_SHARED_BASE
    assert (claim.model, claim.other, claim.registration) == (A, B, REG)
    assert claim.statistic == 0.93 and claim.p_value == 0.001 and claim.permutations == 999


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s["predicate"].update(kind="maybe"), "predicate.kind"),
        (lambda s: s["predicate"].update(statistic=1.5), "predicate.statistic"),
        (lambda s: s["predicate"].update(p_value=-0.1), "predicate.p_value"),
        (lambda s: s["predicate"].update(p_value=True), "predicate.p_value"),
        (lambda s: s["predicate"].update(permutations=0), "predicate.permutations"),
        (lambda s: s["predicate"].update(registration="zz"), "predicate.registration"),
        (lambda s: s["subject"].pop(), "subject"),
        (lambda s: s["subject"][1]["digest"].update(sha256=A), "subject"),
        (lambda s: s.update(predicate=[]), "predicate"),
    ],
)
def test_malformed_findings_name_the_field(change: Any, field: str) -> None:
    statement = copy.deepcopy(_finding())
    change(statement)
    with pytest.raises(InvalidStatementError) as err:
        parse_finding(statement)
    assert err.value.field == field


def test_decisions_round_trip_and_a_dismissal_needs_a_reason() -> None:
    yes = parse_decision(confirmation_statement(A, B))
    assert yes.confirmed and (yes.model, yes.finding, yes.reason) == (A, B, "")
    no = parse_decision(dismissal_statement(A, B, "re-initialised on purpose"))
    assert not no.confirmed and no.reason == "re-initialised on purpose"
    with pytest.raises(InvalidStatementError) as err:
        parse_decision(dismissal_statement(A, B, " \n "))
    assert err.value.field == "predicate.reason"
    extra = confirmation_statement(A, B)
    extra["predicate"]["edge"] = "initialized_from"
    with pytest.raises(InvalidStatementError) as err:
        parse_decision(extra)
    assert err.value.field == "predicate.edge"
    two = confirmation_statement(A, B)
    two["subject"].append(two["subject"][0])
    with pytest.raises(InvalidStatementError) as err:
        parse_decision(two)
    assert err.value.field == "subject"
    with pytest.raises(InvalidStatementError):
        parse_decision(_finding())


def test_screen_is_the_statistic_shared_base_reports() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.02, (1000, 64))
    fp = fingerprint_tensors({"embed_tokens.weight": base})
    others = [
        fingerprint_tensors({"embed_tokens.weight": base + rng.normal(0, 0.006, base.shape)}),
        fingerprint_tensors({"embed_tokens.weight": rng.normal(0, 0.02, base.shape)}),
        fingerprint_tensors({"embed_tokens.weight": base}),
    ]
    got = screen(fp.gram, [o.gram for o in others])
    want = [shared_base(fp, o, permutations=1).statistic for o in others]
    assert got == pytest.approx(want, abs=1e-9)
    assert got[0] > 0.5 > got[1] and got[2] == pytest.approx(1.0)
    assert screen(fp.gram, []) == []
    flat = [0.5] * len(fp.gram)  # no variance: no statistic, never a guess of "shared"
    assert screen(fp.gram, [flat]) == [0.0]
