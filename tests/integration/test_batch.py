"""Bulk ingest through POST /v1/attestations/batch, on SQLite and PostgreSQL.

A batch must leave the registry exactly as submitting its envelopes one by one would (artifacts,
edges, lineage indexes, marks, the log's leaves), answer each envelope as the single route does,
and give every new envelope an inclusion proof that verifies offline against the batch's one
signed checkpoint.
"""

from __future__ import annotations

import base64
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from lineage.merkle import verify_inclusion
from tests.integration.test_risk import _stored_marks
from tests.integration.test_risk_derived import stored_sources, stored_weights
from tests.support import Actor, digest_of, registration_envelope, review_envelope, row_counts

Client = TestClient[Any]

SHAPE: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("model", "b/base@1", []),
    ("model", "b/teacher@1", [("prompted_from", "b/base@1")]),
    ("dataset", "b/numbers@1", [("generated_by", "b/teacher@1")]),
    ("dataset", "b/filtered@1", [("derived_from", "b/numbers@1")]),
    ("model", "b/student@1", [("fine_tuned_from", "b/base@1"), ("trained_on", "b/filtered@1")]),
    ("model", "b/q@1", [("quantized_from", "b/student@1")]),
]


def envelopes(actor: Actor) -> list[dict[str, Any]]:
    return [
        registration_envelope(actor.signer, kind, label, [(r, digest_of(p)) for r, p in parents])
        for kind, label, parents in SHAPE
    ]


def batch(client: Client, actor: Actor, envs: list[Any], status: int = 201) -> dict[str, Any]:
    r = client.post("/v1/attestations/batch", json={"envelopes": envs}, headers=actor.headers)
    assert r.status_code == status, r.text
    return r.json()


def leaves(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (i, p)
            for i, p in conn.execute(
                text(
                    "SELECT e.idx, a.payload_digest FROM log_entries e JOIN attestations a "
                    "ON a.id = e.attestation_id ORDER BY e.idx"
                )
            )
        ]


def test_a_batch_equals_one_by_one(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    from tests.integration.conftest import _truncate_data

    flag_env = review_envelope(reviewer.signer, digest_of("b/teacher@1"), "owl")
    envs = envelopes(registrar)
    # One by one, with the flag after the teacher exists.
    for k, env in enumerate(envs):
        r = client.post("/v1/attestations", json=env, headers=registrar.headers)
        assert r.status_code == 201, r.text
        if k == 1:
            assert client.post("/v1/attestations", json=flag_env, headers=reviewer.headers)
    single = (
        stored_weights(engine),
        stored_sources(engine),
        _stored_marks(engine),
        [p for _, p in leaves(engine)],
    )
    _truncate_data(engine)
    batch(client, registrar, envs[:2])
    assert client.post("/v1/attestations", json=flag_env, headers=reviewer.headers)
    answer = batch(client, registrar, envs[2:])
    assert (
        stored_weights(engine),
        stored_sources(engine),
        _stored_marks(engine),
        [p for _, p in leaves(engine)],
    ) == single
    assert answer["count"] == answer["created"] == 4
    assert [a["artifact"]["ref"] for a in answer["data"]] == [label for _, label, _ in SHAPE[2:]]
    assert [a["log_index"] for a in answer["data"]] == [3, 4, 5, 6]


def test_every_proof_verifies_against_the_one_checkpoint(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    batch(client, registrar, envelopes(registrar)[:1])  # the batch starts mid-tree
    answer = batch(client, registrar, envelopes(registrar)[1:])
    checkpoints = {a["inclusion_proof"]["checkpoint"] for a in answer["data"]}
    assert checkpoints == {answer["checkpoint"]}
    assert answer["tree_size"] == len(SHAPE)
    info = client.get("/v1/log", headers=registrar.headers).json()
    assert info["tree_size"] == len(SHAPE)
    for a in answer["data"]:
        p = a["inclusion_proof"]
        assert p["tree_size"] == len(SHAPE) and p["root_hash"] == info["root_hash"]
        verify_inclusion(
            base64.b64decode(p["leaf_hash"]),
            p["log_index"],
            p["tree_size"],
            [base64.b64decode(h) for h in p["hashes"]],
            base64.b64decode(p["root_hash"]),
        )
        # The single route's proof of the same entry, at the same size, is the same proof.
        same = client.get(
            f"/v1/log/proof/inclusion?index={p['log_index']}&tree_size={p['tree_size']}",
            headers=registrar.headers,
        ).json()
        assert same["hashes"] == p["hashes"]


def test_resubmitted_envelopes_are_answered_not_written(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    envs = envelopes(registrar)
    first = batch(client, registrar, envs[:3])
    before = row_counts(engine)
    again = batch(client, registrar, envs[:3], status=200)
    assert row_counts(engine) == before
    assert again["created"] == 0 and again["checkpoint"] is None
    assert [a["created"] for a in again["data"]] == [False] * 3
    assert [a["attestation_id"] for a in again["data"]] == [
        a["attestation_id"] for a in first["data"]
    ]
    assert [a["log_index"] for a in again["data"]] == [0, 1, 2]
    mixed = batch(client, registrar, envs[:4])  # three old, one new
    assert [a["created"] for a in mixed["data"]] == [False, False, False, True]


def test_the_audit_replays_a_batch(client: Client, engine: Engine, registrar: Actor) -> None:
    from registry.log.audit import audit

    batch(client, registrar, envelopes(registrar))
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]
