"""HTTP routes of browser sessions: sign in, who am I, sign out."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.status_codes import HTTP_201_CREATED
from sqlmodel import Session

from ..auth import Caller, Role
from ..errors import BadRequestError
from . import service
from .schemas import SessionCreate, SessionPublic


def _public(caller: Caller, **kw: Any) -> SessionPublic:
    decide = caller.role in (Role.ADMIN, Role.REVIEWER)
    return SessionPublic(
        principal=caller.name,
        role=caller.role.value,
        can_decide=decide,
        can_queue_evals=decide or caller.role is Role.REGISTRAR,
        **kw,
    )


def _cookies(request: Request[Any, Any, Any], secret: str, csrf: str, max_age: int) -> list[Cookie]:
    secure = request.url.scheme == "https"
    common: dict[str, Any] = {"path": "/", "samesite": "strict", "secure": secure}
    return [
        Cookie(key=service.SESSION_COOKIE, value=secret, httponly=True, max_age=max_age, **common),
        # Script-readable on purpose: the page echoes it in X-CSRF-Token (double submit).
        Cookie(key=service.CSRF_COOKIE, value=csrf, httponly=False, max_age=max_age, **common),
    ]


class SessionController(Controller):
    """Exchange a token for a session cookie; sign out."""

    path = "/v1/session"
    tags = ["session"]

    @post(
        "/",
        sync_to_thread=True,
        status_code=HTTP_201_CREATED,
        summary="Sign in: exchange an API token for a session cookie",
        description="Sets `studbook_session` (HttpOnly, SameSite=Strict, Secure over https) and "
        "`studbook_csrf`. The body must be JSON. Browsers only: API clients keep using "
        "`Authorization: Bearer`.",
    )
    def sign_in(
        self, data: SessionCreate, request: Request[Any, Any, Any], db_session: Session
    ) -> Response[SessionPublic]:
        # A JSON content type cannot be sent cross-site without a CORS preflight, which this
        # server never grants: no other site can sign a browser in under its own token.
        if (request.headers.get("content-type") or "").split(";")[0].strip() != "application/json":
            raise BadRequestError("sign-in takes an application/json body", field="Content-Type")
        url = request.url
        service.check_same_origin(
            request.headers.get("origin"),
            request.headers.get("sec-fetch-site"),
            f"{url.scheme}://{url.netloc}",
        )
        ttl = request.app.state.settings.web_session_ttl_s
        opened = service.open_session(db_session, data.token, ttl)
        body = _public(opened.caller, expires_at=opened.expires_at, csrf_token=opened.csrf)
        return Response(
            body,
            status_code=HTTP_201_CREATED,
            cookies=_cookies(request, opened.secret, opened.csrf, ttl),
        )

    @get("/", sync_to_thread=True, summary="The signed-in principal and the session's expiry")
    def show(
        self, request: Request[Any, Any, Any], db_session: Session, caller: Caller
    ) -> SessionPublic:
        secret = (
            None
            if request.headers.get("authorization")
            else request.cookies.get(service.SESSION_COOKIE)
        )
        return _public(caller, expires_at=service.expiry_of(db_session, secret))

    @delete(
        "/",
        sync_to_thread=True,
        status_code=200,
        summary="Sign out: end the session and clear its cookies",
    )
    def sign_out(
        self, request: Request[Any, Any, Any], db_session: Session, caller: Caller
    ) -> Response[dict[str, bool]]:
        secret = (
            None
            if request.headers.get("authorization")
            else request.cookies.get(service.SESSION_COOKIE)
        )
        ended = service.close_session(db_session, secret)
        return Response({"ended": ended}, cookies=_cookies(request, "", "", 0))
