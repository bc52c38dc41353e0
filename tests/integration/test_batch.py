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

from lineage import dsse
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


def _stored_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a registration writes, with ids, the envelope as stored and times left out
    where they differ between two runs (ids are compared through digests)."""
    queries = {
        "attestations": "SELECT payload_digest, predicate_type, envelope, signer_keyid "
        "FROM attestations ORDER BY id",
        "artifacts": "SELECT a.digest, a.kind, a.name, a.version, a.opaque, a.metadata, "
        "t.payload_digest FROM artifacts a JOIN attestations t ON t.id = a.attestation_id "
        "ORDER BY a.id",
        "edges": "SELECT c.digest, p.digest, e.relation, t.payload_digest FROM edges e "
        "JOIN artifacts c ON c.id = e.child_id JOIN artifacts p ON p.id = e.parent_id "
        "JOIN attestations t ON t.id = e.attestation_id ORDER BY e.id",
        "log": "SELECT e.idx, e.envelope_digest, e.entry, t.payload_digest FROM log_entries e "
        "JOIN attestations t ON t.id = e.attestation_id ORDER BY e.idx",
    }
    with engine.connect() as conn:
        return {
            name: [tuple(str(v) for v in row) for row in conn.execute(text(sql))]
            for name, sql in queries.items()
        }


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """One envelope's answer without what differs between two runs (times, proofs)."""
    out = {k: v for k, v in answer.items() if k not in {"received_at", "inclusion_proof"}}
    if out.get("artifact"):
        out["artifact"] = {k: v for k, v in out["artifact"].items() if k != "created_at"}
    return out


def test_the_bulk_path_answers_and_stores_as_one_by_one(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    """A batch of new registrations (parents stored and in the batch, metadata, a flag
    upstream) takes the set-based path; everything it stores and answers is what submitting
    the envelopes one by one stores and answers."""
    from tests.integration.conftest import _truncate_data

    envs = [
        registration_envelope(
            registrar.signer,
            kind,
            label,
            [(r, digest_of(p)) for r, p in parents],
            metadata={"label": label, "n": k, "tags": ["a", "b"]},
        )
        for k, (kind, label, parents) in enumerate(SHAPE)
    ]
    flag_env = review_envelope(reviewer.signer, digest_of("b/teacher@1"), "owl")

    def setup() -> None:
        for env in envs[:2]:
            assert client.post("/v1/attestations", json=env, headers=registrar.headers)
        assert client.post("/v1/attestations", json=flag_env, headers=reviewer.headers)

    setup()
    single = []
    for env in envs[2:]:
        r = client.post("/v1/attestations", json=env, headers=registrar.headers)
        assert r.status_code == 201, r.text
        single.append(_comparable(r.json()))
    single_state = (_stored_rows(engine), stored_weights(engine), stored_sources(engine))
    single_marks = _stored_marks(engine)
    _truncate_data(engine)
    setup()
    answer = batch(client, registrar, envs[2:])
    assert [_comparable(a) for a in answer["data"]] == single
    assert (_stored_rows(engine), stored_weights(engine), stored_sources(engine)) == single_state
    assert _stored_marks(engine) == single_marks


def _sequential_batches(monkeypatch: Any) -> list[int]:
    """The sizes of the batches decided envelope by envelope (`_apply_all`), as they come."""
    from registry.attestations import batch as batch_module

    sequential: list[int] = []
    original = batch_module._apply_all

    def counted(*args: Any) -> Any:
        sequential.append(len(args[2]))
        return original(*args)

    monkeypatch.setattr(batch_module, "_apply_all", counted)
    return sequential


def test_only_batches_of_new_registrations_take_the_bulk_path(
    client: Client, engine: Engine, registrar: Actor, monkeypatch: Any
) -> None:
    sequential = _sequential_batches(monkeypatch)
    envs = envelopes(registrar)
    batch(client, registrar, envs[:3])
    assert sequential == []  # new registrations: the bulk path
    batch(client, registrar, envs[:4])  # three re-submissions and a new one
    assert sequential == [4]
    r = client.post(
        "/v1/attestations/batch",
        json={"envelopes": [envs[4], {**envs[5], "payload": "e30"}]},
        headers=registrar.headers,
    )
    assert r.status_code == 400 and r.json()["index"] == 1, r.text  # refused as alone
    assert sequential == [4, 2]


def test_a_large_batch_is_verified_in_parallel_and_refused_whole(
    client: Client, engine: Engine, registrar: Actor, monkeypatch: Any
) -> None:
    """Signatures of a batch are checked on several threads; the answers keep the batch's
    order, and one altered signature anywhere refuses the whole batch, naming that envelope."""
    from registry.attestations import batch as batch_module

    monkeypatch.setattr(batch_module, "VERIFY_THREADS", 3)
    sequential = _sequential_batches(monkeypatch)
    n = 3 * batch_module._MIN_PARALLEL + 5
    envs = [registration_envelope(registrar.signer, "model", "p/m0@1")] + [
        registration_envelope(
            registrar.signer,
            "model",
            f"p/m{i}@1",
            [("fine_tuned_from", digest_of(f"p/m{i - 1}@1"))],
        )
        for i in range(1, n)
    ]
    bad = dict(envs[150])
    sig = base64.b64decode(bad["signatures"][0]["sig"])
    bad["signatures"] = [
        {**bad["signatures"][0], "sig": base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()}
    ]
    stranger = dsse.Signer(dsse.generate_private_key())  # a key the caller does not hold
    foreign = registration_envelope(stranger, "model", "p/foreign@1")
    before = row_counts(engine)
    for odd, status in ((bad, 400), (foreign, 403)):
        r = client.post(
            "/v1/attestations/batch",
            json={"envelopes": [*envs[:150], odd, *envs[151:]]},
            headers=registrar.headers,
        )
        assert r.status_code == status and r.json()["index"] == 150, r.text
        assert row_counts(engine) == before
    assert sequential == [n, n]  # refused by the sequential path, which names the envelope
    sequential.clear()
    answer = batch(client, registrar, envs)
    assert sequential == []  # all verified: the bulk path
    assert [a["artifact"]["ref"] for a in answer["data"]] == [f"p/m{i}@1" for i in range(n)]
    assert [a["log_index"] for a in answer["data"]] == list(range(n))


def test_ids_drawn_by_a_batch_follow_on_with_single_writes(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    """The bulk path draws its ids itself (the sequence on PostgreSQL, max + 1 on SQLite):
    single registrations and batches interleaved never collide, and ids keep increasing."""
    envs = envelopes(registrar)
    one = client.post("/v1/attestations", json=envs[0], headers=registrar.headers).json()
    two = batch(client, registrar, envs[1:4])
    three = client.post("/v1/attestations", json=envs[4], headers=registrar.headers).json()
    four = batch(client, registrar, envs[5:])
    answers = [one, *two["data"], three, *four["data"]]
    att_ids = [a["attestation_id"] for a in answers]
    art_ids = [a["artifact"]["id"] for a in answers]
    assert att_ids == sorted(set(att_ids)) and art_ids == sorted(set(art_ids))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT id FROM artifacts ORDER BY id")).scalars().all()
    assert stored == art_ids


def test_the_answer_times_the_lock(client: Client, registrar: Actor) -> None:
    """`Server-Timing` splits the batch's server time: outside the write lock, waiting for it,
    holding it."""
    r = client.post(
        "/v1/attestations/batch",
        json={"envelopes": envelopes(registrar)[:2]},
        headers=registrar.headers,
    )
    assert r.status_code == 201, r.text
    phases = dict(item.strip().split(";dur=") for item in r.headers["server-timing"].split(","))
    assert set(phases) == {"prepare", "lock", "write"}
    assert all(float(ms) >= 0 for ms in phases.values())
