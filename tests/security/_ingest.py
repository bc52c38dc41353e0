"""Helpers for the ingest-boundary attacks: hand-built statements, signed exactly as given."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage.statements import PAYLOAD_TYPE, REGISTRATION_PREDICATE, STATEMENT_TYPE
from tests.support import Actor, digest_of, row_counts

Client = TestClient[Any]


def registration(
    name: str,
    version: str = "1",
    *,
    kind: str = "model",
    digest: str | None = None,
    parents: list[dict[str, Any]] | None = None,
    metadata: Any = None,
    subject_name: Any = ...,
) -> dict[str, Any]:
    """A registration statement as a client might write it, valid or not."""
    if digest is None:
        label = f"{name}@{version}"
        try:
            digest = digest_of(label)
        except UnicodeEncodeError:  # a lone surrogate: any stable digest will do
            digest = digest_of(ascii(label))
    subject: dict[str, Any] = {"digest": {"sha256": digest}}
    if subject_name is ...:
        subject["name"] = f"{name}@{version}"
    elif subject_name is not None:
        subject["name"] = subject_name
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject],
        "predicateType": REGISTRATION_PREDICATE,
        "predicate": {
            "artifact": {
                "kind": kind,
                "name": name,
                "version": version,
                "opaque": False,
                "metadata": {} if metadata is None else metadata,
            },
            "parents": parents or [],
        },
    }


def payload_of(statement: Any) -> bytes:
    """JSON bytes that can carry anything Python's json writes, lone surrogates included (as
    `\\udXXX` escapes, which are valid UTF-8 on the wire)."""
    return json.dumps(statement, ensure_ascii=True, allow_nan=True).encode("ascii")


def signed(actor: Actor, statement: Any = None, *, payload: bytes | None = None) -> dict[str, Any]:
    """An envelope over `payload` (or the statement's JSON), correctly signed by `actor`."""
    raw = payload if payload is not None else payload_of(statement)
    return actor.signer.sign(PAYLOAD_TYPE, raw).to_json()


def post(client: Client, actor: Actor, envelope: dict[str, Any]) -> Any:
    return client.post("/v1/attestations", json=envelope, headers=actor.headers)


def assert_refused(
    client: Client,
    engine: Engine,
    actor: Actor,
    envelope: dict[str, Any],
    *,
    status: int,
    field: str | None,
) -> dict[str, Any]:
    """Submit and check the refusal: `status`, the body names `field`, and no table changed."""
    before = row_counts(engine)
    r = post(client, actor, envelope)
    assert r.status_code == status, r.text
    body = r.json()
    if field is not None:
        assert body.get("field") == field, body
    assert row_counts(engine) == before, "a refused submission wrote something"
    return body  # type: ignore[no-any-return]
