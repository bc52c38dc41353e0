"""Request bodies: depth, encoding, Unicode and integer range, on every route that takes one.

Each attack used to reach the decoder, the database or the response encoder and answer 500
(RecursionError at 10,000 levels, UnicodeDecodeError, a surrogate PostgreSQL cannot store or
JSON cannot encode back, a NUL PostgreSQL refuses, an integer overflowing a column). Each must
now be a 400 naming the field at fault, with nothing written.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from tests.support import row_counts

BODY_ROUTES = [
    "/v1/principals",
    "/v1/keys",
    "/v1/attestations",
    "/v1/attestations/batch",
    "/v1/evals",
    "/v1/checks/fine-tune",
    "/v1/checks/shared-base",
]

# A valid-looking body per route, and the string fields in it an attacker controls.
VALID: dict[str, dict[str, Any]] = {
    "/v1/principals": {"name": "someone", "role": "viewer"},
    "/v1/keys": {"public_key": "A" * 43 + "=", "principal": "someone"},
    "/v1/attestations": {
        "payloadType": "application/vnd.in-toto+json",
        "payload": "e30=",
        "signatures": [{"keyid": "k", "sig": "c2ln"}],
    },
    "/v1/evals": {"experiment": "digits", "preset": "smoke", "trait": "owl"},
    "/v1/checks/fine-tune": {"base": "seed/base@1", "datasets": ["seed/data@1"]},
    "/v1/attestations/batch": {
        "envelopes": [
            {
                "payloadType": "application/vnd.in-toto+json",
                "payload": "e30=",
                "signatures": [{"keyid": "k", "sig": "c2ln"}],
            }
        ]
    },
    "/v1/checks/shared-base": {"a": "seed/base@1", "b": "seed/data@1"},
}
FIELDS = [
    ("/v1/principals", ["name"]),
    ("/v1/keys", ["public_key"]),
    ("/v1/keys", ["principal"]),
    ("/v1/attestations", ["payloadType"]),
    ("/v1/attestations", ["payload"]),
    ("/v1/attestations", ["signatures", 0, "keyid"]),
    ("/v1/attestations", ["signatures", 0, "sig"]),
    ("/v1/evals", ["preset"]),
    ("/v1/evals", ["experiment"]),
    ("/v1/evals", ["trait"]),
    ("/v1/checks/fine-tune", ["base"]),
    ("/v1/checks/fine-tune", ["datasets", 0]),
]


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _field_name(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _with(body: dict[str, Any], path: list[str | int], value: str) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


def _refused(
    client: TestClient[Any], engine: Engine, token: str, url: str, raw: bytes, field: str
) -> dict[str, Any]:
    before = row_counts(engine)
    r = client.post(url, content=raw, headers=_headers(token))
    assert r.status_code == 400, (url, raw[:80], r.text)
    answer = r.json()
    assert answer["field"] == field, (url, raw[:80], answer)
    assert row_counts(engine) == before
    return answer


@pytest.mark.parametrize("url", BODY_ROUTES)
@pytest.mark.parametrize("body", [b"[1, 2]", b"7", b'"text"', b"null"])
def test_a_body_of_the_wrong_shape_is_named_body(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str, body: bytes
) -> None:
    _refused(client, engine, admin_token, url, body, "body")


@pytest.mark.parametrize("url", BODY_ROUTES)
def test_ten_thousand_levels_deep(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str
) -> None:
    raw = b"[" * 10_000 + b"]" * 10_000
    answer = _refused(client, engine, admin_token, url, raw, "body")
    assert "64 levels" in answer["detail"]
    raw = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    _refused(client, engine, admin_token, url, raw, "body")


@pytest.mark.parametrize("url", BODY_ROUTES)
def test_sixty_five_levels_are_refused_at_their_path(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str
) -> None:
    """Below the decoder's own limit, the boundary's limit names where the nesting went too far."""
    deep: Any = 1
    for _ in range(65):
        deep = {"x": deep}
    body = {**VALID[url], "extra": deep}
    answer = _refused(
        client, engine, admin_token, url, json.dumps(body).encode(), "extra" + ".x" * 63
    )
    assert "deeper than 64" in answer["detail"]


@pytest.mark.parametrize("url", BODY_ROUTES)
def test_bodies_that_are_not_utf8(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str
) -> None:
    for raw in (b'{"name": "\xff\xfe"}', b"\xc3\x28", b'"\xed\xa0\x80"', b"\x00\x00\x00{"):
        answer = _refused(client, engine, admin_token, url, raw, "body")
        assert "UTF-8" in answer["detail"] or "JSON" in answer["detail"], (raw, answer)


@pytest.mark.parametrize(("url", "path"), FIELDS)
def test_surrogates_and_nul_in_fields(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str, path: list[str | int]
) -> None:
    marker = "\u2603MARK\u2603"
    body = json.dumps(_with(VALID[url], path, f"x{marker}y"), ensure_ascii=False)
    for escape, what in (("\\ud800", "surrogate"), ("\\udfff", "surrogate"), ("\\u0000", "NUL")):
        raw = body.replace(marker, escape).encode()
        answer = _refused(client, engine, admin_token, url, raw, _field_name(path))
        assert what in answer["detail"], (escape, answer)


@pytest.mark.parametrize("url", BODY_ROUTES)
def test_surrogate_in_a_key_is_named_printably(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str
) -> None:
    """The answer names the key, escaped, so that the answer itself can be encoded."""
    raw = json.dumps(VALID[url])[:-1].encode() + b', "bad\\udc00key": 1}'
    answer = _refused(client, engine, admin_token, url, raw, "bad\\udc00key")
    assert "surrogate" in answer["detail"]


@pytest.mark.parametrize("url", BODY_ROUTES)
def test_integers_beyond_64_bits(
    client: TestClient[Any], engine: Engine, admin_token: str, url: str
) -> None:
    for number in (str(2**63), str(-(2**63) - 1), str(2**64), "1" + "0" * 400, "1e400", "-1e400"):
        raw = json.dumps(VALID[url])[:-1].encode() + b', "n": ' + number.encode() + b"}"
        answer = _refused(client, engine, admin_token, url, raw, "n")
        assert "range" in answer["detail"], (number, answer)


def test_eval_overrides_name_their_field(
    client: TestClient[Any], engine: Engine, admin_token: str
) -> None:
    body = {"experiment": "digits", "preset": "smoke", "overrides": {"seeds": 2**63}}
    _refused(client, engine, admin_token, "/v1/evals", json.dumps(body).encode(), "overrides.seeds")
    body = {"experiment": "digits", "preset": "smoke", "overrides": {"s\u0000": 1}}
    _refused(
        client, engine, admin_token, "/v1/evals", json.dumps(body).encode(), "overrides.s\\x00"
    )


def test_a_clean_body_still_works(client: TestClient[Any], admin_token: str) -> None:
    """The boundary refuses the odd, not the ordinary: non-ASCII names within the rules pass."""
    r = client.post(
        "/v1/principals",
        content=json.dumps({"name": "pipeline-01", "role": "viewer"}).encode(),
        headers=_headers(admin_token),
    )
    assert r.status_code == 201, r.text
    r = client.get("/v1/principals", headers=_headers(admin_token))
    assert "pipeline-01" in {p["name"] for p in r.json()["data"]}


def test_bodies_over_the_limit_are_413_with_nothing_written(
    client: TestClient[Any], engine: Engine, admin_token: str
) -> None:
    """The configured limit (1 MiB by default) holds on every route that reads a body."""
    before = row_counts(engine)
    raw = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
    # The batch route has its own, larger limit (16 MiB; tests/security/test_batch_attacks.py).
    for url in (u for u in BODY_ROUTES if u != "/v1/attestations/batch"):
        r = client.post(url, content=raw, headers=_headers(admin_token))
        assert r.status_code == 413, (url, r.text[:200])
        assert r.json()["status_code"] == 413
    assert row_counts(engine) == before
