"""Attacks on browser sessions: forged or missing CSRF tokens, cross-site requests, expired and
signed-out sessions, the cookie of a revoked token, a viewer trying to decide, odd bytes in the
cookie and the sign-in body. Each refusal is checked to have written nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from registry.auth import Role
from registry.models import ApiToken, WebSession, utcnow
from registry.principals.service import create_principal
from tests.support import Actor, digest_of, register, review_envelope, row_counts

Client = TestClient[Any]
ORIGIN = "http://testserver.local"


def sign_in(client: Client, token: str) -> dict[str, Any]:
    r = client.post("/v1/session", json={"token": token})
    assert r.status_code == 201, r.text
    return r.json()


def sessions(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one()


def seeded(client: Client, registrar: Actor) -> str:
    """A teacher, its data and a student: something to flag."""
    register(client, registrar, "model", "sec/base@1")
    return digest_of("sec/base@1")


def test_sign_in_sets_strict_httponly_cookies_and_no_token(client: Client, reviewer: Actor) -> None:
    r = client.post("/v1/session", json={"token": reviewer.token})
    assert r.status_code == 201, r.text
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("studbook_session=")).lower()
    csrf = next(c for c in cookies if c.startswith("studbook_csrf=")).lower()
    assert "httponly" in session and "samesite=strict" in session and "max-age=" in session
    assert "httponly" not in csrf and "samesite=strict" in csrf
    assert "secure" not in session  # plain http here; https sets Secure (next test)
    assert reviewer.token not in " ".join(cookies)
    body = r.json()
    assert body["principal"] == "reviewer" and body["can_decide"] is True
    assert body["csrf_token"] == client.cookies.get("studbook_csrf")
    me = client.get("/v1/session").json()
    assert me["principal"] == "reviewer" and me["expires_at"] is not None


def test_cookie_is_secure_over_https(engine: Engine, settings: Any, reviewer: Actor) -> None:
    from registry.app import create_app

    with TestClient(create_app(settings, engine=engine), base_url="https://studbook.test") as c:
        r = c.post("/v1/session", json={"token": reviewer.token})
        assert r.status_code == 201, r.text
        assert all("secure" in v.lower() for v in r.headers.get_list("set-cookie"))


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        ({"token": "sbk_nope"}, {}, 401, "token"),
        ({"token": ""}, {}, 400, "token"),
        ({"token": "x" * 201}, {}, 400, "token"),
        ({"token": "sbk_\u00e9\u202e"}, {}, 400, "token"),
        ({}, {}, 400, "token"),
        ({"token": ["a"]}, {}, 400, "token"),
    ],
)
def test_bad_sign_ins_write_nothing(
    client: Client,
    engine: Engine,
    reviewer: Actor,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    before = row_counts(engine)
    r = client.post("/v1/session", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json().get("field") == field
    assert "set-cookie" not in r.headers
    assert row_counts(engine) == before


def test_sign_in_refuses_forms_and_other_sites(
    client: Client, engine: Engine, reviewer: Actor
) -> None:
    # A cross-site form can post text/plain without a preflight: refused.
    r = client.post(
        "/v1/session",
        content=f'{{"token": "{reviewer.token}"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 400 and r.json()["field"] == "Content-Type"
    r = client.post(
        "/v1/session", json={"token": reviewer.token}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and r.json()["field"] == "Origin"
    r = client.post(
        "/v1/session", json={"token": reviewer.token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    assert sessions(engine) == 0


def test_state_changes_need_the_sessions_csrf_token(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    digest = seeded(client, registrar)
    sign_in(client, reviewer.token)
    csrf = client.cookies.get("studbook_csrf")
    flag = review_envelope(reviewer.signer, digest, "owl")
    before = row_counts(engine)
    # Missing, wrong, and another session's token: refused, nothing written.
    r = client.post("/v1/attestations", json=flag)
    assert r.status_code == 403 and r.json()["field"] == "X-CSRF-Token"
    r = client.post("/v1/attestations", json=flag, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403 and r.json()["field"] == "X-CSRF-Token"
    other = TestClient(client.app)
    with other:
        other_csrf = sign_in(other, reviewer.token)["csrf_token"]
    r = client.post("/v1/attestations", json=flag, headers={"X-CSRF-Token": other_csrf})
    assert r.status_code == 403
    # A cookie planted to match a forged header does not help: the session stores its hash.
    client.cookies.set("studbook_csrf", "planted")
    r = client.post("/v1/attestations", json=flag, headers={"X-CSRF-Token": "planted"})
    assert r.status_code == 403
    client.cookies.set("studbook_csrf", csrf)
    # From another origin, even with the right token.
    r = client.post(
        "/v1/attestations",
        json=flag,
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and r.json()["field"] == "Origin"
    r = client.delete("/v1/session")  # sign-out is a state change too
    assert r.status_code == 403
    after = row_counts(engine)
    after.pop("web_sessions"), before.pop("web_sessions")
    assert after == before
    # With it, the same envelope goes through, in the reviewer's name.
    r = client.post("/v1/attestations", json=flag, headers={"X-CSRF-Token": csrf, "Origin": ORIGIN})
    assert r.status_code == 201, r.text
    assert r.json()["principal"] == "reviewer"


def test_bearer_calls_are_unaffected(client: Client, registrar: Actor, reviewer: Actor) -> None:
    digest = seeded(client, registrar)
    r = client.post(
        "/v1/attestations",
        json=review_envelope(reviewer.signer, digest, "owl"),
        headers=reviewer.headers,
    )
    assert r.status_code == 201, r.text


def test_expired_session_is_refused(client: Client, engine: Engine, reviewer: Actor) -> None:
    sign_in(client, reviewer.token)
    assert client.get("/v1/review/queue").status_code == 200
    with Session(engine) as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    r = client.get("/v1/review/queue")
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_revoked_token_ends_its_sessions(client: Client, engine: Engine, reviewer: Actor) -> None:
    sign_in(client, reviewer.token)
    assert client.get("/v1/session").status_code == 200
    with Session(engine) as s:
        s.execute(update(ApiToken).values(revoked_at=utcnow()))
        s.commit()
    assert client.get("/v1/session").status_code == 401
    assert client.get("/v1/review/queue").status_code == 401
    # ...and a revoked token cannot open a new one.
    assert client.post("/v1/session", json={"token": reviewer.token}).status_code == 401


def test_role_is_read_at_each_request(client: Client, engine: Engine, reviewer: Actor) -> None:
    sign_in(client, reviewer.token)
    with Session(engine) as s:
        s.execute(text("UPDATE principals SET role = 'viewer' WHERE name = 'reviewer'"))
        s.commit()
    me = client.get("/v1/session").json()
    assert me["role"] == "viewer" and me["can_decide"] is False


def test_viewer_cannot_decide_through_the_page(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    digest = seeded(client, registrar)
    with Session(engine) as s:
        _, token = create_principal(s, "vic", Role.VIEWER)
    me = sign_in(client, token)
    assert me["can_decide"] is False and me["can_queue_evals"] is False
    csrf = client.cookies.get("studbook_csrf")
    before = row_counts(engine)
    from lineage import dsse

    signer = dsse.Signer(dsse.generate_private_key())
    r = client.post(
        "/v1/attestations",
        json=review_envelope(signer, digest, "owl"),
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code in (403, 400, 422), r.text
    r = client.post(
        "/v1/evals",
        json={"experiment": "digits", "preset": "smoke"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 403, r.text
    assert row_counts(engine) == before


def test_sign_out_ends_the_session(client: Client, engine: Engine, reviewer: Actor) -> None:
    sign_in(client, reviewer.token)
    secret = client.cookies.get("studbook_session")
    csrf = client.cookies.get("studbook_csrf")
    r = client.delete("/v1/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json() == {"ended": True}
    assert sessions(engine) == 0
    # Replaying the old cookie after sign-out: refused.
    client.cookies.set("studbook_session", secret)
    assert client.get("/v1/session").status_code == 401


@pytest.mark.parametrize("cookie", ["", "x" * 5000, "%C3%A9t%C3%A9", "a;b", "%00", "\\x00"])
def test_odd_cookies_are_401_not_500(client: Client, reviewer: Actor, cookie: str) -> None:
    client.cookies.set("studbook_session", cookie)
    r = client.get("/v1/review/queue")
    assert r.status_code == 401, r.text


def test_no_cookie_no_token_is_401(client: Client) -> None:
    for path in ("/v1/session", "/v1/review/queue", "/v1/review/artifacts"):
        assert client.get(path).status_code == 401
