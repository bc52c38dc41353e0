"""Paths and query strings: percent-decoded bytes must be UTF-8 without NUL, on every route.

A NUL in a name or a query reached PostgreSQL ("A string literal cannot contain NUL"), and
invalid UTF-8 decoded to replacement characters or surrogates depending on the layer: both
answered 500 or searched for something the client never sent. Now each is a 400 naming the
query parameter (or `path`), on both databases, with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from tests.support import row_counts

QUERIES = [
    ("GET", "/v1/artifacts", "q"),
    ("GET", "/v1/keys", "principal"),
    ("GET", "/v1/flags", "trait"),
    ("GET", "/v1/at-risk", "trait"),
    ("GET", "/v1/evals", "experiment"),
    ("GET", "/v1/log/proof/inclusion", "digest"),
    ("GET", "/v1/log/proof/inclusion", "payload_digest"),
    ("GET", "/v1/artifacts/seed/base@1/lineage", "direction"),
    ("GET", "/healthz", "anything"),
]
BAD_VALUES = [("%00", "NUL"), ("a%00b", "NUL"), ("%ED%A0%80", "UTF-8"), ("%FF%FE", "UTF-8")]

PATHS = [
    ("POST", "/v1/principals/{x}/tokens"),
    ("POST", "/v1/keys/{x}/revoke"),
    ("GET", "/v1/artifacts/{x}"),
    ("GET", "/v1/artifacts/{x}@1/lineage"),
]


@pytest.mark.parametrize(("method", "url", "param"), QUERIES)
def test_bad_bytes_in_query_values(
    client: TestClient[Any], engine: Engine, admin_token: str, method: str, url: str, param: str
) -> None:
    before = row_counts(engine)
    for value, what in BAD_VALUES:
        r = client.request(
            method, f"{url}?{param}={value}", headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert r.status_code == 400, (value, r.text)
        assert r.json()["field"] == param, (value, r.text)
        assert what in r.json()["detail"], (value, r.text)
    assert row_counts(engine) == before


def test_bad_bytes_in_a_query_name(client: TestClient[Any], admin_token: str) -> None:
    r = client.get("/v1/artifacts?q%00=x", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "q\\x00"


@pytest.mark.parametrize(("method", "url"), PATHS)
def test_bad_bytes_in_paths(
    client: TestClient[Any], engine: Engine, admin_token: str, method: str, url: str
) -> None:
    before = row_counts(engine)
    for value in ("%00", "a%00b", "%ED%A0%80", "%C0%AF"):
        r = client.request(
            method, url.format(x=value), headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert r.status_code == 400, (value, r.text)
        assert r.json()["field"] == "path", (value, r.text)
    assert row_counts(engine) == before


def test_public_routes_check_queries_too(client: TestClient[Any]) -> None:
    """Routes that need no token are no way around the check."""
    for url in ("/v1/log/checkpoint", "/v1/log", "/v1/log/proof/consistency"):
        r = client.get(f"{url}?from=0&x=%00")
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "x"


def test_plain_non_ascii_queries_still_search(client: TestClient[Any], admin_token: str) -> None:
    """Valid UTF-8 is not refused: a search for an accented name answers normally."""
    r = client.get(
        "/v1/artifacts",
        params={"q": "modèle-ü"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []


@pytest.mark.parametrize("url", ["/v1/artifacts", "/v1/review/artifacts"])
def test_search_text_is_data_not_pattern(
    client: TestClient[Any], admin_token: str, url: str
) -> None:
    """LIKE metacharacters and quotes in a search are matched literally on both databases
    (PostgreSQL refuses a pattern ending in its escape character with an error)."""
    for q in ("\\", "a\\", "%", "_", "%_\\%", "'", '"; --', "\u00e9\u0301"):
        r = client.get(url, params={"q": q}, headers={"Authorization": f"Bearer {admin_token}"})
        assert r.status_code == 200, (q, r.text)
        assert r.json()["data"] == [], q
