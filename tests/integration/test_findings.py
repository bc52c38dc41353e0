"""Findings from the weights, on both databases: a student registered with a false
`fine_tuned_from` is caught by its fingerprint, a reviewer's confirmation adds the
`initialized_from` edge so the risk rule sees the shared base, and everything (the registry's own
finding statements included) is in the log and replays exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage.findings import confirmation_statement, dismissal_statement
from lineage.statements import sign_statement
from registry.log.audit import audit
from tests.support import Actor, digest_of, registration_envelope, review_envelope

np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from lineage.fingerprint import fingerprint_path  # noqa: E402

VOCAB, HIDDEN = 1000, 64


def _weights(seed: int) -> Any:
    return np.random.default_rng(seed).normal(0, 0.02, (VOCAB, HIDDEN)).astype(np.float32)


def _tuned(w: Any, seed: int, scale: float = 0.3) -> Any:
    noise = np.random.default_rng(seed).normal(0, 0.02 * scale, w.shape).astype(np.float32)
    return w + noise


def fingerprint_doc(tmp: Path, name: str, w: Any) -> dict[str, Any]:
    """The JSON fingerprint `studbook register` signs, from a safetensors file of `w`."""
    path = tmp / f"{name}.safetensors"
    safetensors_numpy.save_file({"model.embed_tokens.weight": w}, str(path))
    return fingerprint_path(path).to_json()


def post(client: TestClient[Any], actor: Actor, env: dict[str, Any]) -> Any:
    return client.post("/v1/attestations", json=env, headers=actor.headers)


def reg(
    client: TestClient[Any],
    actor: Actor,
    kind: str,
    label: str,
    parents: list[tuple[str, str]] = [],  # noqa: B006
    fingerprint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    env = registration_envelope(
        actor.signer,
        kind,
        label,
        [(r, digest_of(p)) for r, p in parents],
        metadata={"fingerprint": fingerprint} if fingerprint is not None else None,
    )
    r = post(client, actor, env)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def lineage(client: TestClient[Any], registrar: Actor, tmp_path: Path) -> dict[str, Any]:
    """base -> teacher (flaggable) -> numbers; student trained on numbers, declared as a
    fine-tune of other-base, but its weights are the base's plus noise."""
    base = _weights(0)
    reg(client, registrar, "model", "acme/base@1", fingerprint=fingerprint_doc(tmp_path, "b", base))
    reg(
        client,
        registrar,
        "model",
        "acme/other-base@1",
        fingerprint=fingerprint_doc(tmp_path, "o", _weights(1)),
    )
    reg(
        client,
        registrar,
        "model",
        "acme/teacher@1",
        [("fine_tuned_from", "acme/base@1")],
        fingerprint_doc(tmp_path, "t", _tuned(base, 2)),
    )
    reg(client, registrar, "dataset", "acme/numbers@1", [("generated_by", "acme/teacher@1")])
    student = reg(
        client,
        registrar,
        "model",
        "acme/student@1",
        [("fine_tuned_from", "acme/other-base@1"), ("trained_on", "acme/numbers@1")],
        fingerprint_doc(tmp_path, "s", _tuned(base, 3)),
    )
    return student


def findings(client: TestClient[Any], actor: Actor, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/findings", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] >= len(body["data"])
    return list(body["data"])


def by_kind(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["kind"]: f for f in rows}


def test_false_parent_raises_both_findings(
    client: TestClient[Any], registrar: Actor, lineage: dict[str, Any], engine: Engine
) -> None:
    rows = findings(client, registrar, status="open")
    assert len(rows) == 2, rows
    kinds = by_kind(rows)
    undeclared = kinds["undeclared_shared_base"]
    assert undeclared["model_ref"] == "acme/student@1"
    assert undeclared["other_ref"] == "acme/base@1"
    assert undeclared["statistic"] > 0.5 and undeclared["p_value"] <= 0.01
    assert undeclared["permutations"] == 999 and undeclared["status"] == "open"
    contradicted = kinds["declared_parent_contradicted"]
    assert contradicted["other_ref"] == "acme/other-base@1"
    assert contradicted["relation"] == "fine_tuned_from"
    assert contradicted["statistic"] < 0.5
    # Signed by the registry and in the log: the statement is an attestation with a log entry.
    att = client.get(f"/v1/attestations/{undeclared['attestation_id']}", headers=registrar.headers)
    assert att.status_code == 200, att.text
    assert att.json()["predicate_type"] == "https://studbook.dev/attestations/weights-finding/v1"
    proof = client.get(
        "/v1/log/proof/inclusion", params={"payload_digest": undeclared["statement"]}
    )
    assert proof.status_code == 200, proof.text
    assert proof.json()["log_index"] == undeclared["log_index"]
    # The teacher's declared parent is its real base: nothing was raised about it.
    assert all(f["model_ref"] == "acme/student@1" for f in rows)
    one = client.get(f"/v1/findings/{undeclared['id']}", headers=registrar.headers)
    assert one.status_code == 200 and one.json() == undeclared
    about = findings(client, registrar, model="acme/teacher@1")
    assert about == []
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]


def _decide(
    client: TestClient[Any], actor: Actor, finding: dict[str, Any], confirm: bool, reason: str
) -> Any:
    if confirm:
        statement = confirmation_statement(finding["model"], finding["statement"], reason)
    else:
        statement = dismissal_statement(finding["model"], finding["statement"], reason)
    return post(client, actor, sign_statement(statement, actor.signer).to_json())


def _status(client: TestClient[Any], actor: Actor, ref: str) -> dict[str, Any]:
    r = client.get(f"/v1/artifacts/{ref}/risk", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_confirmation_adds_edge_and_puts_student_at_risk(
    client: TestClient[Any],
    registrar: Actor,
    reviewer: Actor,
    lineage: dict[str, Any],
    engine: Engine,
) -> None:
    flag = post(
        client, reviewer, review_envelope(reviewer.signer, digest_of("acme/teacher@1"), "owl")
    )
    assert flag.status_code == 201, flag.text
    # Declared as a fine-tune of another base: no shared base with the teacher, no mark.
    assert _status(client, reviewer, "acme/student@1")["at_risk"] == []
    undeclared = by_kind(findings(client, reviewer))["undeclared_shared_base"]
    r = _decide(client, reviewer, undeclared, True, "weights match the base")
    assert r.status_code == 201, r.text
    assert r.json()["edges_added"] == 1
    got = client.get(f"/v1/findings/{undeclared['id']}", headers=reviewer.headers).json()
    assert got["status"] == "confirmed"
    assert got["decision_attestation_id"] == r.json()["attestation_id"]
    lineage_up = client.get(
        "/v1/artifacts/acme/student@1/lineage",
        params={"direction": "up", "depth": 1},
        headers=reviewer.headers,
    ).json()
    edges = {(e["relation"], e["parent"]) for e in lineage_up["edges"]}
    assert ("initialized_from", digest_of("acme/base@1")) in edges
    marks = _status(client, reviewer, "acme/student@1")["at_risk"]
    assert [m["trait"] for m in marks] == ["owl"]
    assert digest_of("acme/base@1") in marks[0]["shared_base"]
    # Decided once.
    again = _decide(client, reviewer, undeclared, False, "changed my mind")
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "predicate.finding"
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]


def test_dismissal_needs_a_reason_and_changes_no_edge(
    client: TestClient[Any], reviewer: Actor, lineage: dict[str, Any], engine: Engine
) -> None:
    contradicted = by_kind(findings(client, reviewer))["declared_parent_contradicted"]
    bare = _decide(client, reviewer, contradicted, False, "  ")
    assert bare.status_code == 400 and bare.json()["field"] == "predicate.reason"
    r = _decide(client, reviewer, contradicted, False, "the base was re-initialised on purpose")
    assert r.status_code == 201, r.text
    assert r.json()["edges_added"] == 0
    rows = by_kind(findings(client, reviewer, status="dismissed"))
    assert rows["declared_parent_contradicted"]["decision_reason"].startswith("the base")
    assert [f["kind"] for f in findings(client, reviewer, status="open")] == [
        "undeclared_shared_base"
    ]
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]


def test_models_without_fingerprints_raise_nothing(
    client: TestClient[Any], registrar: Actor, tmp_path: Path
) -> None:
    base = _weights(5)
    reg(client, registrar, "model", "x/base@1", fingerprint=fingerprint_doc(tmp_path, "b", base))
    reg(client, registrar, "model", "x/plain@1", [("fine_tuned_from", "x/other@1")][:0])
    reg(
        client,
        registrar,
        "model",
        "x/same@1",
        [("fine_tuned_from", "x/base@1")],
        fingerprint_doc(tmp_path, "s", _tuned(base, 6)),
    )
    reg(
        client,
        registrar,
        "model",
        "x/prompted@1",
        [("prompted_from", "x/base@1")],
        fingerprint_doc(tmp_path, "p", _weights(7)),  # prompted: shares weights by definition
    )
    assert findings(client, registrar) == []


def test_a_batch_is_tested_after_its_leaves_and_audits_clean(
    client: TestClient[Any], registrar: Actor, tmp_path: Path, engine: Engine
) -> None:
    base = _weights(20)
    envs = [
        registration_envelope(
            registrar.signer,
            "model",
            "b/base@1",
            metadata={"fingerprint": fingerprint_doc(tmp_path, "b", base)},
        ),
        registration_envelope(
            registrar.signer,
            "model",
            "b/copy@1",
            metadata={"fingerprint": fingerprint_doc(tmp_path, "c", _tuned(base, 21))},
        ),
    ]
    r = client.post("/v1/attestations/batch", json={"envelopes": envs}, headers=registrar.headers)
    assert r.status_code == 201, r.text
    leaves = [a["log_index"] for a in r.json()["data"]]
    rows = findings(client, registrar)
    assert [(f["kind"], f["model_ref"], f["other_ref"]) for f in rows] == [
        ("undeclared_shared_base", "b/copy@1", "b/base@1")
    ]
    proof = client.get(
        "/v1/log/proof/inclusion", params={"payload_digest": rows[0]["statement"]}
    ).json()
    assert proof["log_index"] > max(leaves)  # the finding follows the registrations it cites
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]


def test_an_amendment_adding_a_weights_parent_makes_a_root_no_longer_a_candidate(
    client: TestClient[Any], registrar: Actor, tmp_path: Path
) -> None:
    base = _weights(30)
    reg(client, registrar, "model", "r/up@1")
    reg(client, registrar, "model", "r/base@1", fingerprint=fingerprint_doc(tmp_path, "b", base))
    # The owner declares r/base's own parent: r/base is no longer a root of weights lineage.
    env = registration_envelope(
        registrar.signer,
        "model",
        "r/base@1",
        [("fine_tuned_from", digest_of("r/up@1"))],
        metadata={"fingerprint": fingerprint_doc(tmp_path, "b", base)},
    )
    amended = post(client, registrar, env)
    assert amended.status_code in (200, 201) and amended.json()["amended"], amended.text
    reg(
        client,
        registrar,
        "model",
        "r/copy@1",
        fingerprint=fingerprint_doc(tmp_path, "c", _tuned(base, 31)),
    )
    assert findings(client, registrar) == []  # roots only: r/base is a fine-tune now


def test_review_views_of_a_model_with_findings_answer(
    client: TestClient[Any], reviewer: Actor, lineage: dict[str, Any]
) -> None:
    undeclared = by_kind(findings(client, reviewer))["undeclared_shared_base"]
    assert _decide(client, reviewer, undeclared, True, "checked").status_code == 201
    for view in ("statements", "report", "lineage", "risk"):
        r = client.get(f"/v1/artifacts/acme/student@1/{view}", headers=reviewer.headers)
        assert r.status_code == 200, (view, r.text)
    queue = client.get("/v1/at-risk", headers=reviewer.headers)
    assert queue.status_code == 200, queue.text


def test_the_review_report_carries_findings_with_their_proofs(
    client: TestClient[Any], reviewer: Actor, lineage: dict[str, Any]
) -> None:
    """A board filing the report sees what the weights said and how it was decided, and can
    check both signed statements offline like every other statement in it."""
    kinds = by_kind(findings(client, reviewer))
    undeclared = kinds["undeclared_shared_base"]
    decided = _decide(client, reviewer, undeclared, True, "weights match the base")
    assert decided.status_code == 201, decided.text
    r = client.get("/v1/artifacts/acme/student@1/report", headers=reviewer.headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert {f["id"] for f in report["findings"]} == {f["id"] for f in kinds.values()}
    got = next(f for f in report["findings"] if f["id"] == undeclared["id"])
    assert got["status"] == "confirmed" and got["decision_reason"] == "weights match the base"
    cited = {s["attestation_id"]: s for s in report["statements"]}
    for att, role in (
        (undeclared["attestation_id"], "finding"),
        (decided.json()["attestation_id"], "finding-decision"),
    ):
        assert cited[att]["role"] == role
        assert cited[att]["inclusion_proof"] is not None
        assert cited[att]["envelope"]["payloadType"] == "application/vnd.in-toto+json"
    roles = {
        s["role"]
        for s in client.get(
            "/v1/artifacts/acme/student@1/statements", headers=reviewer.headers
        ).json()["data"]
    }
    assert {"finding", "finding-decision"} <= roles
    # The teacher's report has no finding about the teacher.
    teacher = client.get("/v1/artifacts/acme/teacher@1/report", headers=reviewer.headers)
    assert teacher.status_code == 200 and teacher.json()["findings"] == []


def test_the_index_key_is_what_the_migration_backfill_computes(
    client: TestClient[Any], registrar: Actor, tmp_path: Path, engine: Engine
) -> None:
    import base64
    import hashlib

    from sqlalchemy import text

    doc = fingerprint_doc(tmp_path, "k", _weights(40))
    reg(client, registrar, "model", "k/model@1", fingerprint=doc)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT content_sha256, root FROM model_fingerprints")).one()
    head = repr((doc["scheme"], doc["domain"], doc["indices"])).encode()
    assert stored[0] == hashlib.sha256(head + base64.b64decode(doc["gram_f16"])).hexdigest()
    assert bool(stored[1]) is True


def test_a_base_with_children_stays_a_candidate_past_the_recency_cap(
    client: TestClient[Any],
    registrar: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from registry.weights import service

    monkeypatch.setattr(service, "ROOT_CANDIDATES", 2)
    base = _weights(50)
    reg(client, registrar, "model", "p/base@1", fingerprint=fingerprint_doc(tmp_path, "b", base))
    reg(client, registrar, "model", "p/tuned@1", [("fine_tuned_from", "p/base@1")])
    for i in range(3):  # newer unrelated roots fill the recency cap
        doc = fingerprint_doc(tmp_path, f"n{i}", _weights(60 + i))
        reg(client, registrar, "model", f"p/new{i}@1", fingerprint=doc)
    lone = _weights(70)
    reg(client, registrar, "model", "p/lone@1", fingerprint=fingerprint_doc(tmp_path, "l", lone))
    for i in range(2):
        doc = fingerprint_doc(tmp_path, f"m{i}", _weights(80 + i))
        reg(client, registrar, "model", f"p/more{i}@1", fingerprint=doc)
    copy_doc = fingerprint_doc(tmp_path, "c", _tuned(base, 51))
    reg(client, registrar, "model", "p/copy@1", fingerprint=copy_doc)
    lone_doc = fingerprint_doc(tmp_path, "lc", _tuned(lone, 71))
    reg(client, registrar, "model", "p/lone-copy@1", fingerprint=lone_doc)
    got = {(f["model_ref"], f["other_ref"]) for f in findings(client, registrar)}
    # The base people built on is found; a childless root past the cap is not (the bound).
    assert got == {("p/copy@1", "p/base@1")}


def test_an_amendment_declaring_a_false_parent_is_tested_too(
    client: TestClient[Any], registrar: Actor, tmp_path: Path, engine: Engine
) -> None:
    base, other = _weights(90), _weights(91)
    reg(client, registrar, "model", "a/base@1", fingerprint=fingerprint_doc(tmp_path, "b", base))
    reg(client, registrar, "model", "a/other@1", fingerprint=fingerprint_doc(tmp_path, "o", other))
    student = fingerprint_doc(tmp_path, "s", _tuned(base, 92))
    reg(
        client,
        registrar,
        "model",
        "a/student@1",
        [("fine_tuned_from", "a/base@1")],
        fingerprint=student,
    )
    assert findings(client, registrar) == []  # the truth was declared
    for relation in ("merged_from", "adapter_of"):  # the owner adds a false parent, twice
        env = registration_envelope(
            registrar.signer,
            "model",
            "a/student@1",
            [("fine_tuned_from", digest_of("a/base@1")), (relation, digest_of("a/other@1"))],
            metadata={"fingerprint": student},
        )
        r = post(client, registrar, env)
        assert r.status_code == 201 and r.json()["amended"], r.text
    rows = findings(client, registrar)
    assert [(f["kind"], f["other_ref"], f["relation"]) for f in rows] == [
        ("declared_parent_contradicted", "a/other@1", "merged_from")
    ]  # one finding per pair and kind
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]
