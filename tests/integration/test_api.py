"""The HTTP API on SQLite and PostgreSQL: every route, and every bad input refused cleanly."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage import dsse
from registry.auth import Role
from tests.support import (
    Actor,
    digest_of,
    key_registration,
    make_actor,
    register,
    registration_envelope,
    row_counts,
)

Client = TestClient[Any]


def post_env(client: Client, actor: Actor, env: Any) -> Any:
    return client.post("/v1/attestations", json=env, headers=actor.headers)


# ----------------------------------------------------------------------------- auth, principals


def test_health_needs_no_token(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_openapi_docs_are_served(client: Client) -> None:
    spec = client.get("/docs/openapi.json").json()
    assert "/v1/attestations" in spec["paths"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_requests_without_a_valid_token_are_refused(client: Client, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = client.get("/v1/artifacts", headers=headers)
    assert r.status_code == 401
    assert "token" in r.json()["detail"].lower() or "authorization" in r.json()["detail"].lower()


def test_admin_creates_principals_and_tokens(client: Client, admin_token: str) -> None:
    h = {"Authorization": f"Bearer {admin_token}"}
    r = client.post("/v1/principals", json={"name": "ci-pipeline", "role": "registrar"}, headers=h)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["name"] == "ci-pipeline" and me["role"] == "registrar"
    again = client.post("/v1/principals/ci-pipeline/tokens", headers=h)
    assert again.status_code == 201 and again.json()["token"] != token
    names = [p["name"] for p in client.get("/v1/principals", headers=h).json()["data"]]
    assert names == ["admin", "ci-pipeline"]


def test_principal_name_conflicts_and_bad_roles(client: Client, admin_token: str) -> None:
    h = {"Authorization": f"Bearer {admin_token}"}
    assert (
        client.post("/v1/principals", json={"name": "x", "role": "viewer"}, headers=h).status_code
        == 201
    )
    r = client.post("/v1/principals", json={"name": "x", "role": "viewer"}, headers=h)
    assert r.status_code == 409 and r.json()["field"] == "name"
    r = client.post("/v1/principals", json={"name": "y", "role": "overlord"}, headers=h)
    assert r.status_code == 400 and "role" in r.text
    r = client.post("/v1/principals/nobody/tokens", headers=h)
    assert r.status_code == 404


def test_only_admins_manage_principals(client: Client, registrar: Actor) -> None:
    r = client.post(
        "/v1/principals", json={"name": "z", "role": "admin"}, headers=registrar.headers
    )
    assert r.status_code == 403 and "admin" in r.json()["detail"]


# ----------------------------------------------------------------------------- keys


def test_key_registration_listing_and_revocation(client: Client, registrar: Actor) -> None:
    keys = client.get("/v1/keys", headers=registrar.headers).json()
    assert keys["count"] == 1 and keys["data"][0]["keyid"] == registrar.signer.keyid
    signer = dsse.Signer(dsse.load_private_key(dsse.private_key_pem(dsse.generate_private_key())))
    body = {
        **key_registration(signer, registrar.name),
        "public_key": dsse.public_key_pem(signer.public_key),
    }
    r = client.post("/v1/keys", json=body, headers=registrar.headers)
    assert r.status_code == 201, r.text
    assert r.json()["keyid"] == signer.keyid and r.json()["algorithm"] == "ed25519"
    dup = client.post("/v1/keys", json=body, headers=registrar.headers)
    assert dup.status_code == 409
    rev = client.post(f"/v1/keys/{r.json()['keyid']}/revoke", headers=registrar.headers)
    assert rev.status_code == 201 and rev.json()["revoked_at"] is not None


@pytest.mark.parametrize(
    ("value", "needle"),
    [("not base64!!" * 4, "base64"), (base64.b64encode(b"x" * 33).decode(), "32")],
)
def test_bad_public_keys_are_refused(
    client: Client, registrar: Actor, value: str, needle: str
) -> None:
    proof = key_registration(registrar.signer, registrar.name)["proof"]
    r = client.post(
        "/v1/keys", json={"public_key": value, "proof": proof}, headers=registrar.headers
    )
    assert r.status_code == 400 and r.json()["field"] == "public_key"
    assert needle in r.json()["detail"]


def test_cannot_revoke_someone_elses_key(client: Client, engine: Engine, registrar: Actor) -> None:
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    r = client.post(f"/v1/keys/{registrar.signer.keyid}/revoke", headers=other.headers)
    assert r.status_code == 403
    assert client.post("/v1/keys/" + "0" * 64 + "/revoke", headers=other.headers).status_code == 404


def test_viewers_cannot_register_keys(client: Client, engine: Engine) -> None:
    viewer = make_actor(client, engine, "auditor", Role.VIEWER)
    r = client.post(
        "/v1/keys",
        json=key_registration(viewer.signer, viewer.name),
        headers=viewer.headers,
    )
    assert r.status_code == 403


# ----------------------------------------------------------------------------- registration


def test_register_lookup_and_lineage(client: Client, registrar: Actor) -> None:
    base = register(client, registrar, "model", "acme/base@1")
    assert base["created"] is True and base["artifact"]["ref"] == "acme/base@1"
    register(client, registrar, "dataset", "acme/numbers@1", [("generated_by", "acme/base@1")])
    ft = register(
        client,
        registrar,
        "model",
        "acme/student@1",
        [("fine_tuned_from", "acme/base@1"), ("trained_on", "acme/numbers@1")],
    )
    assert ft["edges_added"] == 2
    h = registrar.headers
    by_name = client.get("/v1/artifacts/acme/student@1", headers=h).json()
    by_digest = client.get(f"/v1/artifacts/sha256:{by_name['digest']}", headers=h).json()
    by_id = client.get(f"/v1/artifacts/{by_name['id']}", headers=h).json()
    assert by_name == by_digest == by_id
    assert by_name["digest"] == digest_of("acme/student@1")

    up = client.get("/v1/artifacts/acme/student@1/lineage?direction=up&depth=5", headers=h).json()
    refs = {n["artifact"]["ref"]: n["depth"] for n in up["nodes"]}
    assert refs == {"acme/student@1": 0, "acme/base@1": 1, "acme/numbers@1": 1}
    assert {(e["relation"]) for e in up["edges"]} == {
        "fine_tuned_from",
        "trained_on",
        "generated_by",
    }

    down = client.get("/v1/artifacts/acme/base@1/lineage?direction=down&depth=1", headers=h).json()
    assert {n["artifact"]["ref"] for n in down["nodes"]} == {
        "acme/base@1",
        "acme/numbers@1",
        "acme/student@1",
    }
    # The trained_on edge student -> numbers lies one hop further down.
    assert down["truncated"] is True and len(down["edges"]) == 2
    full = client.get("/v1/artifacts/acme/base@1/lineage?direction=down&depth=2", headers=h).json()
    assert full["truncated"] is False and len(full["edges"]) == 3


def test_lineage_depth_limit_and_truncation(client: Client, registrar: Actor) -> None:
    register(client, registrar, "model", "c/m@0")
    for i in range(1, 5):
        register(client, registrar, "model", f"c/m@{i}", [("fine_tuned_from", f"c/m@{i - 1}")])
    r = client.get("/v1/artifacts/c/m@4/lineage?depth=2", headers=registrar.headers).json()
    assert [n["artifact"]["ref"] for n in r["nodes"]] == ["c/m@4", "c/m@3", "c/m@2"]
    assert r["truncated"] is True
    for bad in ("depth=0", "depth=-1", "depth=x", "depth=1000", "direction=sideways"):
        resp = client.get(f"/v1/artifacts/c/m@4/lineage?{bad}", headers=registrar.headers)
        assert resp.status_code == 400, bad


def test_list_and_search_paginate(client: Client, registrar: Actor) -> None:
    for i in range(7):
        register(client, registrar, "model", f"hub/model-{i}@1")
    register(client, registrar, "dataset", "hub/data@1")
    h = registrar.headers
    page = client.get("/v1/artifacts?limit=3&offset=0", headers=h).json()
    assert page["count"] == 8 and len(page["data"]) == 3
    assert page["data"][0]["ref"] == "hub/data@1"  # newest first
    rest = client.get("/v1/artifacts?limit=10&offset=3", headers=h).json()
    assert len(rest["data"]) == 5
    models = client.get("/v1/artifacts?kind=model&q=model-", headers=h).json()
    assert models["count"] == 7
    assert client.get("/v1/artifacts?q=100%25_", headers=h).json()["count"] == 0
    assert client.get("/v1/artifacts?limit=0", headers=h).status_code == 400
    assert client.get("/v1/artifacts?kind=robot", headers=h).status_code == 400


def test_unknown_refs(client: Client, registrar: Actor) -> None:
    h = registrar.headers
    assert client.get("/v1/artifacts/acme/none@1", headers=h).status_code == 404
    assert client.get("/v1/artifacts/sha256:" + "a" * 64, headers=h).status_code == 404
    assert client.get("/v1/artifacts/999", headers=h).status_code == 404
    r = client.get("/v1/artifacts/sha256:xyz", headers=h)
    assert r.status_code == 400 and r.json()["field"] == "ref"
    assert client.get("/v1/artifacts/plainname", headers=h).status_code == 400


def test_resubmitting_the_same_envelope_is_idempotent(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    first = post_env(client, registrar, env)
    before = row_counts(engine)
    second = post_env(client, registrar, env)
    assert first.status_code == 201 and second.status_code == 200
    a, b = first.json(), second.json()
    assert b["created"] is False
    assert a["attestation_id"] == b["attestation_id"] and a["artifact"] == b["artifact"]
    assert row_counts(engine) == before


def test_stored_envelope_is_returned_verbatim(client: Client, registrar: Actor) -> None:
    env = registration_envelope(
        registrar.signer, "model", "acme/base@1", metadata={"arch": "llama"}
    )
    att = post_env(client, registrar, env).json()
    got = client.get(f"/v1/attestations/{att['attestation_id']}", headers=registrar.headers).json()
    assert got["envelope"] == env
    assert got["statement"]["predicate"]["artifact"]["metadata"] == {"arch": "llama"}
    assert client.get("/v1/attestations/12345", headers=registrar.headers).status_code == 404


def test_amending_lineage_adds_edges(client: Client, registrar: Actor) -> None:
    register(client, registrar, "model", "a/base@1")
    register(client, registrar, "dataset", "a/data@1")
    register(client, registrar, "model", "a/ft@1", [("fine_tuned_from", "a/base@1")])
    amended = register(
        client,
        registrar,
        "model",
        "a/ft@1",
        [("fine_tuned_from", "a/base@1"), ("trained_on", "a/data@1")],
    )
    assert amended["edges_added"] == 1
    up = client.get("/v1/artifacts/a/ft@1/lineage", headers=registrar.headers).json()
    assert len(up["edges"]) == 2


# ----------------------------------------------------------------------------- refusals


def _refused(
    client: Client,
    engine: Engine,
    actor: Actor,
    body: Any,
    status: int,
    needle: str,
    *,
    raw: bool = False,
) -> dict[str, Any]:
    before = row_counts(engine)
    if raw:
        r = client.post(
            "/v1/attestations",
            content=body,
            headers={**actor.headers, "Content-Type": "application/json"},
        )
    else:
        r = post_env(client, actor, body)
    assert r.status_code == status, r.text
    assert needle.lower() in r.text.lower(), r.text
    assert row_counts(engine) == before, "a refused submission wrote something"
    return r.json()


def test_malformed_json_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    _refused(client, engine, registrar, b'{"payload": ', 400, "", raw=True)


def test_envelope_shape_errors_name_the_field(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    good = registration_envelope(registrar.signer, "model", "acme/base@1")
    cases: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in good.items() if k != "payload"}, "payload"),
        ({**good, "payloadType": "text/plain"}, "payloadType"),
        ({**good, "payload": "%%%not-base64%%%"}, "base64"),
        ({**good, "signatures": []}, "signatures"),
        ({**good, "signatures": [{"keyid": registrar.signer.keyid, "sig": "@@@"}]}, "sig"),
    ]
    for body, needle in cases:
        _refused(client, engine, registrar, body, 400, needle)


def test_tampered_payload_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["artifact"]["name"] = "acme/evil"
    tampered = {**env, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    _refused(client, engine, registrar, tampered, 400, "does not verify")


def test_unknown_key_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    stranger = dsse.Signer(dsse.generate_private_key())
    env = registration_envelope(stranger, "model", "acme/base@1")
    body = _refused(client, engine, registrar, env, 403, "unknown key")
    assert body["field"] == "signatures"


def test_revoked_key_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    client.post(f"/v1/keys/{registrar.signer.keyid}/revoke", headers=registrar.headers)
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    _refused(client, engine, registrar, env, 403, "revoked")


def test_someone_elses_key_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    env = registration_envelope(other.signer, "model", "acme/base@1")
    _refused(client, engine, registrar, env, 403, "another principal")


def test_viewers_and_reviewers_cannot_register(client: Client, engine: Engine) -> None:
    reviewer = make_actor(client, engine, "rev", Role.REVIEWER)
    env = registration_envelope(reviewer.signer, "model", "acme/base@1")
    _refused(client, engine, reviewer, env, 403, "registrar")


def test_unknown_parent_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    env = registration_envelope(
        registrar.signer, "model", "acme/ft@1", [("fine_tuned_from", digest_of("ghost@1"))]
    )
    body = _refused(client, engine, registrar, env, 422, "unknown parent")
    assert body["field"] == "predicate.parents[0].digest"


@pytest.mark.parametrize(
    ("child_kind", "relation", "parent_kind"),
    [
        ("dataset", "fine_tuned_from", "model"),
        ("model", "generated_by", "model"),
        ("model", "trained_on", "model"),
        ("dataset", "derived_from", "model"),
    ],
)
def test_wrong_relation_for_kinds_is_refused(
    client: Client,
    engine: Engine,
    registrar: Actor,
    child_kind: str,
    relation: str,
    parent_kind: str,
) -> None:
    register(client, registrar, parent_kind, "p/parent@1")
    env = registration_envelope(
        registrar.signer, child_kind, "p/child@1", [(relation, digest_of("p/parent@1"))]
    )
    body = _refused(client, engine, registrar, env, 422, relation)
    assert body["field"] == "parents"


def test_cycle_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    register(client, registrar, "model", "c/a@1")
    register(client, registrar, "model", "c/b@1", [("fine_tuned_from", "c/a@1")])
    register(client, registrar, "model", "c/c@1", [("fine_tuned_from", "c/b@1")])
    env = registration_envelope(
        registrar.signer, "model", "c/a@1", [("initialized_from", digest_of("c/c@1"))]
    )
    body = _refused(client, engine, registrar, env, 422, "own ancestor")
    assert body["path"][0] == digest_of("c/a@1") and body["path"][-1] == digest_of("c/a@1")


def test_statement_errors_name_the_field(client: Client, engine: Engine, registrar: Actor) -> None:
    from lineage.statements import sign_statement

    base: dict[str, Any] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x@1", "digest": {"sha256": digest_of("x@1")}}],
        "predicateType": "https://studbook.dev/attestations/registration/v1",
        "predicate": {"artifact": {"kind": "model", "name": "x", "version": "1"}, "parents": []},
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "_type": "https://in-toto.io/Statement/v0.1"}, "_type"),
        ({**base, "predicateType": "https://example.com/other"}, "predicateType"),
        ({**base, "subject": []}, "subject"),
        ({**base, "subject": [{"name": "x", "digest": {"sha256": "abc"}}]}, "sha256"),
        (
            {**base, "predicate": {"artifact": {"kind": "robot", "name": "x", "version": "1"}}},
            "kind",
        ),
        (
            {**base, "predicate": {"artifact": {"kind": "model", "name": "", "version": "1"}}},
            "name",
        ),
        (
            {**base, "predicate": {"artifact": {"kind": "model", "name": "x", "version": "1/2"}}},
            "version",
        ),
        (
            {
                **base,
                "predicate": {
                    "artifact": {"kind": "model", "name": "x", "version": "1"},
                    "parents": [{"relation": "cousin_of", "digest": digest_of("y@1")}],
                },
            },
            "relation",
        ),
    ]
    for statement, needle in cases:
        env = sign_statement(statement, registrar.signer).to_json()
        _refused(client, engine, registrar, env, 400, needle)


def test_conflicting_registrations(client: Client, engine: Engine, registrar: Actor) -> None:
    register(client, registrar, "model", "acme/base@1")
    same_name = registration_envelope(
        registrar.signer, "model", "acme/base@1", digest=digest_of("other-bytes")
    )
    _refused(client, engine, registrar, same_name, 409, "another digest")
    same_digest = registration_envelope(
        registrar.signer, "dataset", "acme/renamed@1", digest=digest_of("acme/base@1")
    )
    _refused(client, engine, registrar, same_digest, 409, "already registered")


def test_oversized_body_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    env = registration_envelope(
        registrar.signer, "model", "acme/big@1", metadata={"blob": "x" * (2 << 20)}
    )
    before = row_counts(engine)
    r = post_env(client, registrar, env)
    assert r.status_code == 413
    assert row_counts(engine) == before


def test_web_page_is_served_without_a_token_and_holds_no_data(client: Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in r.headers
    # No inline code (CSP 'self'); the page's script draws from the API with the session cookie.
    assert '<script src="/static/app.js"' in r.text and "<script>" not in r.text
    assert "/report" in client.get("/static/app.js").text
