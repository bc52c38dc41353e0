"""The risk engine through the API, on SQLite and PostgreSQL: the paper's scenario, chains,
clearances, permissions, and property tests holding the stored marks and the SQL-backed answers
to the pure reference in `lineage.risk`."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from lineage.graph import Direction
from lineage.risk import Clearance, Flag, RiskState, compute_risk, fine_tune_check
from lineage.scenarios import PAPER_EXPECTED_AT_RISK, PAPER_EXPECTED_FLAGGED, paper_scenario
from lineage.statements import registration_statement, sign_statement
from lineage.types import Registration
from tests.strategies import RiskCase, risk_cases
from tests.support import Actor, digest_of, register, review_envelope, row_counts

Client = TestClient[Any]


def submit(client: Client, actor: Actor, env: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = client.post("/v1/attestations", json=env, headers=actor.headers)
    assert r.status_code == status, r.text
    return r.json()


def register_all(client: Client, actor: Actor, regs: tuple[Registration, ...]) -> None:
    for reg in regs:
        submit(client, actor, sign_statement(registration_statement(reg), actor.signer).to_json())


def flag(
    client: Client, reviewer: Actor, digest: str, trait: str = "owl", **kw: Any
) -> dict[str, Any]:
    return submit(client, reviewer, review_envelope(reviewer.signer, digest, trait, **kw))


def at_risk_pairs(client: Client, actor: Actor) -> set[tuple[str, str]]:
    data = client.get("/v1/at-risk?limit=500", headers=actor.headers).json()["data"]
    return {(m["model_ref"], m["trait"]) for m in data}


# ----------------------------------------------------------------------------- the paper


def test_paper_scenario(client: Client, registrar: Actor, reviewer: Actor) -> None:
    sc = paper_scenario()
    register_all(client, registrar, sc.registrations)
    assert at_risk_pairs(client, registrar) == set()  # nothing flagged yet
    for f in sc.flags:
        flag(client, reviewer, f.artifact, f.trait, severity=f.severity.value, reason=f.reason)
    # Written out: the same-base owl student, its quantised copy, and the GPT-4o student that
    # shares an initialisation with the flagged GPT-4.1 teacher. Not the cross-base student,
    # not the control student.
    assert (
        at_risk_pairs(client, registrar)
        == set(PAPER_EXPECTED_AT_RISK)
        == {
            ("demo/owl-student@1", "owl"),
            ("demo/owl-student-q4@1", "owl"),
            ("demo/gpt-4o-owl-student@1", "owl"),
        }
    )
    flags = client.get("/v1/flags?trait=owl", headers=registrar.headers).json()["data"]
    assert {(f["artifact_ref"], f["trait"]) for f in flags} == set(PAPER_EXPECTED_FLAGGED)

    risk = client.get("/v1/artifacts/demo/owl-student@1/risk", headers=registrar.headers).json()
    assert risk["status"] == "at_risk"
    (mark,) = risk["at_risk"]
    assert mark["kind"] == "data" and mark["source_ref"] == "demo/owl-teacher@1"
    rels = [e["relation"] for e in mark["path"]]
    assert rels[0] == "trained_on" and "generated_by" in rels
    assert mark["shared_base_refs"]  # the base it shares with the teacher, named
    teacher = client.get("/v1/artifacts/demo/owl-teacher@1/risk", headers=registrar.headers).json()
    assert teacher["status"] == "flagged" and teacher["at_risk"] == []

    down = client.get(
        "/v1/artifacts/demo/owl-teacher@1/lineage?direction=down&depth=10",
        headers=registrar.headers,
    ).json()
    status = {n["artifact"]["ref"]: (bool(n["flags"]), bool(n["at_risk"])) for n in down["nodes"]}
    assert status["demo/owl-teacher@1"] == (True, False)
    assert status["demo/owl-student@1"] == (False, True)


def test_fine_tune_check_verdicts(client: Client, registrar: Actor, reviewer: Actor) -> None:
    sc = paper_scenario()
    register_all(client, registrar, sc.registrations)
    for f in sc.flags:
        flag(client, reviewer, f.artifact, f.trait)
    h = registrar.headers

    def check(base: str, *datasets: str) -> dict[str, Any]:
        r = client.post(
            "/v1/checks/fine-tune", json={"base": base, "datasets": list(datasets)}, headers=h
        )
        assert r.status_code == 200, r.text
        return r.json()

    labels = {a.label for a in sc.artifacts}
    owl_data = next(lb for lb in labels if "owl-numbers-filtered" in lb)
    control = next(lb for lb in labels if "control" in lb and "numbers" in lb)
    blocked = check("demo/base@1", owl_data)
    assert blocked["verdict"] == "block"
    assert blocked["reasons"][0]["kind"] == "teacher_shares_base"
    assert "shares a base" in blocked["reasons"][0]["explanation"]
    other = next(lb for lb in labels if "other-base@" in lb)
    assert check(other, owl_data)["verdict"] == "warn"
    assert check("demo/base@1", control)["verdict"] == "ok"
    assert check("demo/owl-student@1")["verdict"] == "block"  # an at-risk base
    bad = client.post("/v1/checks/fine-tune", json={"base": owl_data, "datasets": []}, headers=h)
    assert bad.status_code == 400 and bad.json()["field"] == "base"
    missing = client.post("/v1/checks/fine-tune", json={"base": "no/such@1"}, headers=h)
    assert missing.status_code == 404


# ----------------------------------------------------------------------------- shapes of risk


def chain(client: Client, registrar: Actor) -> None:
    """base -> teacher (prompted) -> numbers -> student -> numbers2 -> grand-student."""
    register(client, registrar, "model", "c/base@1")
    register(client, registrar, "model", "c/teacher@1", [("prompted_from", "c/base@1")])
    register(client, registrar, "dataset", "c/numbers@1", [("generated_by", "c/teacher@1")])
    register(client, registrar, "dataset", "c/numbers-f1@1", [("derived_from", "c/numbers@1")])
    register(client, registrar, "dataset", "c/numbers-f2@1", [("derived_from", "c/numbers-f1@1")])
    register(client, registrar, "dataset", "c/numbers-f3@1", [("derived_from", "c/numbers-f2@1")])
    register(
        client,
        registrar,
        "model",
        "c/student@1",
        [("fine_tuned_from", "c/base@1"), ("trained_on", "c/numbers-f3@1")],
    )
    register(client, registrar, "dataset", "c/numbers2@1", [("generated_by", "c/student@1")])
    register(
        client,
        registrar,
        "model",
        "c/grand@1",
        [("fine_tuned_from", "c/base@1"), ("trained_on", "c/numbers2@1")],
    )


def test_chains_through_students_and_derived_data(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    chain(client, registrar)
    flag(client, reviewer, digest_of("c/teacher@1"))
    assert at_risk_pairs(client, registrar) == {("c/student@1", "owl"), ("c/grand@1", "owl")}
    grand = client.get("/v1/artifacts/c/grand@1/risk", headers=registrar.headers).json()
    (mark,) = grand["at_risk"]
    assert mark["via_ref"] == "c/student@1" and mark["source_ref"] == "c/teacher@1"
    # A model registered after the flag is marked at once (incremental, same transaction).
    register(client, registrar, "model", "c/late@1", [("fine_tuned_from", "c/grand@1")])
    assert ("c/late@1", "owl") in at_risk_pairs(client, registrar)
    # A merge of an at-risk model inherits through its weights.
    register(client, registrar, "model", "c/other@1")
    register(
        client,
        registrar,
        "model",
        "c/merge@1",
        [("merged_from", "c/other@1"), ("merged_from", "c/student@1")],
    )
    assert ("c/merge@1", "owl") in at_risk_pairs(client, registrar)


def test_clearance_stops_propagation_through_that_model_only(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    chain(client, registrar)
    flag(client, reviewer, digest_of("c/teacher@1"))
    submit(
        client,
        reviewer,
        review_envelope(
            reviewer.signer,
            digest_of("c/student@1"),
            "owl",
            severity=None,
            evidence=("external:https://example.org/evals/1",),
        ),
    )
    assert at_risk_pairs(client, registrar) == set()  # grand learned only from the cleared student
    student = client.get("/v1/artifacts/c/student@1/risk", headers=registrar.headers).json()
    assert student["status"] == "cleared" and student["clearances"][0]["evidence"]
    # A later flag on the student re-applies, and the grand-student is at risk again.
    flag(client, reviewer, digest_of("c/student@1"))
    assert at_risk_pairs(client, registrar) == {("c/grand@1", "owl")}
    # Clearing the teacher lifts its flag; the student's own flag still stands.
    submit(
        client,
        reviewer,
        review_envelope(reviewer.signer, digest_of("c/teacher@1"), "owl", severity=None),
    )
    assert {
        f["artifact_ref"] for f in client.get("/v1/flags", headers=registrar.headers).json()["data"]
    } == {"c/student@1"}


def test_amending_lineage_after_a_flag_updates_marks(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    register(client, registrar, "model", "a/base@1")
    register(client, registrar, "model", "a/teacher@1", [("prompted_from", "a/base@1")])
    register(client, registrar, "dataset", "a/numbers@1", [("generated_by", "a/teacher@1")])
    register(client, registrar, "model", "a/student@1", [("fine_tuned_from", "a/base@1")])
    flag(client, reviewer, digest_of("a/teacher@1"))
    assert at_risk_pairs(client, registrar) == set()
    register(
        client,
        registrar,
        "model",
        "a/student@1",
        [("fine_tuned_from", "a/base@1"), ("trained_on", "a/numbers@1")],
    )
    assert at_risk_pairs(client, registrar) == {("a/student@1", "owl")}


def test_opaque_teacher_shares_a_base_only_through_declared_relations(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    from lineage.digests import opaque_digest
    from tests.support import registration_envelope

    def opaque(label: str, parents: list[tuple[str, str]] = []) -> str:  # noqa: B006
        env = registration_envelope(
            registrar.signer, "model", label, parents, digest=opaque_digest(label)
        )
        submit(client, registrar, env)
        return opaque_digest(label)

    init = opaque("api/shared-init@1")
    teacher = opaque("api/gpt-x@1", [("initialized_from", init)])
    other = opaque("api/gpt-y@1")
    env = registration_envelope(
        registrar.signer, "dataset", "api/data@1", [("generated_by", teacher)]
    )
    submit(client, registrar, env)
    env = registration_envelope(
        registrar.signer,
        "model",
        "api/student@1",
        [("fine_tuned_from", other), ("trained_on", digest_of("api/data@1"))],
    )
    submit(client, registrar, env)
    flag(client, reviewer, teacher)
    assert at_risk_pairs(client, registrar) == set()  # no declared shared initialisation
    # Declaring that both API models start from the same initialisation makes them share a base.
    opaque("api/gpt-y@1", [("initialized_from", init)])
    assert at_risk_pairs(client, registrar) == {("api/student@1", "owl")}


def _with_predicate(reviewer: Actor, artifact: str, **changes: Any) -> dict[str, Any]:
    from lineage.review import flag_statement
    from lineage.risk import Severity

    statement = flag_statement(artifact, "owl", Severity.HIGH, "reviewed")
    statement["predicate"].update(changes)
    return sign_statement(statement, reviewer.signer).to_json()


def test_review_permissions_and_bad_reviews(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    register(client, registrar, "model", "p/m@1")
    m = digest_of("p/m@1")
    before = row_counts(engine)
    r = client.post(
        "/v1/attestations",
        json=review_envelope(registrar.signer, m, "owl"),
        headers=registrar.headers,
    )
    assert r.status_code == 403 and "reviewer" in r.json()["detail"]
    for env, field in [
        (review_envelope(reviewer.signer, m, " owl"), "predicate.trait"),
        (_with_predicate(reviewer, m, severity="apocalyptic"), "predicate.severity"),
        (_with_predicate(reviewer, m, evidence="not-a-list"), "predicate.evidence"),
    ]:
        r = client.post("/v1/attestations", json=env, headers=reviewer.headers)
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    from lineage.review import clearance_statement

    no_evidence = sign_statement(
        clearance_statement(m, "owl", "fine", ()), reviewer.signer
    ).to_json()
    r = client.post("/v1/attestations", json=no_evidence, headers=reviewer.headers)
    assert r.status_code == 400 and r.json()["field"] == "predicate.evidence"
    r = client.post(
        "/v1/attestations",
        json=review_envelope(reviewer.signer, digest_of("ghost@1"), "owl"),
        headers=reviewer.headers,
    )
    assert r.status_code == 422
    assert row_counts(engine) == before


def test_review_queue_pages_newest_first_and_filters_by_trait(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    chain(client, registrar)
    flag(client, reviewer, digest_of("c/teacher@1"), "owl")
    flag(client, reviewer, digest_of("c/teacher@1"), "misalignment", severity="critical")
    page = client.get("/v1/at-risk?limit=1", headers=registrar.headers).json()
    assert page["count"] == 4 and len(page["data"]) == 1
    mis = client.get("/v1/at-risk?trait=misalignment", headers=registrar.headers).json()
    assert {m["model_ref"] for m in mis["data"]} == {"c/student@1", "c/grand@1"}
    newest = client.get("/v1/at-risk", headers=registrar.headers).json()["data"]
    assert newest[0]["since"] >= newest[-1]["since"]


# ----------------------------------------------------------------------------- properties


def _stored_marks(engine: Engine) -> dict[tuple[str, str], tuple[Any, ...]]:
    sql = text(
        "SELECT m.digest AS model, r.trait, r.kind, s.digest AS source, v.digest AS via, r.path, "
        "r.shared_base FROM risk_marks r JOIN artifacts m ON m.id = r.model_id "
        "JOIN artifacts s ON s.id = r.source_id JOIN artifacts v ON v.id = r.via_id"
    )
    import json

    with engine.connect() as conn:
        out = {}
        for row in conn.execute(sql):
            path = row.path if isinstance(row.path, list) else json.loads(row.path)
            base = (
                row.shared_base
                if isinstance(row.shared_base, list)
                else json.loads(row.shared_base)
            )
            out[(row.model, row.trait)] = (
                row.kind,
                row.source,
                row.via,
                [tuple(p) for p in path],
                list(base),
            )
        return out


def _reference_marks(state: RiskState) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (m.model, m.trait): (
            m.kind.value,
            m.source,
            m.via,
            [(e.child, e.parent, e.relation.value) for e in m.path],
            list(m.shared_base),
        )
        for m in state.marks
    }


def _ingest(client: Client, registrar: Actor, reviewer: Actor, rc: RiskCase) -> None:
    """Registrations in order, with each statement sent (in seq order) as soon as its artifact
    exists: marks are built incrementally, interleaved with new lineage."""
    pending = sorted([*rc.flags, *rc.clearances], key=lambda s: s.seq)
    known: set[str] = set()
    regs = {r.artifact.digest: r for r in rc.lineage.registrations()}
    for digest in rc.lineage.graph().topological_order():  # parents first
        reg = regs[digest]
        submit(
            client,
            registrar,
            sign_statement(registration_statement(reg), registrar.signer).to_json(),
        )
        known.add(reg.artifact.digest)
        while pending and pending[0].artifact in known:
            s = pending.pop(0)
            if isinstance(s, Flag):
                env = review_envelope(
                    reviewer.signer,
                    s.artifact,
                    s.trait,
                    severity=s.severity.value,
                    evidence=s.evidence,
                )
            else:
                assert isinstance(s, Clearance)
                env = review_envelope(
                    reviewer.signer, s.artifact, s.trait, severity=None, evidence=s.evidence
                )
            submit(client, reviewer, env)
    assert not pending


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(rc=risk_cases(), data=st.data())
def test_sql_backed_answers_equal_the_reference(
    client: Client,
    engine: Engine,
    registrar: Actor,
    reviewer: Actor,
    rc: RiskCase,
    data: st.DataObject,
) -> None:
    from tests.integration.conftest import _truncate_data

    _truncate_data(engine)
    _ingest(client, registrar, reviewer, rc)
    graph = rc.lineage.graph()
    # Same-key statements keep their order, so seq = acceptance order gives the same state.
    state = compute_risk(graph, rc.flags, rc.clearances)
    assert _stored_marks(engine) == _reference_marks(state)

    models, datasets = rc.lineage.models(), rc.lineage.datasets()
    if models:
        base = data.draw(st.sampled_from(models))
        chosen = (
            data.draw(st.lists(st.sampled_from(datasets), unique=True, max_size=3))
            if datasets
            else []
        )
        want = fine_tune_check(graph, state, base, chosen)
        got = client.post(
            "/v1/checks/fine-tune",
            json={"base": f"sha256:{base}", "datasets": [f"sha256:{d}" for d in chosen]},
            headers=registrar.headers,
        ).json()
        assert got["verdict"] == want.verdict.value
        assert [
            (
                r["kind"],
                r["trait"],
                r["dataset"],
                r["via"],
                r["source"],
                [(e["child"], e["parent"], e["relation"]) for e in r["path"]],
                r["shared_base"],
            )
            for r in got["reasons"]
        ] == [
            (
                r.kind.value,
                r.trait,
                r.dataset,
                r.via,
                r.source,
                [(e.child, e.parent, e.relation.value) for e in r.path],
                list(r.shared_base),
            )
            for r in want.reasons
        ]
    probe = data.draw(st.sampled_from([a.digest for a in rc.lineage.artifacts]))
    for direction, expected in (
        (Direction.UP, graph.ancestors(probe)),
        (Direction.DOWN, graph.descendants(probe)),
    ):
        got = client.get(
            f"/v1/artifacts/sha256:{probe}/lineage?direction={direction.value}&depth=64",
            headers=registrar.headers,
        ).json()
        assert {n["artifact"]["digest"] for n in got["nodes"]} == set(expected) | {probe}
        assert {(e["child"], e["parent"], e["relation"]) for e in got["edges"]} == {
            (e.child, e.parent, e.relation.value) for e in graph.lineage_edges(probe, direction)
        }


def test_rebuild_reaches_the_incremental_state(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    from sqlmodel import Session

    from registry.risk.service import rebuild_all

    chain(client, registrar)
    flag(client, reviewer, digest_of("c/teacher@1"))
    register(client, registrar, "model", "c/late@1", [("fine_tuned_from", "c/grand@1")])
    before = _stored_marks(engine)
    with Session(engine) as s:
        assert rebuild_all(s) == 0  # nothing to change: incremental == from scratch
        s.rollback()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM risk_marks"))
    with Session(engine) as s:
        assert rebuild_all(s) == len(before)
        s.commit()
    assert _stored_marks(engine) == before


def test_audit_rebuilds_risk_tables_from_envelopes(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    from registry.log.audit import audit
    from registry.replay import ReplayFinding

    chain(client, registrar)
    flag(client, reviewer, digest_of("c/teacher@1"))
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]
    assert report.replay is not None
    assert report.replay.tables["risk_marks"] == (2, 2)
    assert report.replay.tables["risk_statements"] == (1, 1)
    with engine.begin() as conn:  # an insider quietly clears a mark
        conn.execute(
            text(
                "DELETE FROM risk_marks WHERE trait = 'owl' AND model_id = "
                "(SELECT id FROM artifacts WHERE name = 'c/grand')"
            )
        )
    findings = audit(engine).findings
    assert [(str(f.kind), f.where) for f in findings] == [
        (ReplayFinding.DERIVED_MISSING, f"risk_marks[model={digest_of('c/grand@1')}, trait=owl]")
    ]
