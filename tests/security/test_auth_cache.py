"""The per-process cache of authenticated callers (`registry.auth`): it must never answer a
token with another principal, never remember a refusal, and never let a revoked token work
longer than its documented bound."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from registry import auth
from registry.auth import Role, hash_token, new_token
from registry.models import ApiToken, Principal
from registry.models import utcnow as now
from registry.principals.service import create_principal


def _me(client: TestClient[Any], token: str) -> Any:
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


def _revoke(engine: Engine, token: str) -> None:
    """Revoke a token the way an operator would: in the database, behind the API's back."""
    with Session(engine) as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(token))  # type: ignore[arg-type]
            .values(revoked_at=now())
        )
        s.commit()


def test_each_token_answers_its_own_principal(client: TestClient[Any], engine: Engine) -> None:
    with Session(engine) as s:
        _, a = create_principal(s, "cache-a", Role.VIEWER)
    with Session(engine) as s:
        _, b = create_principal(s, "cache-b", Role.REVIEWER)
    for _ in range(3):  # cached after the first round
        ra, rb = _me(client, a), _me(client, b)
        assert (ra.status_code, ra.json()["name"], ra.json()["role"]) == (200, "cache-a", "viewer")
        assert (rb.status_code, rb.json()["name"], rb.json()["role"]) == (
            200,
            "cache-b",
            "reviewer",
        )
    # A token one character away from a cached one is another token: looked up, refused.
    near = a[:-1] + ("A" if a[-1] != "A" else "B")
    assert _me(client, near).status_code == 401
    # The same token with other spacing or scheme case is the same principal, never another.
    r = client.get("/v1/me", headers={"Authorization": f"bearer   {b} "})
    assert (r.status_code, r.json()["name"]) == (200, "cache-b")


def test_a_refusal_is_not_remembered(client: TestClient[Any], engine: Engine) -> None:
    token = new_token()
    assert _me(client, token).status_code == 401
    with Session(engine) as s:
        principal, _ = create_principal(s, "cache-late", Role.VIEWER)
        s.add(ApiToken(principal_id=principal.id, token_hash=hash_token(token)))
        s.commit()
    r = _me(client, token)  # valid now: answered at once, not from a cached refusal
    assert (r.status_code, r.json()["name"]) == (200, "cache-late")


def test_revocation_is_seen_at_once_after_forget(client: TestClient[Any], engine: Engine) -> None:
    with Session(engine) as s:
        principal, token = create_principal(s, "cache-revoked", Role.VIEWER)
        principal_id = principal.id
    with Session(engine) as s:
        _, other = create_principal(s, "cache-kept", Role.VIEWER)
    assert _me(client, token).status_code == 200
    assert _me(client, other).status_code == 200
    _revoke(engine, token)
    auth.forget(principal_id)
    r = _me(client, token)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    assert _me(client, other).status_code == 200  # forgetting one principal keeps the others


def test_revoked_token_stops_within_the_bound(
    client: TestClient[Any], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as s:
        _, token = create_principal(s, "cache-expiring", Role.VIEWER)
    assert _me(client, token).status_code == 200
    _revoke(engine, token)  # no `forget`: another process revoked it
    clock = auth.time.monotonic() + auth.CACHE_TTL_S + 0.001
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock)
    assert _me(client, token).status_code == 401


def test_a_principal_whose_tokens_are_all_gone_is_refused(
    client: TestClient[Any], engine: Engine
) -> None:
    with Session(engine) as s:
        principal, token = create_principal(s, "cache-deleted", Role.VIEWER)
        principal_id = principal.id
    assert _me(client, token).status_code == 200
    with Session(engine) as s:
        s.execute(update(ApiToken).values(revoked_at=now()))
        s.commit()
    auth.forget()
    assert _me(client, token).status_code == 401
    with Session(engine) as s:
        assert s.get(Principal, principal_id) is not None  # the principal stays; its token not
