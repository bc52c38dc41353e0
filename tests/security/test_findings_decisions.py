"""Findings and decisions on them, attacked: only reviewers decide, nobody but the registry raises
a finding (not even an admin), a decision names a real finding about its own model, a finding is
decided once even under concurrent reviewers, refusals write nothing, and the log still audits
clean."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage import dsse
from lineage.findings import (
    FindingKind,
    confirmation_statement,
    dismissal_statement,
    finding_statement,
)
from lineage.statements import sign_statement
from registry.auth import Role
from registry.log.audit import audit
from tests.integration.test_findings import by_kind, findings, lineage  # noqa: F401  (fixture)
from tests.security.test_races import race
from tests.support import Actor, digest_of, key_registration, make_actor, row_counts

ATT = "/v1/attestations"


def _post(client: TestClient[Any], actor: Actor, statement: dict[str, Any]) -> Any:
    return client.post(
        ATT, json=sign_statement(statement, actor.signer).to_json(), headers=actor.headers
    )


@pytest.fixture
def open_findings(
    client: TestClient[Any],
    registrar: Actor,
    lineage: dict[str, Any],  # noqa: F811
) -> dict[str, dict[str, Any]]:
    return by_kind(findings(client, registrar, status="open"))


def test_viewers_and_registrars_cannot_decide(
    client: TestClient[Any],
    engine: Engine,
    registrar: Actor,
    open_findings: dict[str, dict[str, Any]],
) -> None:
    viewer = make_actor(client, engine, "onlooker", Role.VIEWER)
    # A viewer's key cannot be registered (make_actor tolerates the refusal), so it cannot sign
    # anything the registry accepts; a registrar can sign, but may not decide.
    f = open_findings["undeclared_shared_base"]
    before = row_counts(engine)
    for actor in (registrar, viewer):
        for statement in (
            confirmation_statement(f["model"], f["statement"], "yes"),
            dismissal_statement(f["model"], f["statement"], "no"),
        ):
            r = _post(client, actor, statement)
            assert r.status_code == 403, r.text
    assert row_counts(engine) == before
    assert client.get("/v1/findings", headers=viewer.headers).status_code == 200


def test_nobody_but_the_registry_raises_a_finding(
    client: TestClient[Any],
    engine: Engine,
    admin_token: str,
    registrar: Actor,
    reviewer: Actor,
    open_findings: dict[str, dict[str, Any]],
) -> None:
    admin_signer = dsse.Signer(dsse.generate_private_key())
    admin_headers = {"Authorization": f"Bearer {admin_token}"}
    who = client.get("/v1/me", headers=admin_headers).json()
    r = client.post(
        "/v1/keys", json=key_registration(admin_signer, who["name"]), headers=admin_headers
    )
    assert r.status_code == 201, r.text
    admin = Actor(who["name"], admin_token, admin_signer)
    forged = finding_statement(
        FindingKind.UNDECLARED_SHARED_BASE,
        (digest_of("acme/teacher@1"), "acme/teacher@1"),
        (digest_of("acme/other-base@1"), "acme/other-base@1"),
        statistic=0.99,
        p_value=0.001,
        permutations=999,
        reason="forged",
        scheme="studbook.dev/fingerprint/embedding-gram/v1",
        registration=digest_of("x"),
    )
    before = row_counts(engine)
    for actor in (registrar, reviewer, admin):
        r = _post(client, actor, forged)
        assert r.status_code == 403, (actor.name, r.text)
    assert row_counts(engine) == before


def test_decisions_name_a_real_finding_about_their_model(
    client: TestClient[Any],
    engine: Engine,
    reviewer: Actor,
    open_findings: dict[str, dict[str, Any]],
) -> None:
    f = open_findings["undeclared_shared_base"]
    before = row_counts(engine)
    r = _post(client, reviewer, confirmation_statement(f["model"], digest_of("nothing"), "x"))
    assert r.status_code == 422 and r.json()["field"] == "predicate.finding", r.text
    r = _post(client, reviewer, confirmation_statement(digest_of("acme/teacher@1"), f["statement"]))
    assert r.status_code == 422 and r.json()["field"] == "subject[0].digest", r.text
    bad = confirmation_statement(f["model"], f["statement"])
    bad["predicate"]["finding"] = "sha256:XYZ"
    r = _post(client, reviewer, bad)
    assert r.status_code == 400 and r.json()["field"] == "predicate.finding", r.text
    extra = confirmation_statement(f["model"], f["statement"])
    extra["predicate"]["edge"] = "fine_tuned_from"
    r = _post(client, reviewer, extra)
    assert r.status_code == 400 and r.json()["field"] == "predicate.edge", r.text
    odd = dismissal_statement(f["model"], f["statement"], "bidi \u202e trick")
    r = _post(client, reviewer, odd)
    assert r.status_code == 400 and r.json()["field"] == "predicate.reason", r.text
    long = dismissal_statement(f["model"], f["statement"], "x" * 5000)
    r = _post(client, reviewer, long)
    assert r.status_code == 400 and r.json()["field"] == "predicate.reason", r.text
    assert row_counts(engine) == before


def test_finding_reads_validate_their_inputs(
    client: TestClient[Any], reviewer: Actor, open_findings: dict[str, dict[str, Any]]
) -> None:
    h = reviewer.headers
    assert client.get("/v1/findings/999999", headers=h).status_code == 404
    assert client.get("/v1/findings/0", headers=h).status_code == 400
    assert client.get(f"/v1/findings/{2**63}", headers=h).status_code in (400, 404)
    assert client.get("/v1/findings", params={"status": "maybe"}, headers=h).status_code == 400
    r = client.get("/v1/findings", params={"model": "acme/nobody@1"}, headers=h)
    assert r.status_code == 404, r.text
    assert client.get("/v1/findings", params={"limit": 0}, headers=h).status_code == 400
    assert client.get("/v1/findings").status_code == 401
    page = client.get("/v1/findings", params={"limit": 1}, headers=h).json()
    assert page["count"] == 2 and len(page["data"]) == 1


def test_concurrent_decisions_decide_once(
    client: TestClient[Any],
    engine: Engine,
    reviewer: Actor,
    open_findings: dict[str, dict[str, Any]],
) -> None:
    second = make_actor(client, engine, "reviewer-2", Role.REVIEWER)
    f = open_findings["undeclared_shared_base"]
    actors = [reviewer, second] * 3

    def decide(i: int) -> Any:
        actor = actors[i]
        statement = (
            confirmation_statement(f["model"], f["statement"], f"yes {i}")
            if i % 2
            else dismissal_statement(f["model"], f["statement"], f"no {i}")
        )
        return _post(client, actor, statement)

    answers = race(len(actors), decide)
    codes = Counter(r.status_code for r in answers)
    assert codes[201] == 1 and codes[409] == len(actors) - 1, codes
    got = client.get(f"/v1/findings/{f['id']}", headers=reviewer.headers).json()
    assert got["status"] in ("confirmed", "dismissed")
    report = audit(engine)
    assert report.ok, [str(x) for x in report.findings]


def test_the_registrys_own_key_cannot_be_revoked(
    client: TestClient[Any], engine: Engine, admin_token: str
) -> None:
    """The registry signs findings with the log key as `studbook-registry`; revoking that key
    through the keys API would make every later finding unsignable, so it is refused."""
    from sqlmodel import Session

    from registry.weights.service import SERVER_PRINCIPAL, _server_signer

    with Session(engine) as session:
        signer, _ = _server_signer(session)
        session.commit()
    keyid = signer.keyid
    headers = {"Authorization": f"Bearer {admin_token}"}
    keys = client.get("/v1/keys", headers=headers).json()["data"]
    assert {k["principal"] for k in keys if k["keyid"] == keyid} == {SERVER_PRINCIPAL}
    answer = client.post(f"/v1/keys/{keyid}/revoke", headers=headers)
    assert answer.status_code == 409 and answer.json()["field"] == "keyid"
    keys = client.get("/v1/keys", headers=headers).json()["data"]
    assert [k["revoked_at"] for k in keys if k["keyid"] == keyid] == [None]
