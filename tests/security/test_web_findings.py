"""Findings through the review workspace, attacked: decisions made with a browser session need
its CSRF token and the reviewer role, a refused decision writes nothing, the kind filter takes
only the kinds there are, and what the finding page shows (who signed, the two fingerprints'
digests, who decided) is what the registry stored."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage.findings import confirmation_statement, dismissal_statement
from lineage.statements import sign_statement
from registry.auth import Role
from registry.keys.service import REGISTRY_PRINCIPAL
from registry.models.findings import ModelFingerprint
from tests.integration.test_findings import by_kind, findings, lineage  # noqa: F401  (fixture)
from tests.support import Actor, make_actor, row_counts

Client = TestClient[Any]
ORIGIN = "http://testserver.local"


@pytest.fixture
def open_findings(
    client: Client,
    registrar: Actor,
    lineage: dict[str, Any],  # noqa: F811
) -> dict[str, dict[str, Any]]:
    return by_kind(findings(client, registrar, status="open"))


def _session(client: Client, token: str) -> str:
    r = client.post("/v1/session", json={"token": token})
    assert r.status_code == 201, r.text
    return str(r.json()["csrf_token"])


def _unchanged(engine: Engine, before: dict[str, int]) -> None:
    after = row_counts(engine)
    after.pop("web_sessions"), before.pop("web_sessions")
    assert after == before


def test_a_decision_through_the_page_needs_csrf_and_a_reviewer(
    client: Client,
    engine: Engine,
    reviewer: Actor,
    open_findings: dict[str, dict[str, Any]],
) -> None:
    f = open_findings["undeclared_shared_base"]
    statement = confirmation_statement(f["model"], f["statement"], "pipeline log", label="x")
    envelope = sign_statement(statement, reviewer.signer).to_json()
    csrf = _session(client, reviewer.token)
    before = row_counts(engine)
    for headers in (
        {},
        {"X-CSRF-Token": "forged"},
        {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    ):
        r = client.post("/v1/attestations", json=envelope, headers=headers)
        assert r.status_code == 403, r.text
    _unchanged(engine, before)
    # A viewer signed in through the page cannot decide, even with a reviewer's envelope.
    viewer = make_actor(client, engine, "onlooker", Role.VIEWER)
    other = TestClient(client.app)
    with other:
        viewer_csrf = _session(other, viewer.token)
        before = row_counts(engine)
        r = other.post(
            "/v1/attestations",
            json=envelope,
            headers={"X-CSRF-Token": viewer_csrf, "Origin": ORIGIN},
        )
        assert r.status_code == 403, r.text
        _unchanged(engine, before)
        assert other.get(f"/v1/findings/{f['id']}").json()["status"] == "open"
    # The reviewer's session with its token: recorded, in the reviewer's name.
    r = client.post(
        "/v1/attestations", json=envelope, headers={"X-CSRF-Token": csrf, "Origin": ORIGIN}
    )
    assert r.status_code == 201, r.text
    assert r.json()["principal"] == "reviewer" and r.json()["edges_added"] == 1
    decided = client.get(f"/v1/findings/{f['id']}").json()
    assert decided["status"] == "confirmed" and decided["decided_by"] == "reviewer"
    assert decided["decided_at"] is not None and decided["decision_reason"] == "pipeline log"


def test_a_dismissal_without_a_reason_is_refused_and_writes_nothing(
    client: Client, engine: Engine, reviewer: Actor, open_findings: dict[str, dict[str, Any]]
) -> None:
    f = open_findings["declared_parent_contradicted"]
    csrf = _session(client, reviewer.token)
    before = row_counts(engine)
    for reason in ("", " ", "\n\t "):
        st = dismissal_statement(f["model"], f["statement"], "placeholder")
        st["predicate"]["reason"] = reason
        env = sign_statement(st, reviewer.signer).to_json()
        r = client.post(
            "/v1/attestations", json=env, headers={"X-CSRF-Token": csrf, "Origin": ORIGIN}
        )
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "predicate.reason"
    _unchanged(engine, before)


def test_findings_list_filters_by_kind_and_counts_each(
    client: Client, reviewer: Actor, open_findings: dict[str, dict[str, Any]]
) -> None:
    h = reviewer.headers
    page = client.get("/v1/findings", params={"status": "open"}, headers=h).json()
    assert page["counts_by_kind"] == {
        "undeclared_shared_base": 1,
        "declared_parent_contradicted": 1,
    }
    one = client.get(
        "/v1/findings", params={"status": "open", "kind": "undeclared_shared_base"}, headers=h
    ).json()
    assert [f["kind"] for f in one["data"]] == ["undeclared_shared_base"] and one["count"] == 1
    # The counts ignore the kind filter (the page's filter shows every kind's count).
    assert one["counts_by_kind"] == page["counts_by_kind"]
    none = client.get("/v1/findings", params={"status": "dismissed"}, headers=h).json()
    assert none["count"] == 0 and none["counts_by_kind"] == {}
    for odd in ("maybe", "UNDECLARED_SHARED_BASE", "undeclared_shared_base\x00", "é" * 5000, "[]"):
        r = client.get("/v1/findings", params={"kind": odd}, headers=h)
        assert r.status_code == 400, (odd[:20], r.status_code, r.text[:200])
    r = client.get("/v1/findings?kind=a&kind=b", headers=h)
    assert r.status_code == 400


def test_the_page_shows_what_the_registry_stored(
    client: Client, engine: Engine, reviewer: Actor, open_findings: dict[str, dict[str, Any]]
) -> None:
    for f in open_findings.values():
        assert f["signed_by"] == REGISTRY_PRINCIPAL
        att = client.get(f"/v1/attestations/{f['attestation_id']}", headers=reviewer.headers)
        assert att.json()["signer_keyid"] == f["signer_keyid"]
        assert att.json()["principal"] == REGISTRY_PRINCIPAL
        assert f["decided_by"] is None and f["decided_at"] is None
        with Session(engine) as s:
            stored = {row.content_sha256: row.scheme for row in s.scalars(select(ModelFingerprint))}
        assert f["model_fingerprint"] in stored and f["other_fingerprint"] in stored
        assert f["model_fingerprint"] != f["other_fingerprint"]
        assert f["scheme"] == stored[f["model_fingerprint"]]
