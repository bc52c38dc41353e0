"""The OpenAPI document tells the truth: security per route, every error, 405 with `Allow`.

The document is held to the running app, not to a list in the test: every operation it lists
is called without a token, and answers 401 exactly when the document says it needs one.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support import Actor, registration_envelope

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/v1/log"),
    ("GET", "/v1/log/checkpoint"),
    ("GET", "/v1/log/proof/inclusion"),
    ("GET", "/v1/log/proof/consistency"),
    ("POST", "/v1/session"),  # sign-in: exchanges a token (in the body) for a session
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def document(client: TestClient[Any]) -> dict[str, Any]:
    r = client.get("/docs/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _concrete(path: str, op: dict[str, Any]) -> str:
    """A URL for `path` with every path parameter and required query parameter filled in."""
    url = re.sub(r"\{[^}]+\}", "1", path)
    required = [
        p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")
    ]
    return url + ("?" + "&".join(f"{name}=0" for name in required) if required else "")


def test_security_is_declared_exactly_where_a_token_is_needed(
    client: TestClient[Any], document: dict[str, Any]
) -> None:
    assert "security" not in document or document["security"] in ([], None)
    seen_public = set()
    for method, path, op in _operations(document):
        declared = bool(op.get("security"))
        r = client.request(method, _concrete(path, op))
        assert (r.status_code == 401) == declared, (method, path, r.status_code, r.text)
        assert str(r.status_code) in op["responses"], (method, path, r.status_code)
        if not declared:
            seen_public.add((method, path))
        else:
            assert op["security"] == [{"bearer": []}, {"session": []}]
    assert seen_public == PUBLIC


def test_every_operation_documents_its_errors_with_the_error_body(
    document: dict[str, Any],
) -> None:
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert {"status_code", "detail", "field"} <= set(error_body["properties"])
    assert set(error_body["required"]) == {"status_code", "detail"}
    for method, path, op in _operations(document):
        responses = op["responses"]
        assert "400" in responses, (method, path)
        if op.get("security"):
            assert "401" in responses, (method, path)
            if method != "GET":
                assert "403" in responses, (method, path)  # a session failing its CSRF check
        if "requestBody" in op:
            assert "413" in responses, (method, path)
        for status, answer in responses.items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


def test_domain_refusals_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"403", "409"} <= set(paths["/v1/principals"]["post"]["responses"])
    assert {"403", "409", "422"} <= set(paths["/v1/attestations"]["post"]["responses"])
    assert "404" in paths["/v1/artifacts/{ref}"]["get"]["responses"]
    assert {"403", "404", "409"} <= set(paths["/v1/evals/{run_id}"]["delete"]["responses"])
    assert "202" in paths["/v1/evals/{run_id}"]["delete"]["responses"]


def test_resubmission_is_documented_and_answered_200(
    client: TestClient[Any], document: dict[str, Any], registrar: Actor
) -> None:
    responses = document["paths"]["/v1/attestations"]["post"]["responses"]
    assert responses["200"]["content"] == responses["201"]["content"]
    envelope = registration_envelope(registrar.signer, "model", "doc/model@1")
    first = client.post("/v1/attestations", json=envelope, headers=registrar.headers)
    again = client.post("/v1/attestations", json=envelope, headers=registrar.headers)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert first.json()["created"] is True and again.json()["created"] is False
    assert again.json()["attestation_id"] == first.json()["attestation_id"]


def test_the_name_grammar_is_described(document: dict[str, Any]) -> None:
    for path, method in (("/v1/attestations", "post"), ("/v1/artifacts/{ref}", "get")):
        text = document["paths"][path][method]["description"]
        assert "NFC" in text and ".." in text and "bidi" in text, text


def test_405_answers_carry_allow(client: TestClient[Any], document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        url = _concrete(path, {})
        documented = {m.upper() for m in item if m in METHODS}
        unused = sorted({"PUT", "PATCH", "DELETE", "POST"} - documented)[0]
        r = client.request(unused, url)
        assert r.status_code == 405, (unused, path, r.text)
        allow = {m.strip() for m in r.headers["allow"].split(",")}
        assert documented <= allow, (path, allow)
        assert unused not in allow
        assert r.json()["status_code"] == 405
