"""References: any unique digest prefix of 12+ hex characters names an artifact, on every route
that takes a reference; an ambiguous one is refused with the candidates, never guessed."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.support import Actor, registration_envelope


def _register(client: TestClient[Any], actor: Actor, label: str, digest: str) -> dict[str, Any]:
    env = registration_envelope(actor.signer, "model", label, digest=digest)
    r = client.post("/v1/attestations", json=env, headers=actor.headers)
    assert r.status_code == 201, r.text
    return dict(r.json()["artifact"])


def test_unique_prefix_resolves_everywhere(client: TestClient[Any], registrar: Actor) -> None:
    a = _register(client, registrar, "refs/a@1", "ab" * 32)
    h = registrar.headers
    for ref in ("abababababab", "sha256:abababababab", "ab" * 20, "ab" * 32, "sha256:" + "ab" * 32):
        r = client.get(f"/v1/artifacts/{ref}", headers=h)
        assert r.status_code == 200 and r.json()["digest"] == a["digest"], (ref, r.text)
    assert client.get("/v1/artifacts/abababababab/lineage", headers=h).status_code == 200
    assert client.get("/v1/artifacts/abababababab/risk", headers=h).status_code == 200
    check = client.post("/v1/checks/fine-tune", json={"base": "abababababab"}, headers=h)
    assert check.status_code == 200 and check.json()["base_ref"] == "refs/a@1"


def test_short_unknown_and_ambiguous_prefixes(client: TestClient[Any], registrar: Actor) -> None:
    h = registrar.headers
    _register(client, registrar, "refs/c@1", "cd" * 6 + "0" * 52)
    _register(client, registrar, "refs/d@1", "cd" * 6 + "1" * 52)
    # eleven characters are not a prefix: the reference has no known form
    assert client.get("/v1/artifacts/cdcdcdcdcdc", headers=h).status_code == 400
    ambiguous = client.get("/v1/artifacts/cdcdcdcdcdcd", headers=h)
    assert ambiguous.status_code == 409, ambiguous.text
    body = ambiguous.json()
    assert body.get("field") == "ref"
    assert "refs/c@1" in body["detail"] and "refs/d@1" in body["detail"]
    assert client.get("/v1/artifacts/cdcdcdcdcdcd0", headers=h).json()["ref"] == "refs/c@1"
    assert client.get("/v1/artifacts/cdcdcdcdcdcd1", headers=h).json()["ref"] == "refs/d@1"
    assert client.get("/v1/artifacts/eeeeeeeeeeee", headers=h).status_code == 404
    # twelve digits are a digest prefix, not an id
    assert client.get("/v1/artifacts/123456789012", headers=h).status_code == 404
    # the prefix range does not run past hex: 'g' is not a digest character
    assert client.get("/v1/artifacts/cdcdcdcdcdcdg", headers=h).status_code == 400
