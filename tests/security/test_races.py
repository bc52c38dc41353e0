"""Concurrent writers, released together by a barrier, against the real app on both databases.

Every decision that reads before it writes (the cycle check, uniqueness of name@version, of a
digest, of a principal's name, of a key) is serialised by the write lock every writing
transaction takes first (`registry.db.begin_write`). So in each race exactly one request wins,
the others get the answer the sequential path gives (409 naming the field, 422 for a cycle, 200
for a re-submission), never a 500, and the audit (log and replay) finds nothing afterwards.

The requests go through Litestar's test client from several threads: its handlers run in a
thread pool, each with its own session and connection, so the transactions really overlap.
Without the lock, PostgreSQL accepted both halves of a cycle pair in 20 of 20 tries (issue 9).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lineage import dsse
from registry.errors import unique_conflict
from registry.log.audit import audit
from registry.models import Principal, SigningKey, utcnow
from tests.security._ingest import Client, post
from tests.support import (
    Actor,
    digest_of,
    key_registration,
    register,
    registration_envelope,
    review_envelope,
    row_counts,
)

THREADS = 8
TRIES = 20


def race(n: int, request: Callable[[int], Any]) -> list[Any]:
    """Run `request(i)` for i < n in n threads released together; the responses, in order."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            out[i] = request(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def statuses(responses: list[Any]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def assert_audit_clean(engine: Engine) -> None:
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]


def test_cycle_pairs_one_side_wins_every_time(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    for i in range(TRIES):
        a, b = f"race/a{i}@1", f"race/b{i}@1"
        register(client, registrar, "model", a)
        register(client, registrar, "model", b)
        envs = [
            registration_envelope(
                registrar.signer, "model", a, [("fine_tuned_from", digest_of(b))]
            ),
            registration_envelope(
                registrar.signer, "model", b, [("fine_tuned_from", digest_of(a))]
            ),
        ]
        responses = race(2, lambda k, envs=envs: post(client, registrar, envs[k]))
        assert statuses(responses) == Counter({201: 1, 422: 1}), [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 422)
        assert loser.json()["field"] == "parents" and "own ancestor" in loser.json()["detail"]
    with engine.connect() as conn:
        both_ways = conn.execute(
            text(
                "SELECT count(*) FROM edges e1 JOIN edges e2 "
                "ON e1.child_id = e2.parent_id AND e1.parent_id = e2.child_id"
            )
        ).scalar_one()
        edges = conn.execute(text("SELECT count(*) FROM edges")).scalar_one()
    assert both_ways == 0
    assert edges == TRIES
    # Each pair's ancestor can still be flagged (a stored cycle made this a 422), and the
    # record replays cleanly.
    for i in range(TRIES):
        for label in (f"race/a{i}@1", f"race/b{i}@1"):
            env = review_envelope(reviewer.signer, digest_of(label), "owl")
            r = post(client, reviewer, env)
            assert r.status_code == 201, r.text
    assert_audit_clean(engine)


def test_same_name_and_version_with_different_digests(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    envs = [
        registration_envelope(registrar.signer, "model", "race/m@1", digest=digest_of(f"c{i}"))
        for i in range(THREADS)
    ]
    responses = race(THREADS, lambda i: post(client, registrar, envs[i]))
    assert statuses(responses) == Counter({201: 1, 409: THREADS - 1}), [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["field"] == "predicate.artifact.version", r.json()
    assert row_counts(engine)["artifacts"] == 1
    assert_audit_clean(engine)


def test_same_digest_under_different_names(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    digest = digest_of("one content")
    envs = [
        registration_envelope(registrar.signer, "model", f"race/n{i}@1", digest=digest)
        for i in range(THREADS)
    ]
    responses = race(THREADS, lambda i: post(client, registrar, envs[i]))
    assert statuses(responses) == Counter({201: 1, 409: THREADS - 1}), [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["field"] == "subject[0].digest", r.json()
    assert row_counts(engine)["artifacts"] == 1
    assert_audit_clean(engine)


def test_the_same_envelope_many_times_is_accepted_once(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    env = registration_envelope(registrar.signer, "model", "race/same@1")
    responses = race(THREADS, lambda i: post(client, registrar, env))
    assert statuses(responses) == Counter({201: 1, 200: THREADS - 1}), [r.text for r in responses]
    assert len({r.json()["attestation_id"] for r in responses}) == 1
    counts = row_counts(engine)
    assert (counts["attestations"], counts["log_entries"]) == (1, 1)
    assert_audit_clean(engine)


def test_same_principal_name(client: Client, engine: Engine, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    responses = race(
        THREADS,
        lambda i: client.post(
            "/v1/principals", json={"name": "dup", "role": "registrar"}, headers=headers
        ),
    )
    assert statuses(responses) == Counter({201: 1, 409: THREADS - 1}), [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["field"] == "name"
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM principals WHERE name = 'dup'")).scalar_one()
    assert n == 1


def test_same_key(client: Client, engine: Engine, registrar: Actor) -> None:
    signer = dsse.Signer(dsse.generate_private_key())
    body = key_registration(signer, registrar.name)
    before = row_counts(engine)["keys"]
    responses = race(
        THREADS, lambda i: client.post("/v1/keys", json=body, headers=registrar.headers)
    )
    assert statuses(responses) == Counter({201: 1, 409: THREADS - 1}), [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["field"] == "public_key"
    assert row_counts(engine)["keys"] == before + 1


def test_an_amendment_racing_a_new_edge_never_stores_a_cycle(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    """A three-artifact cycle closed from two sides: x <- y exists; y <- z and z <- x race."""
    for i in range(TRIES // 2):
        x, y, z = (f"tri/{c}{i}@1" for c in "xyz")
        register(client, registrar, "model", x)
        register(client, registrar, "model", y, [("fine_tuned_from", x)])
        register(client, registrar, "model", z)
        envs = [
            registration_envelope(
                registrar.signer, "model", x, [("fine_tuned_from", digest_of(z))]
            ),
            registration_envelope(
                registrar.signer, "model", z, [("fine_tuned_from", digest_of(y))]
            ),
        ]
        responses = race(2, lambda k, envs=envs: post(client, registrar, envs[k]))
        assert statuses(responses) == Counter({201: 1, 422: 1}), [r.text for r in responses]
    assert_audit_clean(engine)


# ------------------------------------------- unique violations that still happen are 409s


def test_a_unique_violation_inside_submit_is_decided_again_and_answered_as_409(
    client: Client, engine: Engine, registrar: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that skipped the name@version check (as one outside the lock would) hits the
    unique constraint; the submission is decided again and gets the sequential 409."""
    from registry.artifacts import service as artifacts

    register(client, registrar, "model", "dup/m@1")
    real = artifacts._check_identity
    calls = {"n": 0}

    def skip_first(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            real(*args)

    monkeypatch.setattr(artifacts, "_check_identity", skip_first)
    before = row_counts(engine)
    env = registration_envelope(registrar.signer, "model", "dup/m@1", digest=digest_of("other"))
    r = post(client, registrar, env)
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "predicate.artifact.version"
    assert "already registered with another digest" in r.json()["detail"]
    assert calls["n"] == 2
    assert row_counts(engine) == before


def _violate(engine: Engine, table: Any, row: dict[str, Any]) -> IntegrityError:
    with pytest.raises(IntegrityError) as err, engine.begin() as conn:
        conn.execute(insert(table), [row, row])
    return err.value


def test_unique_violations_map_to_the_fields_of_the_sequential_answers(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    env = registration_envelope(registrar.signer, "model", "u/m@1")
    accepted = post(client, registrar, env).json()
    with Session(engine) as session:
        principal_id = session.execute(
            text("SELECT id FROM principals WHERE name = :n"), {"n": registrar.name}
        ).scalar_one()
    artifacts = text("SELECT digest, name, version, kind FROM artifacts")
    with engine.connect() as conn:
        art = conn.execute(artifacts).one()
    cases = {
        "principals": (
            _violate(
                engine,
                Principal.__table__,  # type: ignore[attr-defined]
                {"name": "p", "role": "viewer", "created_at": utcnow()},
            ),
            "name",
        ),
        "keys": (
            _violate(
                engine,
                SigningKey.__table__,  # type: ignore[attr-defined]
                {
                    "keyid": "k" * 64,
                    "public_key": "x",
                    "principal_id": principal_id,
                    "created_at": utcnow(),
                },
            ),
            "public_key",
        ),
    }
    with pytest.raises(IntegrityError) as same_name, engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO artifacts (digest, kind, name, version, opaque, metadata, "
                "attestation_id, created_at) VALUES (:d, 'model', :n, :v, false, '{}', :a, "
                "CURRENT_TIMESTAMP)"
            ),
            {"d": "f" * 64, "n": art.name, "v": art.version, "a": accepted["attestation_id"]},
        )
    with pytest.raises(IntegrityError) as same_digest, engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO artifacts (digest, kind, name, version, opaque, metadata, "
                "attestation_id, created_at) VALUES (:d, 'model', 'other', '1', false, '{}', :a, "
                "CURRENT_TIMESTAMP)"
            ),
            {"d": art.digest, "a": accepted["attestation_id"]},
        )
    cases["name@version"] = (same_name.value, "predicate.artifact.version")
    cases["digest"] = (same_digest.value, "subject[0].digest")
    for what, (exc, field) in cases.items():
        conflict = unique_conflict(exc)
        assert conflict is not None and conflict[0] == field, (what, conflict, exc)


def test_writers_take_the_lock_before_their_first_read(engine: Engine, client: Client) -> None:
    """`begin_write` on a session that already read cannot take SQLite's write lock: refused
    loudly rather than deciding on a stale snapshot. On PostgreSQL the lock is taken and every
    later statement reads fresh data (READ COMMITTED)."""
    from registry.db import begin_write

    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        if engine.dialect.name == "sqlite":
            with pytest.raises(RuntimeError):
                begin_write(session)
        else:
            begin_write(session)
            held = session.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid()"
                )
            ).scalar_one()
            assert held == 1
            begin_write(session)  # again in the same transaction: nothing more
        session.rollback()
    if engine.dialect.name == "postgresql":
        with Session(engine) as session:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            with pytest.raises(RuntimeError):
                begin_write(session)  # the lock would be released at once


def test_batches_and_single_writes_racing_draw_distinct_ids(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    """The batch route draws its rows' ids itself under the write lock (`registry.db.next_ids`):
    batches and single registrations released together all land, with no id given twice, every
    artifact at the id its answer named, and a clean audit."""
    per_batch = 5

    def request(i: int) -> Any:
        if i % 2:
            return post(
                client,
                registrar,
                registration_envelope(registrar.signer, "model", f"race/one-{i}@1"),
            )
        envelopes = [
            registration_envelope(registrar.signer, "model", f"race/batch-{i}-{k}@1")
            for k in range(per_batch)
        ]
        return client.post(
            "/v1/attestations/batch", json={"envelopes": envelopes}, headers=registrar.headers
        )

    responses = race(THREADS, request)
    assert statuses(responses) == Counter({201: THREADS}), [r.text for r in responses]
    answers = [a for r in responses for a in r.json().get("data", [r.json()])]
    assert len(answers) == THREADS // 2 * (per_batch + 1)
    att_ids = [a["attestation_id"] for a in answers]
    by_id = {a["artifact"]["id"]: a["artifact"]["digest"] for a in answers}
    assert len(set(att_ids)) == len(att_ids) and len(by_id) == len(answers)
    with engine.connect() as conn:
        stored = {i: d for i, d in conn.execute(text("SELECT id, digest FROM artifacts"))}
    assert stored == by_id
    assert_audit_clean(engine)
