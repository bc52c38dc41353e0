"""The review workspace's API on both databases: the queue (with accepted risks taken off and
what changed since the last look), risk acceptances (and the ways to get one wrong), browsing,
the statements view and the review report, which an auditor checks offline with nothing but
`lineage` (signatures, leaves, inclusion proofs, the signed checkpoint)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage import dsse
from lineage.checkpoint import verify_checkpoint
from lineage.logleaf import entry_bytes
from lineage.merkle import leaf_hash, verify_inclusion
from lineage.review import acceptance_statement, parse_acceptance
from lineage.scenarios import PAPER_EXPECTED_AT_RISK, demo_digest, paper_scenario
from lineage.statements import registration_statement, sign_statement
from tests.support import Actor, review_envelope, row_counts

Client = TestClient[Any]
STUDENT = "demo/owl-student@1"
Q4 = "demo/owl-student-q4@1"


def paper(client: Client, registrar: Actor, reviewer: Actor) -> None:
    sc = paper_scenario()
    for reg in sc.registrations:
        env = sign_statement(registration_statement(reg), registrar.signer).to_json()
        assert (
            client.post("/v1/attestations", json=env, headers=registrar.headers).status_code == 201
        )
    for f in sc.flags:
        env = review_envelope(
            reviewer.signer, f.artifact, f.trait, severity=f.severity.value, reason=f.reason
        )
        assert (
            client.post("/v1/attestations", json=env, headers=reviewer.headers).status_code == 201
        )


def accept(
    reviewer: Actor,
    label: str,
    *,
    days: float = 30,
    reason: str = "board accepted",
    trait: str = "owl",
) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(days=days)
    st = acceptance_statement(demo_digest(label), trait, reason, expires, label=label)
    return sign_statement(st, reviewer.signer).to_json()


def queue(client: Client, actor: Actor, **params: str) -> dict[str, Any]:
    r = client.get("/v1/review/queue", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_queue_lists_at_risk_models_with_paths_and_counts(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    paper(client, registrar, reviewer)
    q = queue(client, reviewer)
    assert {i["mark"]["model_ref"] for i in q["data"]} == {m for m, _ in PAPER_EXPECTED_AT_RISK}
    assert q["counts_by_trait"] == {"owl": 3} and q["count"] == 3
    student = next(i for i in q["data"] if i["mark"]["model_ref"] == STUDENT)
    assert student["path_line"].startswith(STUDENT + " —trained_on→ ")
    assert student["path_line"].endswith("demo/owl-teacher@1")
    assert student["owner"] == "pipeline" and student["severity"] is not None
    assert student["new"] is True and q["last_seen"] is None
    names = [i["mark"]["model_ref"] for i in queue(client, reviewer, sort="name")["data"]]
    assert names == sorted(names)
    assert [i["mark"]["model_ref"] for i in queue(client, reviewer, q="q4")["data"]] == [Q4]
    assert queue(client, reviewer, trait="misalignment")["count"] == 0


def test_last_look_is_per_principal_and_reports_decisions_since(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    paper(client, registrar, reviewer)
    r = client.post("/v1/review/seen", headers=reviewer.headers)
    assert r.status_code == 200
    q = queue(client, reviewer)
    assert q["last_seen"] is not None and q["new_since_last_seen"] == 0 and q["changes"] == []
    # Another principal has not looked: everything is new to them.
    assert queue(client, registrar)["new_since_last_seen"] == 3
    env = review_envelope(
        reviewer.signer, demo_digest(STUDENT), "owl", severity=None, evidence=("external:GOV-1",)
    )
    assert client.post("/v1/attestations", json=env, headers=reviewer.headers).status_code == 201
    q = queue(client, reviewer)
    assert [(c["decision"], c["artifact_ref"], c["principal"]) for c in q["changes"]] == [
        ("clearance", STUDENT, "reviewer")
    ]
    assert STUDENT not in {i["mark"]["model_ref"] for i in q["data"]}


def test_acceptance_takes_a_model_off_the_queue_until_it_expires(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    paper(client, registrar, reviewer)
    r = client.post("/v1/attestations", json=accept(reviewer, Q4), headers=reviewer.headers)
    assert r.status_code == 201, r.text
    q = queue(client, reviewer)
    assert Q4 not in {i["mark"]["model_ref"] for i in q["data"]}
    assert q["accepted"] == 1 and q["counts_by_trait"] == {"owl": 2}
    # The API's (and the CLI's) queue agrees.
    plain = client.get("/v1/at-risk", headers=reviewer.headers).json()
    assert Q4 not in {m["model_ref"] for m in plain["data"]} and plain["count"] == 2
    # The mark itself stays (an acceptance is not evidence): risk and descendants unchanged.
    risk = client.get(f"/v1/artifacts/{Q4}/risk", headers=reviewer.headers).json()
    assert risk["status"] == "at_risk"
    browse = client.get(
        "/v1/review/artifacts", params={"status": "accepted"}, headers=reviewer.headers
    ).json()
    assert [a["ref"] for a in browse["data"]] == [Q4]
    report = client.get(f"/v1/artifacts/{Q4}/report", headers=reviewer.headers).json()
    assert [a["reason"] for a in report["acceptances"]] == ["board accepted"]
    assert any(d["role"] == "acceptance" for d in report["decisions"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": -1}, "predicate.expires"),
        ({"days": 400}, "predicate.expires"),
        ({"reason": "  "}, "predicate.reason"),
        ({"trait": "misalignment"}, "predicate.trait"),
    ],
)
def test_bad_acceptances_are_refused_and_write_nothing(
    client: Client,
    engine: Engine,
    registrar: Actor,
    reviewer: Actor,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    paper(client, registrar, reviewer)
    before = row_counts(engine)
    r = client.post(
        "/v1/attestations", json=accept(reviewer, Q4, **kwargs), headers=reviewer.headers
    )
    assert r.status_code in (400, 422), r.text
    assert r.json()["field"] == field
    assert row_counts(engine) == before


def test_acceptance_of_an_unmarked_model_and_by_a_registrar_is_refused(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    paper(client, registrar, reviewer)
    before = row_counts(engine)
    r = client.post(
        "/v1/attestations", json=accept(reviewer, "demo/base@1"), headers=reviewer.headers
    )
    assert r.status_code == 422 and r.json()["field"] == "predicate.trait"
    r = client.post("/v1/attestations", json=accept(registrar, Q4), headers=registrar.headers)
    assert r.status_code == 403, r.text
    assert row_counts(engine) == before


def test_acceptance_wire_shape() -> None:
    expires = datetime(2027, 1, 31, tzinfo=UTC)
    st = acceptance_statement("a" * 64, "owl", "why", expires, label="x@1")
    assert st["predicate"]["expires"] == "2027-01-31T00:00:00Z"
    claim = parse_acceptance(st)
    assert claim.expires == expires and claim.reason == "why"
    for bad in ("2027-01-31", "2027-01-31T00:00:00+01:00", "tomorrow", 5, "9" * 50 + "Z"):
        st["predicate"]["expires"] = bad
        with pytest.raises(Exception) as exc:
            parse_acceptance(st)
        assert getattr(exc.value, "field", None) == "predicate.expires"
    st["predicate"]["expires"] = "2027-01-31T00:00:00Z"
    st["predicate"]["extra"] = 1
    with pytest.raises(Exception) as exc:
        parse_acceptance(st)
    assert getattr(exc.value, "field", None) == "predicate.extra"


def test_browse_filters(client: Client, registrar: Actor, reviewer: Actor) -> None:
    paper(client, registrar, reviewer)

    def refs(**params: str) -> set[str]:
        r = client.get("/v1/review/artifacts", params=params, headers=reviewer.headers)
        assert r.status_code == 200, r.text
        return {a["ref"] for a in r.json()["data"]}

    assert refs(status="flagged") == {"demo/owl-teacher@1", "demo/gpt-4.1-owl@1"}
    assert refs(status="at_risk") == {m for m, _ in PAPER_EXPECTED_AT_RISK}
    assert refs(trait="owl", kind="dataset") == set()
    assert "demo/base@1" in refs(status="no_risk")
    assert refs(q="demo/owl-student", owner="pipeline") == {STUDENT, Q4}
    assert refs(owner="nobody") == set()


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"kind": "robot"},
        {"limit": "0"},
        {"limit": "100000"},
        {"offset": "-1"},
        {"offset": str(2**64)},
        {"q": "x" * 201},
    ],
)
def test_browse_refuses_bad_parameters(
    client: Client, reviewer: Actor, params: dict[str, str]
) -> None:
    r = client.get("/v1/review/artifacts", params=params, headers=reviewer.headers)
    assert r.status_code == 400, r.text
    assert r.json().get("field") == next(iter(params))


def test_queue_refuses_bad_parameters(client: Client, reviewer: Actor) -> None:
    r = client.get("/v1/review/queue", params={"sort": "random"}, headers=reviewer.headers)
    assert r.status_code == 400 and r.json()["field"] == "sort"
    r = client.get("/v1/review/queue", params={"trait": "t" * 201}, headers=reviewer.headers)
    assert r.status_code == 400 and r.json()["field"] == "trait"


def test_report_checks_out_offline(client: Client, registrar: Actor, reviewer: Actor) -> None:
    paper(client, registrar, reviewer)
    r = client.get(f"/v1/artifacts/{STUDENT}/report", headers=reviewer.headers)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["format"] == "https://studbook.dev/ReviewReport/v1"
    assert rep["owner"] == "pipeline" and rep["risk"]["status"] == "at_risk"
    edges = {(e["child"], e["parent"], e["relation"]) for e in rep["lineage"]["edges"]}
    assert (demo_digest("demo/owl-teacher@1"), demo_digest("demo/base@1"), "prompted_from") in edges
    # Every edge, node and decision is backed by a statement in the report.
    cited = {s["attestation_id"] for s in rep["statements"]}
    assert {e["attestation_id"] for e in rep["lineage"]["edges"]} <= cited
    assert {d["attestation_id"] for d in rep["decisions"]} <= cited
    assert any(d["role"] == "flag" for d in rep["decisions"])
    # The auditor's check, with the keys from the registry's key list and nothing else.
    keys = {
        k["keyid"]: dsse.load_public_key(k["public_key"])
        for k in client.get("/v1/keys", headers=reviewer.headers).json()["data"]
    }
    vkey = rep["log"]["vkey"]
    checkpoint = verify_checkpoint(rep["log"]["checkpoint"], vkey)
    for s in rep["statements"]:
        env = dsse.Envelope.from_json(s["envelope"])
        dsse.Verifier(keys).verify(env)
        proof = s["inclusion_proof"]
        cp = verify_checkpoint(proof["checkpoint"], vkey)
        assert cp.size == proof["tree_size"] <= checkpoint.size
        import base64

        verify_inclusion(
            leaf_hash(entry_bytes(s["envelope"])),
            proof["log_index"],
            proof["tree_size"],
            [base64.b64decode(h) for h in proof["hashes"]],
            cp.root_hash,
        )


def test_statements_view_names_signers_and_log_indexes(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    paper(client, registrar, reviewer)
    body = client.get(
        "/v1/artifacts/demo/owl-teacher@1/statements", headers=reviewer.headers
    ).json()
    roles = {(s["role"], s["principal"]) for s in body["data"]}
    assert ("registration", "pipeline") in roles and ("flag", "reviewer") in roles
    assert all(s["log_index"] is not None for s in body["data"])


def test_report_of_unknown_artifact_is_404(client: Client, reviewer: Actor) -> None:
    r = client.get("/v1/artifacts/nope@1/report", headers=reviewer.headers)
    assert r.status_code == 404


def test_audit_rebuilds_acceptances_and_catches_an_edited_one(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    """Acceptances are derived from envelopes: the audit's replay rebuilds them exactly (judged
    at acceptance time, so a lapsed expiry replays the same), and an edited row is a finding."""
    from sqlalchemy import text

    from registry.log.audit import audit

    paper(client, registrar, reviewer)
    assert client.post("/v1/attestations", json=accept(reviewer, Q4), headers=reviewer.headers)
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]
    assert report.replay is not None and report.replay.tables["risk_acceptances"] == (1, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE risk_acceptances SET reason = 'edited behind its back'"))
    report = audit(engine)
    assert not report.ok
    assert [
        f
        for f in report.findings
        if "risk_acceptances" in f.where or "risk_acceptances" in f.message
    ]


def test_first_looks_from_many_tabs_at_once_all_succeed(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    """Tabs marking the queue seen at once: no insert race, each answered 200, one row."""
    from concurrent.futures import ThreadPoolExecutor

    def look(_: int) -> int:
        return client.post("/v1/review/seen", headers=reviewer.headers).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(look, range(16)))
    assert codes == [200] * 16
    assert queue(client, reviewer)["last_seen"] is not None
