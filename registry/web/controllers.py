"""Serves the lineage page. It holds no data: the page calls the API with the user's token."""

from __future__ import annotations

from importlib.resources import files

from litestar import get
from litestar.response import Response

_PAGE = files(__package__).joinpath("index.html")


@get("/", sync_to_thread=False, include_in_schema=False)
def index() -> Response[bytes]:
    """The lineage viewer."""
    return Response(
        _PAGE.read_bytes(),
        media_type="text/html",  # Litestar appends "; charset=utf-8" itself
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; img-src 'self' data:",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
