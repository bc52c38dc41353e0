"""Browser sessions: an API token exchanged for an HttpOnly, SameSite=Strict cookie.

Why a cookie and not the token in the page: a token in `localStorage` is readable by any script
that runs in the origin, and a reviewer's token is what decides what the registry believes. The
session secret lives in an HttpOnly cookie no script can read, and it is worth less than the
token: it expires, it dies with the token it was opened with (revoking the token or deleting the
principal ends every session at the next request; nothing is cached), and sign-out deletes it.

CSRF: the cookie is SameSite=Strict, so no other site's page makes the browser send it; on top of
that every state-changing request authenticated by the cookie must carry the session's CSRF token
in `X-CSRF-Token` (double submit: the same value is in a script-readable cookie, and its hash is
stored with the session, so a value planted in the cookie by someone else does not match), and a
request whose `Origin` or `Sec-Fetch-Site` says it came from another site is refused. Requests
with `Authorization: Bearer` never use the cookie, so API clients are unaffected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from ..auth import Caller, Role, hash_token
from ..errors import AuthenticationError, BadRequestError, PermissionDeniedError
from ..models import ApiToken, Principal, WebSession, utcnow

SESSION_COOKIE = "studbook_session"
CSRF_COOKIE = "studbook_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_CHARS = 200
MAX_SECRET_CHARS = 100

_S = WebSession.__table__  # type: ignore[attr-defined]
_T = ApiToken.__table__  # type: ignore[attr-defined]
_P = Principal.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session: the secrets go to the browser once, only their hashes are kept."""

    secret: str
    csrf: str
    caller: Caller
    expires_at: datetime


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def open_session(session: Session, token: str, ttl_s: int) -> Opened:
    """Exchange an API token for a session that ends after `ttl_s` seconds.

    Raises:
        BadRequestError: the token is not text of a sane length.
        AuthenticationError: unknown or revoked token.
    """
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise BadRequestError(
            f"token must be an API token (ASCII, at most {MAX_TOKEN_CHARS} characters)",
            field="token",
        )
    row = session.execute(
        select(_T.c.id, _P.c.id.label("pid"), _P.c.name, _P.c.role)
        .join(_P, _P.c.id == _T.c.principal_id)
        .where(_T.c.token_hash == hash_token(token), _T.c.revoked_at.is_(None))
    ).first()
    if row is None:
        raise AuthenticationError("unknown or revoked API token", field="token")
    now = utcnow()
    opened = Opened(
        secret=secrets.token_urlsafe(32),
        csrf=secrets.token_urlsafe(32),
        caller=Caller(id=row.pid, name=row.name, role=Role(row.role)),
        expires_at=now + timedelta(seconds=ttl_s),
    )
    # Expired sessions are of no use to anyone; sign-ins sweep them so the table stays small.
    session.execute(delete(_S).where(_S.c.expires_at <= now))
    session.execute(
        insert(_S).values(
            id_hash=_hash(opened.secret),
            csrf_hash=_hash(opened.csrf),
            principal_id=row.pid,
            token_id=row.id,
            created_at=now,
            expires_at=opened.expires_at,
        )
    )
    session.commit()
    return opened


@dataclass(frozen=True, slots=True)
class CookieRequest:
    """What of a request decides a cookie's authority."""

    secret: str
    method: str
    csrf_header: str | None
    csrf_cookie: str | None
    origin: str | None
    fetch_site: str | None
    own_origin: str


def check_same_origin(origin: str | None, fetch_site: str | None, own_origin: str) -> None:
    """Refuse a request a browser says came from another site.

    Raises:
        PermissionDeniedError: `Origin` is another origin, or `Sec-Fetch-Site` is cross-site.
    """
    if fetch_site is not None and fetch_site.lower() == "cross-site":
        raise PermissionDeniedError(
            "cross-site request refused (Sec-Fetch-Site: cross-site)", field="Sec-Fetch-Site"
        )
    if origin is not None and origin.rstrip("/").lower() != own_origin.rstrip("/").lower():
        raise PermissionDeniedError(
            f"request from origin {origin!r} refused: sessions are used from {own_origin} only",
            field="Origin",
        )


def caller_for_cookie(session: Session, req: CookieRequest) -> tuple[Caller, datetime]:
    """The caller behind a session cookie, with the session's expiry.

    Raises:
        AuthenticationError: unknown, expired or signed-out session, or its token revoked.
        PermissionDeniedError: a state-changing request without the session's CSRF token, or
            from another site.
    """
    if not req.secret or len(req.secret) > MAX_SECRET_CHARS or not req.secret.isascii():
        raise AuthenticationError("malformed session cookie; sign in again", field=SESSION_COOKIE)
    row = session.execute(
        select(_S.c.csrf_hash, _S.c.expires_at, _P.c.id, _P.c.name, _P.c.role)
        .join(_P, _P.c.id == _S.c.principal_id)
        .join(_T, _T.c.id == _S.c.token_id)
        .where(_S.c.id_hash == _hash(req.secret), _T.c.revoked_at.is_(None))
    ).first()
    if row is None:
        raise AuthenticationError("unknown or ended session; sign in again", field=SESSION_COOKIE)
    expires = (
        row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=utcnow().tzinfo)
    )
    if expires <= utcnow():
        raise AuthenticationError("the session has expired; sign in again", field=SESSION_COOKIE)
    if req.method.upper() not in SAFE_METHODS:
        check_same_origin(req.origin, req.fetch_site, req.own_origin)
        header = req.csrf_header or ""
        if not header:
            raise PermissionDeniedError(
                "a request signed in by cookie must carry the session's CSRF token in X-CSRF-Token",
                field="X-CSRF-Token",
            )
        if (
            len(header) > MAX_SECRET_CHARS
            or not header.isascii()
            or not hmac.compare_digest(header, req.csrf_cookie or "")
            or not hmac.compare_digest(_hash(header), row.csrf_hash)
        ):
            raise PermissionDeniedError(
                "X-CSRF-Token does not match this session's CSRF token", field="X-CSRF-Token"
            )
    return Caller(id=row.id, name=row.name, role=Role(row.role)), expires


def close_session(session: Session, secret: str | None) -> bool:
    """Sign out: delete the session behind `secret`. True if there was one."""
    if not secret or len(secret) > MAX_SECRET_CHARS or not secret.isascii():
        return False
    gone = session.execute(delete(_S).where(_S.c.id_hash == _hash(secret))).rowcount
    session.commit()
    return bool(gone)


def expiry_of(session: Session, secret: str | None) -> datetime | None:
    """When the session behind `secret` ends (None: no such session)."""
    if not secret or len(secret) > MAX_SECRET_CHARS or not secret.isascii():
        return None
    return session.scalar(select(_S.c.expires_at).where(_S.c.id_hash == _hash(secret)))
