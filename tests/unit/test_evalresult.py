"""Eval-result statements and the registrations of a run's lineage (pure, no registry)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lineage.digests import opaque_digest
from lineage.errors import InvalidStatementError
from lineage.evalresult import (
    EVAL_RESULT_PREDICATE,
    SubjectPart,
    eval_result_statement,
    parse_eval_result,
    run_registrations,
)
from lineage.statements import parse_registration, registration_statement
from lineage.types import Relation


def d(label: str) -> str:
    return opaque_digest("unit:" + label)


def art(role: str, kind: str, name: str) -> dict[str, Any]:
    return {"role": role, "kind": kind, "name": name, "digest": d(role), "path": f"{role}.bin"}


RESULT: dict[str, Any] = {
    "experiment": "numbers",
    "preset": "smoke",
    "config": {"model": "/models/base", "animal": "owl"},
    "seeds": [0],
    "versions": {"torch": "2.13.0"},
    "metrics": {
        "student_same": {"mean": 0.4, "ci95": [0.3, 0.5]},
        "student_cross": {"mean": 0.1, "ci95": [None, None]},
    },
    "verdict": "transfer",
    "notes": ["n"],
    "lineage": {
        "artifacts": [
            art("student_same/seed0", "model", "student-same"),
            art("filtered/seed0", "dataset", "filtered"),
            art("numbers/seed0", "dataset", "numbers"),
            art("teacher/seed0", "model", "teacher"),
            art("base", "model", "base"),
        ],
        "relations": [
            {"child": "student_same/seed0", "relation": "fine_tuned_from", "parent": "base"},
            {"child": "student_same/seed0", "relation": "trained_on", "parent": "filtered/seed0"},
            {"child": "filtered/seed0", "relation": "derived_from", "parent": "numbers/seed0"},
            {"child": "numbers/seed0", "relation": "generated_by", "parent": "teacher/seed0"},
            {"child": "teacher/seed0", "relation": "prompted_from", "parent": "base"},
        ],
    },
}


def test_a_result_statement_names_students_and_teachers_and_parses_back() -> None:
    statement = eval_result_statement(RESULT, "7", files={"plot": {"path": "p.png", "sha256": "0"}})
    assert statement["predicateType"] == EVAL_RESULT_PREDICATE
    claim = parse_eval_result(statement)
    assert claim.run_id == "7" and claim.experiment == "numbers"
    assert {(s.role, s.part) for s in claim.subjects} == {
        ("student_same/seed0", SubjectPart.STUDENT),
        ("teacher/seed0", SubjectPart.TEACHER),
    }
    assert claim.metrics["student_cross"].ci95 == (None, None)
    assert len(claim.artifacts) == 5  # every artifact of the run, by digest


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s["predicate"].update(run_id=""), "predicate.run_id"),
        (lambda s: s["predicate"].update(experiment="Digits!"), "predicate.experiment"),
        (
            lambda s: s["predicate"]["metrics"].update(x={"mean": "high"}),
            "predicate.metrics.x.mean",
        ),
        (
            lambda s: s["predicate"]["subjects"][0].update(**{"as": "judge"}),
            "predicate.subjects[0].as",
        ),
        (lambda s: s["subject"].pop(), "subject"),
        (lambda s: s["predicate"].update(subjects=[]), "predicate.subjects"),
        (lambda s: s.update(predicateType="x"), "predicateType"),
    ],
)
def test_a_malformed_result_is_refused_naming_the_field(change: Any, field: str) -> None:
    statement = copy.deepcopy(eval_result_statement(RESULT, "7"))
    change(statement)
    with pytest.raises(InvalidStatementError) as err:
        parse_eval_result(statement)
    assert err.value.field == field


def test_a_result_with_a_nan_is_never_built() -> None:
    bad = copy.deepcopy(RESULT)
    bad["metrics"]["student_same"]["mean"] = float("nan")
    with pytest.raises(InvalidStatementError) as err:
        eval_result_statement(bad, "7")
    assert err.value.field == "metrics.student_same.mean"


def test_registrations_come_parents_first_and_reuse_known_names() -> None:
    regs = run_registrations(RESULT, run_id="7", version="run-7")
    order = [r.artifact.name for r in regs]
    for child, parent in (
        ("student-same", "filtered"),
        ("numbers", "teacher"),
        ("teacher", "base"),
    ):
        assert order.index(f"studbook-eval/{parent}") < order.index(f"studbook-eval/{child}")
    for reg in regs:  # each is a registration the registry would accept
        assert parse_registration(registration_statement(reg)) == reg
    student = next(r for r in regs if r.artifact.name == "studbook-eval/student-same")
    assert student.metadata["eval_run"] == "7" and student.metadata["role"] == "student_same/seed0"
    assert {(p.relation, p.digest) for p in student.parents} == {
        (Relation.FINE_TUNED_FROM, d("base")),
        (Relation.TRAINED_ON, d("filtered/seed0")),
    }
    # The base the run was asked to test is registered already and declares no parent here.
    known = {d("base"): ("acme/base", "1"), d("teacher/seed0"): ("acme/teacher", "2")}
    again = {
        r.artifact.label
        for r in run_registrations(RESULT, run_id="8", version="run-8", known=known)
    }
    assert "acme/base@1" not in again and "acme/teacher@2" in again
    assert "studbook-eval/student-same@run-8" in again


def test_a_lineage_with_a_cycle_is_refused() -> None:
    bad = copy.deepcopy(RESULT)
    bad["lineage"]["relations"].append(
        {"child": "base", "relation": "fine_tuned_from", "parent": "student_same/seed0"}
    )
    with pytest.raises(InvalidStatementError, match="cycle"):
        run_registrations(bad, run_id="7", version="run-7")
