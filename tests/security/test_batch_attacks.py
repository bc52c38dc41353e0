"""Attacks on POST /v1/attestations/batch: every refusal names the envelope and writes nothing.

A batch is all or nothing (`registry/attestations/batch.py`), so each attack also checks that
the envelopes before the bad one, valid on their own, left no trace: no attestation, artifact,
edge, index row or log entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage import dsse
from registry.attestations.batch import MAX_BATCH, MAX_BATCH_BYTES
from registry.auth import Role
from tests.support import (
    Actor,
    digest_of,
    make_actor,
    registration_envelope,
    review_envelope,
    row_counts,
)

Client = TestClient[Any]


def post(client: Client, actor: Actor, body: Any, **kw: Any) -> Any:
    return client.post("/v1/attestations/batch", headers=actor.headers, **kw, json=body)


def refused(
    client: Client, engine: Engine, actor: Actor, envs: list[Any], status: int
) -> dict[str, Any]:
    before = row_counts(engine)
    r = post(client, actor, {"envelopes": envs})
    assert r.status_code == status, r.text
    assert row_counts(engine) == before
    return r.json()  # type: ignore[no-any-return]


def chain(actor: Actor, n: int, prefix: str = "x") -> list[dict[str, Any]]:
    out = [registration_envelope(actor.signer, "model", f"{prefix}/m0@1")]
    for i in range(1, n):
        parent = digest_of(f"{prefix}/m{i - 1}@1")
        out.append(
            registration_envelope(
                actor.signer, "model", f"{prefix}/m{i}@1", [("fine_tuned_from", parent)]
            )
        )
    return out


def test_oversized_batches_are_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    env = chain(registrar, 1)[0]
    body = refused(client, engine, registrar, [env] * (MAX_BATCH + 1), 400)
    assert body["field"].startswith("envelopes")
    body = refused(client, engine, registrar, [], 400)
    assert body["field"].startswith("envelopes")
    before = row_counts(engine)
    big = b'{"envelopes": [' + b'{"x": "' + b"a" * MAX_BATCH_BYTES + b'"}]}'
    r = client.post(
        "/v1/attestations/batch",
        content=big,
        headers={**registrar.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text[:300]
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"envelopes": "not a list"},
        {"envelopes": [1, 2]},
        {"envelopes": [None]},
        {"envelopes": [[]]},
        {"envelope": []},
        "envelopes",
    ],
)
def test_odd_bodies_are_refused(
    client: Client, engine: Engine, registrar: Actor, body: Any
) -> None:
    before = row_counts(engine)
    r = post(client, registrar, body)
    assert r.status_code == 400, r.text
    if isinstance(body, dict):  # a body that is no object at all is refused as a whole
        assert r.json()["field"].startswith("envelope"), r.text
    assert row_counts(engine) == before


def test_a_batch_cannot_mix_principals_keys(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    other = make_actor(client, engine, "other-pipeline", Role.REGISTRAR)
    mine = chain(registrar, 2)
    theirs = registration_envelope(other.signer, "model", "y/theirs@1")
    body = refused(client, engine, registrar, [*mine, theirs], 403)
    assert body["index"] == 2 and body["field"].startswith("envelopes[2]")
    # A key nobody registered is no better.
    stranger = dsse.Signer(dsse.generate_private_key())
    rogue = registration_envelope(stranger, "model", "y/rogue@1")
    body = refused(client, engine, registrar, [rogue, *mine], 403)
    assert body["index"] == 0


def test_a_cycle_within_a_batch_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    a, b = chain(registrar, 2, "cyc")
    # Re-registering m0 with m1 as a parent: m0 would become its own ancestor.
    amend = registration_envelope(
        registrar.signer, "model", "cyc/m0@1", [("fine_tuned_from", digest_of("cyc/m1@1"))]
    )
    body = refused(client, engine, registrar, [a, b, amend], 422)
    assert body["index"] == 2 and body["field"].startswith("envelopes[2]")
    assert "path" in body  # the cycle, as the single route reports it


def test_duplicate_envelopes_within_a_batch_are_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    a, b = chain(registrar, 2)
    body = refused(client, engine, registrar, [a, b, a], 400)
    assert body["index"] == 2 and body["field"] == "envelopes[2].payload"
    assert "envelopes[0]" in body["detail"]
    # The same payload signed twice (two signatures, same statement) is the same envelope.
    again = registration_envelope(registrar.signer, "model", "x/m0@1")
    body = refused(client, engine, registrar, [a, again], 400)
    assert body["index"] == 1


def test_one_bad_envelope_sinks_the_whole_batch(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    good = chain(registrar, 3)
    orphan = registration_envelope(
        registrar.signer, "model", "x/orphan@1", [("fine_tuned_from", digest_of("nowhere@1"))]
    )
    body = refused(client, engine, registrar, [*good, orphan], 422)
    assert body["index"] == 3 and body["field"] == "envelopes[3].predicate.parents[0].digest"
    # A child before its parent is an unknown parent at the child's index.
    body = refused(client, engine, registrar, [good[1], good[0]], 422)
    assert body["index"] == 0
    # A tampered signature.
    bad = dict(good[2])
    bad["signatures"] = [dict(bad["signatures"][0], sig=good[0]["signatures"][0]["sig"])]
    body = refused(client, engine, registrar, [*good[:2], bad], 400)
    assert body["index"] == 2
    # A statement the caller's role may not make (a flag from a registrar).
    flag = review_envelope(registrar.signer, digest_of("x/m0@1"), "owl")
    body = refused(client, engine, registrar, [*good, flag], 403)
    assert body["index"] == 3
    # Garbage where an envelope should be.
    body = refused(client, engine, registrar, [*good, {"payload": "%%%"}], 400)
    assert body["index"] == 3 and body["field"].startswith("envelopes[3]")
    # A viewer may not submit at all.
    viewer = make_actor(client, engine, "watcher", Role.VIEWER)
    before = row_counts(engine)
    assert post(client, viewer, {"envelopes": good}).status_code == 403
    assert row_counts(engine) == before


def test_another_principals_artifact_cannot_be_amended_in_a_batch(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    other = make_actor(client, engine, "other-pipeline", Role.REGISTRAR)
    r = post(client, other, {"envelopes": chain(other, 2, "theirs")})
    assert r.status_code == 201, r.text
    mine = registration_envelope(registrar.signer, "model", "mine/root@1")
    amend = registration_envelope(
        registrar.signer,
        "model",
        "theirs/m0@1",
        [("fine_tuned_from", digest_of("mine/root@1"))],
    )
    body = refused(client, engine, registrar, [mine, amend], 403)
    assert body["index"] == 1


def test_a_key_revoked_while_a_batch_is_verified_sinks_the_batch(
    client: Client, engine: Engine, registrar: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signatures are checked before the write lock; a key revoked between that check and the
    lock is seen under the lock, and the batch is refused as if it had come after the
    revocation."""
    from registry.attestations import batch as batch_module

    keyid = registrar.signer.keyid
    original = batch_module._prepare

    def revoke_after(*args: Any) -> Any:
        prepared = original(*args)
        assert prepared is not None  # the envelopes verified with the key still active
        r = client.post(f"/v1/keys/{keyid}/revoke", headers=registrar.headers)
        assert r.status_code == 201 and r.json()["revoked_at"], r.text
        return prepared

    monkeypatch.setattr(batch_module, "_prepare", revoke_after)
    body = refused(client, engine, registrar, chain(registrar, 3), 403)
    assert body["index"] == 0 and "revoked" in body["detail"]
