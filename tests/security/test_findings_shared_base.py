"""`POST /v1/checks/shared-base` and fingerprints at ingest, attacked: malformed, oversized and
odd fingerprints are 400 naming the side (or the metadata field), unknown references 404, an
artifact without a fingerprint 422, nothing is ever written, and any authenticated role may ask."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from registry.auth import Role
from tests.integration.test_findings import _tuned, _weights, fingerprint_doc, reg
from tests.support import Actor, make_actor, registration_envelope, row_counts

URL = "/v1/checks/shared-base"
FIELD = "predicate.artifact.metadata.fingerprint"


@pytest.fixture
def docs(tmp_path: Path) -> dict[str, dict[str, Any]]:
    base = _weights(10)
    return {
        "base": fingerprint_doc(tmp_path, "base", base),
        "tuned": fingerprint_doc(tmp_path, "tuned", _tuned(base, 11)),
        "other": fingerprint_doc(tmp_path, "other", _weights(12)),
    }


def check(client: TestClient[Any], actor: Actor, a: Any, b: Any) -> Any:
    return client.post(URL, json={"a": a, "b": b}, headers=actor.headers)


def test_refs_and_documents_compare_for_any_role(
    client: TestClient[Any],
    engine: Engine,
    registrar: Actor,
    docs: dict[str, dict[str, Any]],
) -> None:
    reg(client, registrar, "model", "s/base@1", fingerprint=docs["base"])
    reg(client, registrar, "model", "s/other@1", fingerprint=docs["other"])
    viewer = make_actor(client, engine, "watcher", Role.VIEWER)
    before = row_counts(engine)
    r = check(client, viewer, "s/base@1", docs["tuned"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["comparable"] and body["shared"] is True and body["p_value"] <= 0.01
    assert body["permutations"] == 999 and body["a_ref"] == "s/base@1" and body["b_ref"] is None
    r = check(client, viewer, "s/base@1", "s/other@1")
    assert r.status_code == 200 and r.json()["shared"] is False
    assert r.json()["b_ref"] == "s/other@1"
    assert row_counts(engine) == before
    assert client.post(URL, json={"a": "s/base@1", "b": "s/base@1"}).status_code == 401


def test_unknown_ref_404_and_no_fingerprint_422_name_the_side(
    client: TestClient[Any], registrar: Actor, docs: dict[str, dict[str, Any]]
) -> None:
    reg(client, registrar, "model", "s/plain@1")
    reg(client, registrar, "dataset", "s/data@1")
    r = check(client, registrar, docs["base"], "s/nobody@1")
    assert r.status_code == 404 and r.json()["field"] == "b", r.text
    r = check(client, registrar, "s/plain@1", docs["base"])
    assert r.status_code == 422 and r.json()["field"] == "a", r.text
    r = check(client, registrar, docs["base"], "s/data@1")
    assert r.status_code == 422 and r.json()["field"] == "b", r.text
    r = check(client, registrar, "", docs["base"])
    assert 400 <= r.status_code < 500


def test_not_comparable_is_an_answer_not_a_guess(
    client: TestClient[Any], registrar: Actor, docs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    import numpy as np

    wider = np.random.default_rng(3).normal(0, 0.02, (2000, 64)).astype(np.float32)
    r = check(client, registrar, docs["base"], fingerprint_doc(tmp_path, "wide", wider))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["comparable"] is False and body["statistic"] is None and body["p_value"] is None
    assert "vocabularies" in body["reason"]


def _malformed(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []

    def variant(name: str, **changes: Any) -> None:
        d = copy.deepcopy(doc)
        for k, v in changes.items():
            if v is _DROP:
                d.pop(k, None)
            else:
                d[k] = v
        out.append((name, d))

    raw = base64.b64decode(doc["gram_f16"])
    variant("unknown scheme", scheme="studbook.dev/fingerprint/other/v9")
    variant("no scheme", scheme=_DROP)
    variant("domain zero", domain=0)
    variant("domain bool", domain=True)
    variant("domain huge", domain=2**40)
    variant("indices not a list", indices="0,1,2")
    variant("one index", indices=[1])
    variant("duplicate indices", indices=[doc["indices"][0]] * len(doc["indices"]))
    variant("index out of range", indices=[*doc["indices"][:-1], doc["domain"]])
    variant("negative index", indices=[-1, *doc["indices"][1:]])
    variant("float index", indices=[0.5, *doc["indices"][1:]])
    variant("gram not text", gram_f16=[1, 2, 3])
    variant("gram not base64", gram_f16="!!!" + doc["gram_f16"][3:])
    variant("gram short", gram_f16=base64.b64encode(raw[:-2]).decode())
    variant("gram long", gram_f16=base64.b64encode(raw + b"\x00\x3c").decode())
    nan = b"\x00\x7e" + raw[2:]  # float16 NaN first
    variant("gram NaN", gram_f16=base64.b64encode(nan).decode())
    big = b"\x00\x50" + raw[2:]  # float16 32.0: outside a cosine's range
    variant("gram out of range", gram_f16=base64.b64encode(big).decode())
    variant("tensor not text", tensor={"x": 1})
    variant("tensor too long", tensor="t" * 301)
    out.append(("not an object", [doc]))
    out.append(("a number", 7))
    out.append(("null", None))
    return out


_DROP = object()


def test_malformed_fingerprints_are_400_naming_the_side(
    client: TestClient[Any], engine: Engine, registrar: Actor, docs: dict[str, dict[str, Any]]
) -> None:
    before = row_counts(engine)
    for name, bad in _malformed(docs["base"]):
        r = check(client, registrar, docs["base"], bad)
        assert r.status_code == 400, (name, r.status_code, r.text)
        field = r.json().get("field") or ""
        assert field == "b" or field.startswith("b."), (name, r.text)
    assert row_counts(engine) == before


def test_oversized_fingerprints_are_refused_before_any_work(
    client: TestClient[Any], registrar: Actor, docs: dict[str, dict[str, Any]]
) -> None:
    k = 1024
    huge = {
        "scheme": docs["base"]["scheme"],
        "domain": 5000,
        "indices": list(range(k)),
        "gram_f16": base64.b64encode(b"\x00\x00" * (k * (k - 1) // 2)).decode(),
        "tensor": "x",
    }
    r = check(client, registrar, huge, huge)
    assert r.status_code in (400, 413), r.text
    if r.status_code == 400:
        assert r.json()["field"] == "a"
    deep: Any = {}
    for _ in range(200):
        deep = {"x": deep}
    r = check(client, registrar, deep, docs["base"])
    assert r.status_code == 400, r.text


def test_registration_with_a_bad_fingerprint_writes_nothing(
    client: TestClient[Any], engine: Engine, registrar: Actor, docs: dict[str, dict[str, Any]]
) -> None:
    before = row_counts(engine)
    cases: list[tuple[str, str, dict[str, Any], bool]] = [
        ("model", "f/bad@1", {**docs["base"], "gram_f16": "AAAA"}, False),
        ("model", "f/str@1", "not a fingerprint", False),  # type: ignore[list-item]
        ("dataset", "f/data@1", docs["base"], False),
        ("model", "f/opaque@1", docs["base"], True),
    ]
    for kind, label, fp, opaque in cases:
        env = registration_envelope(registrar.signer, kind, label, metadata={"fingerprint": fp})
        if opaque:
            from lineage.digests import opaque_digest
            from lineage.statements import registration_statement, sign_statement
            from lineage.types import ArtifactKind, ArtifactRef, Registration

            ref = ArtifactRef(ArtifactKind.MODEL, "f/opaque", "1", opaque_digest("api:x"), True)
            reg_ = Registration(ref, (), {"fingerprint": fp})
            env = sign_statement(registration_statement(reg_), registrar.signer).to_json()
        r = client.post("/v1/attestations", json=env, headers=registrar.headers)
        assert r.status_code == 400, (label, r.text)
        assert r.json()["field"] == FIELD, (label, r.text)
    assert row_counts(engine) == before
