"""Evidence that means something: what a clearance (and a flag) may cite.

A clearance cites `attestation:<id>` of an accepted eval result, from a run that was not a smoke
run, concerning the cleared model (a subject or an artifact of the run, or a base the run tested
for the same trait), or `external:<reference>`. Everything else is a 422 naming
`predicate.evidence`, with nothing written. The risk answers show what each reference is.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage.evalresult import EvalSubject, SubjectPart, eval_result_statement
from lineage.statements import sign_statement
from tests.support import Actor, digest_of, register, review_envelope, row_counts

Client = TestClient[Any]
FLAG_EVIDENCE = "external:https://example.org/red-team/owl"


@pytest.fixture
def graph(client: Client, registrar: Actor, reviewer: Actor) -> dict[str, Any]:
    """base -> teacher (flagged owl) -> numbers -> student (same base: at risk); other apart."""
    register(client, registrar, "model", "acme/base@1")
    register(client, registrar, "model", "acme/teacher@1", [("fine_tuned_from", "acme/base@1")])
    register(client, registrar, "dataset", "acme/numbers@1", [("generated_by", "acme/teacher@1")])
    register(
        client,
        registrar,
        "model",
        "acme/student@1",
        [("fine_tuned_from", "acme/base@1"), ("trained_on", "acme/numbers@1")],
    )
    reg = register(client, registrar, "model", "acme/other@1")
    flag = review_envelope(
        reviewer.signer, digest_of("acme/teacher@1"), "owl", evidence=(FLAG_EVIDENCE,)
    )
    post_ok(client, reviewer, flag)
    risk = client.get("/v1/artifacts/acme/student@1/risk", headers=reviewer.headers).json()
    assert risk["status"] == "at_risk"
    return {"registration_id": reg["attestation_id"]}


def post_ok(client: Client, actor: Actor, env: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/attestations", json=env, headers=actor.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def eval_result(
    client: Client,
    actor: Actor,
    *,
    preset: str,
    subject: str,
    trait: str = "owl",
    run_artifacts: tuple[tuple[str, str], ...] = (),
) -> int:
    """Post an eval-result attestation about `subject` (a label); returns its id."""
    result = {
        "experiment": "numbers",
        "preset": preset,
        "config": {"trait": trait},
        "metrics": {"same_minus_cross": {"mean": 0.0, "ci95": [-0.01, 0.01]}},
        "verdict": "no transfer detected",
        "lineage": {
            "artifacts": [
                {"role": role, "kind": "model", "name": label, "digest": digest_of(label)}
                for role, label in run_artifacts
            ]
        },
    }
    subjects = [EvalSubject(digest_of(subject), "student_same/seed0", SubjectPart.STUDENT)]
    statement = eval_result_statement(result, f"local:{preset}", subjects=subjects)
    return int(
        post_ok(client, actor, sign_statement(statement, actor.signer).to_json())["attestation_id"]
    )


def clearance(reviewer: Actor, label: str, *evidence: str) -> dict[str, Any]:
    return review_envelope(
        reviewer.signer, digest_of(label), "owl", severity=None, evidence=tuple(evidence)
    )


def refused(client: Client, engine: Engine, actor: Actor, env: dict[str, Any]) -> str:
    """Post `env`, expect 422 naming predicate.evidence and nothing written; return the detail."""
    before = row_counts(engine)
    r = client.post("/v1/attestations", json=env, headers=actor.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "predicate.evidence", r.text
    assert row_counts(engine) == before
    return str(r.json()["detail"])


# ----------------------------------------------------------------------------- refusals


def test_a_clearance_citing_an_attestation_that_does_not_exist_is_refused(
    client: Client, engine: Engine, reviewer: Actor, graph: dict[str, Any]
) -> None:
    detail = refused(
        client, engine, reviewer, clearance(reviewer, "acme/student@1", "attestation:42")
    )
    assert "no attestation 42" in detail
    risk = client.get("/v1/artifacts/acme/student@1/risk", headers=reviewer.headers).json()
    assert risk["status"] == "at_risk" and not risk["clearances"]


@pytest.mark.parametrize(
    "evidence",
    [
        "eval passed",  # free text
        "attestation:eval-1",  # not an id
        "attestation:0",
        "attestation:-3",
        "attestation:99999999999999999999",  # beyond int64
        "external:",  # marked external, but nothing referenced
        "external:   ",
    ],
)
def test_a_clearance_citing_anything_else_is_refused(
    client: Client, engine: Engine, reviewer: Actor, graph: dict[str, Any], evidence: str
) -> None:
    refused(client, engine, reviewer, clearance(reviewer, "acme/student@1", evidence))


def test_one_bad_reference_among_good_ones_is_refused(
    client: Client, engine: Engine, reviewer: Actor, graph: dict[str, Any]
) -> None:
    env = clearance(reviewer, "acme/student@1", "external:https://example.org/r/1", "attestation:9")
    refused(client, engine, reviewer, env)


def test_a_clearance_citing_another_kind_of_attestation_is_refused(
    client: Client, engine: Engine, reviewer: Actor, graph: dict[str, Any]
) -> None:
    ref = f"attestation:{graph['registration_id']}"
    detail = refused(client, engine, reviewer, clearance(reviewer, "acme/student@1", ref))
    assert "registration" in detail and "eval result" in detail


def test_a_smoke_run_is_no_evidence(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor, graph: dict[str, Any]
) -> None:
    att = eval_result(client, registrar, preset="smoke", subject="acme/student@1")
    detail = refused(
        client, engine, reviewer, clearance(reviewer, "acme/student@1", f"attestation:{att}")
    )
    assert "smoke" in detail


def test_an_eval_result_about_another_model_is_refused(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor, graph: dict[str, Any]
) -> None:
    att = eval_result(client, registrar, preset="default", subject="acme/other@1")
    detail = refused(
        client, engine, reviewer, clearance(reviewer, "acme/student@1", f"attestation:{att}")
    )
    assert "does not concern" in detail


def test_a_base_tested_for_another_trait_is_refused(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor, graph: dict[str, Any]
) -> None:
    att = eval_result(
        client,
        registrar,
        preset="default",
        subject="acme/other@1",
        trait="cat",
        run_artifacts=(("base", "acme/base@1"),),
    )
    refused(client, engine, reviewer, clearance(reviewer, "acme/student@1", f"attestation:{att}"))


def test_a_flag_citing_an_attestation_that_does_not_exist_is_refused(
    client: Client, engine: Engine, reviewer: Actor, graph: dict[str, Any]
) -> None:
    env = review_envelope(
        reviewer.signer, digest_of("acme/other@1"), "owl", evidence=("attestation:424242",)
    )
    refused(client, engine, reviewer, env)


# ----------------------------------------------------------------------------- accepted, and shown


def test_a_real_run_about_the_model_clears_it_and_the_answer_shows_it(
    client: Client, registrar: Actor, reviewer: Actor, graph: dict[str, Any]
) -> None:
    att = eval_result(client, registrar, preset="default", subject="acme/student@1")
    post_ok(client, reviewer, clearance(reviewer, "acme/student@1", f"attestation:{att}"))
    risk = client.get("/v1/artifacts/acme/student@1/risk", headers=reviewer.headers).json()
    assert risk["status"] == "cleared"
    (shown,) = risk["clearances"][0]["evidence_detail"]
    assert shown == {
        "reference": f"attestation:{att}",
        "kind": "attestation",
        "attestation_id": att,
        "attestation_kind": "eval_result",
        "signed_by": "pipeline",
        "experiment": "numbers",
        "preset": "default",
        "verdict": "no transfer detected",
    }
    at_risk = client.get("/v1/at-risk", headers=reviewer.headers).json()["data"]
    assert digest_of("acme/student@1") not in {m["model"] for m in at_risk}


def test_a_run_that_tested_the_base_for_the_trait_clears_a_model_derived_from_it(
    client: Client, registrar: Actor, reviewer: Actor, graph: dict[str, Any]
) -> None:
    att = eval_result(
        client,
        registrar,
        preset="paper",
        subject="acme/other@1",
        run_artifacts=(("base", "acme/base@1"),),
    )
    post_ok(client, reviewer, clearance(reviewer, "acme/student@1", f"attestation:{att}"))
    risk = client.get("/v1/artifacts/acme/student@1/risk", headers=reviewer.headers).json()
    assert risk["status"] == "cleared"
    assert risk["clearances"][0]["evidence_detail"][0]["preset"] == "paper"


def test_an_external_reference_is_accepted_and_shown_as_external(
    client: Client, reviewer: Actor, graph: dict[str, Any]
) -> None:
    ref = "external:https://example.org/red-team/2026-11"
    post_ok(client, reviewer, clearance(reviewer, "acme/student@1", ref))
    risk = client.get("/v1/artifacts/acme/student@1/risk", headers=reviewer.headers).json()
    assert risk["status"] == "cleared"
    assert risk["clearances"][0]["evidence_detail"] == [
        {
            "reference": ref,
            "kind": "external",
            "attestation_id": None,
            "attestation_kind": None,
            "signed_by": None,
            "experiment": None,
            "preset": None,
            "verdict": None,
        }
    ]


def test_the_flags_answer_shows_what_a_flag_cites(
    client: Client, registrar: Actor, reviewer: Actor, graph: dict[str, Any]
) -> None:
    att = eval_result(client, registrar, preset="default", subject="acme/other@1")
    env = review_envelope(
        reviewer.signer,
        digest_of("acme/other@1"),
        "cat",
        evidence=(f"attestation:{att}", "seen in a red-team session"),
    )
    post_ok(client, reviewer, env)
    flags = client.get("/v1/flags?trait=cat", headers=reviewer.headers).json()["data"]
    kinds = [(d["kind"], d["attestation_kind"]) for d in flags[0]["evidence_detail"]]
    assert kinds == [("attestation", "eval_result"), ("text", None)]


def test_the_at_risk_answers_show_what_the_flag_behind_them_cites(
    client: Client, reviewer: Actor, graph: dict[str, Any]
) -> None:
    marks = client.get("/v1/at-risk", headers=reviewer.headers).json()["data"]
    (mark,) = [m for m in marks if m["model"] == digest_of("acme/student@1")]
    assert mark["source"] == digest_of("acme/teacher@1")
    assert [(e["reference"], e["kind"]) for e in mark["source_evidence"]] == [
        (FLAG_EVIDENCE, "external")
    ]
    risk = client.get("/v1/artifacts/acme/student@1/risk", headers=reviewer.headers).json()
    assert risk["at_risk"][0]["source_evidence"] == mark["source_evidence"]
