"""A small HTTP client for the Studbook API, used by the CLI and by scripts.

Errors from the server come back as `ApiError` carrying the status and the server's message, so
the CLI can print exactly what was wrong; an unreachable server is status 0.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class ApiError(Exception):
    """The server refused a request."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body


class Client:
    """Thin wrapper over httpx with the bearer token set."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    @property
    def base_url(self) -> str:
        """The server this client talks to."""
        return str(self._http.base_url)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Send a request and return the decoded JSON body, or raise `ApiError`."""
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self._http.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
                detail = body.get("detail", resp.text)
                if body.get("field"):
                    detail = f"{detail} (field: {body['field']})"
            except ValueError:
                body, detail = None, resp.text
            raise ApiError(resp.status_code, str(detail), body)
        if not resp.content:
            return None
        ctype = resp.headers.get("content-type", "")
        return resp.json() if "json" in ctype else resp.content

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values dropped)."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, json: Any = None) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, json=json)

    def delete(self, path: str) -> Any:
        """DELETE a resource."""
        return self.request("DELETE", path)

    def artifact(self, ref: str, view: str | None = None, **params: Any) -> Any:
        """GET /v1/artifacts/<ref>[/<view>]."""
        path = "/v1/artifacts/" + quote(ref.strip(), safe="/@:")
        if view:
            path += "/" + view
        return self.get(path, **params)
