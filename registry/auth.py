"""Bearer-token authentication and roles.

A token is 32 random bytes, shown once; only its sha256 is stored. Roles are a closed set; what
each may do is decided here, by `require`, so controllers declare intent in one line.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio.to_thread
from litestar import Request
from sqlalchemy import select
from sqlmodel import Session

from .errors import AuthenticationError, PermissionDeniedError
from .models import ApiToken, Principal

TOKEN_PREFIX = "sbk_"


class Role(StrEnum):
    """What a principal may do."""

    ADMIN = "admin"
    REGISTRAR = "registrar"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of a request."""

    id: int
    name: str
    role: Role


def new_token() -> str:
    """A fresh API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(session: Session, authorization: str | None) -> Caller:
    """Resolve an `Authorization: Bearer <token>` header to its principal.

    Raises:
        AuthenticationError: no header, a malformed header, or an unknown or revoked token.
    """
    if not authorization:
        raise AuthenticationError("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be 'Bearer <token>'")
    row = session.execute(
        select(Principal.id, Principal.name, Principal.role)
        .join(ApiToken, ApiToken.principal_id == Principal.id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == hash_token(token.strip()))  # type: ignore[arg-type]
        .where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None:
        raise AuthenticationError("unknown or revoked API token")
    return Caller(id=row.id, name=row.name, role=Role(row.role))


def require(caller: Caller, *roles: Role) -> Caller:
    """Allow `caller` if its role is one of `roles`; admins are always allowed.

    Raises:
        PermissionDeniedError: naming the roles that may do this.
    """
    if caller.role is Role.ADMIN or caller.role in roles:
        return caller
    allowed = ", ".join(dict.fromkeys(r.value for r in (Role.ADMIN, *roles)))  # each role once
    raise PermissionDeniedError(
        f"principal {caller.name!r} has role {caller.role.value!r}; this needs one of: {allowed}"
    )


# sha256 of the Authorization header -> (caller, expiry). It saves a query and a thread hop on
# every request. Only successful answers are kept, under the hash of the exact header, so a
# token is only ever answered with the principal its own lookup found, and an unknown token is
# looked up again every time. A token's principal and role cannot change through the API; a
# token revoked in the database by other means (an operator's UPDATE, another replica) keeps
# working for at most CACHE_TTL_S seconds in a process that cached it; `forget` ends that at
# once in this process.
_CACHE: dict[str, tuple[Caller, float]] = {}
CACHE_TTL_S = 10.0
_CACHE_MAX = 4096


def forget(principal_id: int | None = None) -> None:
    """Drop the cached callers of `principal_id` (every cached caller when None), so the next
    request with their tokens is checked against the database again."""
    if principal_id is None:
        _CACHE.clear()
        return
    for key in [k for k, (c, _) in _CACHE.items() if c.id == principal_id]:
        _CACHE.pop(key, None)


def _authenticate_fresh(engine: Any, authorization: str | None) -> Caller:
    # Its own short session, so the handler's session starts clean and a writer can take the
    # write lock at its first statement.
    with Session(engine) as session:
        return authenticate(session, authorization)


def _cookie_caller(engine: Any, req: Any) -> Caller:
    from .sessions.service import caller_for_cookie

    with Session(engine) as session:
        return caller_for_cookie(session, req)[0]


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """Litestar dependency: the authenticated caller (cached for a few seconds per token).

    Without an `Authorization` header, a browser's session cookie is accepted instead (see
    `registry.sessions`): never cached, so signing out or revoking the token it was opened with
    takes effect at once, and CSRF-checked on every state-changing request.
    """
    authorization = request.headers.get("authorization")
    if authorization is None:
        from .sessions.service import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, CookieRequest

        secret = request.cookies.get(SESSION_COOKIE)
        if secret is not None:
            url = request.url
            req = CookieRequest(
                secret=secret,
                method=request.method,
                csrf_header=request.headers.get(CSRF_HEADER),
                csrf_cookie=request.cookies.get(CSRF_COOKIE),
                origin=request.headers.get("origin"),
                fetch_site=request.headers.get("sec-fetch-site"),
                own_origin=f"{url.scheme}://{url.netloc}",
            )
            return await anyio.to_thread.run_sync(_cookie_caller, request.app.state.engine, req)
    key = hash_token(authorization or "")
    hit = _CACHE.get(key)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    caller = await anyio.to_thread.run_sync(
        _authenticate_fresh, request.app.state.engine, authorization
    )
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (caller, now + CACHE_TTL_S)
    return caller
