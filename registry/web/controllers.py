"""Serves the review workspace: one page, its scripts and styles, and the vendored libraries.

The page holds no data and no secret: it calls the API with the session cookie (HttpOnly, so no
script reads it) and the CSRF token. Everything it loads comes from this server, under a
Content-Security-Policy of `'self'` with no inline script or style, so the workspace works
offline and an injected string cannot run as code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.static_files import create_static_files_router

_HERE = Path(__file__).parent
_PAGE = _HERE / "index.html"

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@get(["/", "/app"], sync_to_thread=False, include_in_schema=False)
def index() -> Response[bytes]:
    """The review workspace (a single page; its views live in the URL fragment)."""
    return Response(
        _PAGE.read_bytes(),
        media_type="text/html",  # Litestar appends "; charset=utf-8" itself
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store", **SECURITY_HEADERS},
    )


def security_headers(response: Response[Any]) -> Response[Any]:
    """`after_request` hook: every HTML answer (the docs pages too) gets the `'self'` policy, and
    every answer `nosniff`."""
    headers = response.headers
    media = str(getattr(response, "media_type", None) or headers.get("content-type") or "")
    if media.startswith("text/html") and "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = CSP
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def routers() -> list[Any]:
    """The page and its files: `/static` (Studbook's own) and `/vendor` (third-party, with
    their licences; `vendor/update.sh` refreshes them)."""
    return [
        index,
        create_static_files_router(
            path="/static", directories=[_HERE / "static"], include_in_schema=False
        ),
        create_static_files_router(
            path="/vendor", directories=[_HERE / "vendor"], include_in_schema=False
        ),
    ]
