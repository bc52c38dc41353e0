"""The transparency log on SQLite and PostgreSQL: appends in the ingest transaction, proofs from
the stored nodes equal to recomputation from scratch, signed checkpoints, concurrent writers."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import dsse
from lineage.checkpoint import parse_vkey, verify_checkpoint
from lineage.merkle import MemoryTree, leaf_hash, verify_consistency, verify_inclusion
from registry.app import create_app
from registry.attestations import service as attestations
from registry.auth import authenticate
from registry.db import make_engine, upgrade
from registry.log import offline
from registry.log import service as log
from registry.log.audit import audit
from registry.log.leaf import entry_bytes
from registry.models import Attestation, Principal, SigningKey
from registry.models.log import LogEntry, LogHead, LogKey
from registry.settings import Settings
from studbook_cli.client import ApiError
from tests.support import (
    Actor,
    digest_of,
    postgres_database,
    register,
    registration_envelope,
    row_counts,
)

Client = TestClient[Any]


def b64d(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def b64e(value: bytes) -> str:
    return base64.b64encode(value).decode()


def vkey_of(client: Client) -> str:
    return str(client.get("/v1/log").json()["vkey"])


def post(client: Client, actor: Actor, env: dict[str, Any]) -> Any:
    return client.post("/v1/attestations", json=env, headers=actor.headers)


class Reader:
    """`offline.LogReader` over the test client, raising `ApiError` like the real client."""

    def __init__(self, client: Client, headers: dict[str, str] | None = None) -> None:
        self.client, self.headers = client, headers or {}

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params, headers=self.headers)
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.json()["detail"], r.json())
        return r.json() if "json" in r.headers["content-type"] else r.content


def build_log(client: Client, actor: Actor, n: int, prefix: str = "log/m") -> list[bytes]:
    """Register n artifacts (every third one a fine-tune of the previous); return the entries."""
    entries = []
    for i in range(n):
        parents = [("fine_tuned_from", digest_of(f"{prefix}{i - 1}@1"))] if i % 3 == 2 else []
        env = registration_envelope(actor.signer, "model", f"{prefix}{i}@1", parents)
        r = post(client, actor, env)
        assert r.status_code == 201, r.text
        entries.append(entry_bytes(env))
    return entries


# ----------------------------------------------------------------------------- appends


def test_each_accepted_envelope_is_the_next_leaf_with_a_proof_that_verifies(
    client: Client, registrar: Actor
) -> None:
    vkey = vkey_of(client)
    entries = []
    for i in range(6):
        env = registration_envelope(registrar.signer, "model", f"log/m{i}@1")
        body = post(client, registrar, env).json()
        entry = entry_bytes(env)
        entries.append(entry)
        proof = body["inclusion_proof"]
        assert body["log_index"] == proof["log_index"] == i
        assert proof["tree_size"] == i + 1
        assert proof["envelope_digest"] == hashlib.sha256(entry).hexdigest()
        assert b64d(proof["leaf_hash"]) == leaf_hash(entry)
        checkpoint = verify_checkpoint(proof["checkpoint"], vkey)
        assert (checkpoint.size, b64e(checkpoint.root_hash)) == (i + 1, proof["root_hash"])
        hashes = [b64d(h) for h in proof["hashes"]]
        verify_inclusion(leaf_hash(entry), i, i + 1, hashes, checkpoint.root_hash)
    info = client.get("/v1/log").json()
    assert info["tree_size"] == 6
    assert b64d(info["root_hash"]) == MemoryTree.from_entries(entries).root()


def test_a_resubmission_gets_its_index_and_a_proof_at_the_current_size(
    client: Client, registrar: Actor
) -> None:
    first = registration_envelope(registrar.signer, "model", "log/a@1")
    assert post(client, registrar, first).json()["log_index"] == 0
    build_log(client, registrar, 4, prefix="log/b")
    again = post(client, registrar, first)
    assert again.status_code == 200 and again.json()["created"] is False
    proof = again.json()["inclusion_proof"]
    assert again.json()["log_index"] == 0 and proof["tree_size"] == 5
    checkpoint = verify_checkpoint(proof["checkpoint"], vkey_of(client))
    hashes = [b64d(h) for h in proof["hashes"]]
    verify_inclusion(leaf_hash(entry_bytes(first)), 0, 5, hashes, checkpoint.root_hash)
    assert client.get("/v1/log").json()["tree_size"] == 5


def test_a_refused_submission_appends_nothing(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    build_log(client, registrar, 3)
    before = row_counts(engine)
    orphan = registration_envelope(
        registrar.signer, "model", "log/orphan@1", [("fine_tuned_from", digest_of("nowhere@1"))]
    )
    assert post(client, registrar, orphan).status_code == 422
    assert row_counts(engine) == before
    assert client.get("/v1/log").json()["tree_size"] == 3
    assert post(client, registrar, registration_envelope(registrar.signer, "model", "log/x@1"))
    assert client.get("/v1/log").json()["tree_size"] == 4


def test_entries_serve_the_exact_hashed_bytes(client: Client, registrar: Actor) -> None:
    entries = build_log(client, registrar, 5)
    body = client.get("/v1/log/entries?start=1&end=3", headers=registrar.headers).json()
    assert (body["start"], body["end"], body["tree_size"]) == (1, 3, 5)
    assert [e["index"] for e in body["entries"]] == [1, 2, 3]
    for e in body["entries"]:
        raw = b64d(e["entry"])
        assert raw == entries[e["index"]]
        assert hashlib.sha256(raw).hexdigest() == e["envelope_digest"]
    # RFC 9162 get-entries: an end past the log is answered up to the last entry.
    tail = client.get("/v1/log/entries?start=3&end=99", headers=registrar.headers).json()
    assert [e["index"] for e in tail["entries"]] == [3, 4] and tail["end"] == 4
    everything = client.get("/v1/log/entries?start=0", headers=registrar.headers).json()
    leaves = [leaf_hash(b64d(e["entry"])) for e in everything["entries"]]
    assert b64e(MemoryTree(leaves).root()) == client.get("/v1/log").json()["root_hash"]


def test_entries_are_paged(
    client: Client, registrar: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_log(client, registrar, 5)
    monkeypatch.setattr(log, "MAX_ENTRIES", 2)
    body = client.get("/v1/log/entries?start=1&end=4", headers=registrar.headers).json()
    assert [e["index"] for e in body["entries"]] == [1, 2] and body["end"] == 2


def test_entries_need_a_token_but_checkpoints_and_proofs_do_not(
    client: Client, registrar: Actor
) -> None:
    build_log(client, registrar, 2)
    assert client.get("/v1/log/entries?start=0").status_code == 401
    assert client.get("/v1/log/checkpoint").status_code == 200
    assert client.get("/v1/log/proof/inclusion?index=0").status_code == 200
    assert client.get("/v1/log/proof/consistency?from=1").status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("proof/inclusion?index=5", 400, "index"),
        ("proof/inclusion?index=2&tree_size=2", 400, "index"),
        ("proof/inclusion?index=0&tree_size=9", 400, "tree_size"),
        ("proof/inclusion?index=-1", 400, None),
        ("proof/inclusion?index=x", 400, None),
        ("proof/inclusion", 400, "index"),
        ("proof/inclusion?index=0&digest=" + "0" * 64, 400, "index"),
        ("proof/inclusion?digest=abc", 400, "digest"),
        ("proof/inclusion?digest=" + "0" * 64, 404, "digest"),
        ("proof/inclusion?payload_digest=" + "f" * 64, 404, "payload_digest"),
        ("proof/consistency?from=4&to=3", 400, "from"),
        ("proof/consistency?from=1&to=9", 400, "to"),
        ("proof/consistency", 400, None),
        ("entries?start=3", 400, "start"),
        ("entries?start=2&end=1", 400, "end"),
    ],
)
def test_bad_log_requests_are_refused_naming_the_field(
    client: Client, registrar: Actor, query: str, status: int, field: str | None
) -> None:
    build_log(client, registrar, 3)
    r = client.get(f"/v1/log/{query}", headers=registrar.headers)
    assert r.status_code == status, r.text
    if field is not None:
        assert r.json().get("field") == field, r.text


def test_a_proof_can_be_asked_by_digest_or_payload_digest(client: Client, registrar: Actor) -> None:
    build_log(client, registrar, 2)
    env = registration_envelope(registrar.signer, "dataset", "log/d@1")
    accepted = post(client, registrar, env).json()
    build_log(client, registrar, 2, prefix="log/later")
    digest = hashlib.sha256(entry_bytes(env)).hexdigest()
    by_index = client.get("/v1/log/proof/inclusion?index=2").json()
    by_digest = client.get(f"/v1/log/proof/inclusion?digest=sha256:{digest}").json()
    by_payload = client.get(
        f"/v1/log/proof/inclusion?payload_digest={accepted['payload_digest']}"
    ).json()
    assert by_index == by_digest == by_payload
    assert by_index["log_index"] == 2 and by_index["tree_size"] == 5
    older = client.get(f"/v1/log/proof/inclusion?digest={digest}&tree_size=3").json()
    assert older["tree_size"] == 3
    checkpoint = verify_checkpoint(older["checkpoint"], vkey_of(client))
    verify_inclusion(
        leaf_hash(entry_bytes(env)), 2, 3, [b64d(h) for h in older["hashes"]], checkpoint.root_hash
    )


# ----------------------------------------------------------------------------- proofs


def test_stored_proofs_equal_recomputation_for_every_index_and_every_pair_of_sizes(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    """Exhaustive up to 37 leaves (trees of depth 6 with every shape of right edge)."""
    entries = build_log(client, registrar, 37)
    tree = MemoryTree.from_entries(entries)
    with Session(engine) as session:
        notary = log.notary_for(session)
        for size in range(1, tree.size + 1):
            root = tree.root(size)
            for index in range(size):
                got = log.inclusion(session, notary, index=index, size=size)
                hashes = [b64d(h) for h in got.hashes]
                assert hashes == tree.inclusion_proof(index, size)
                assert b64d(got.root_hash) == root
                verify_inclusion(tree.leaf_hash_at(index), index, size, hashes, root)
            for old in range(size + 1):
                c = log.consistency(session, notary, old, size)
                hashes = [b64d(h) for h in c.hashes]
                assert hashes == tree.consistency_proof(old, size)
                assert b64d(c.from_root) == tree.root(old)
                verify_consistency(old, size, tree.root(old), root, hashes)


def _append_synthetic(engine: Engine, registrar: Actor, n: int) -> list[bytes]:
    """Append n entries through `log.append` with bare attestation rows (no handler)."""
    entries = []
    with Session(engine) as session:
        caller = authenticate(session, f"Bearer {registrar.token}")
        notary = log.notary_for(session)
        for i in range(n):
            env = {"payload": b64e(b"%d" % i), "payloadType": "x", "signatures": []}
            att_id = session.execute(
                insert(Attestation.__table__)  # type: ignore[attr-defined]
                .values(
                    payload_digest=hashlib.sha256(b"%d" % i).hexdigest(),
                    predicate_type="synthetic",
                    envelope=env,
                    signer_keyid=registrar.signer.keyid,
                    principal_id=caller.id,
                    received_at=datetime.now(UTC),
                )
                .returning(Attestation.__table__.c.id)  # type: ignore[attr-defined]
            ).scalar_one()
            log.append(session, att_id, entry_bytes(env), notary)
            entries.append(entry_bytes(env))
        session.commit()
    return entries


@pytest.mark.slow
def test_stored_proofs_equal_recomputation_at_random_sizes(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    entries = _append_synthetic(engine, registrar, 300)
    tree = MemoryTree.from_entries(entries)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        size = data.draw(st.integers(1, tree.size))
        index = data.draw(st.integers(0, size - 1))
        old = data.draw(st.integers(0, size))
        with Session(engine) as session:
            notary = log.notary_for(session)
            got = log.inclusion(session, notary, index=index, size=size)
            assert [b64d(h) for h in got.hashes] == tree.inclusion_proof(index, size)
            c = log.consistency(session, notary, old, size)
            assert [b64d(h) for h in c.hashes] == tree.consistency_proof(old, size)
            assert b64d(c.to_root) == tree.root(size)

    check()


def test_an_unusable_frontier_is_read_from_the_nodes_and_rewritten(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    entries = build_log(client, registrar, 6)
    with engine.begin() as conn:
        conn.execute(update(LogHead.__table__).values(frontier=b""))  # type: ignore[attr-defined]
    assert (
        b64d(client.get("/v1/log").json()["root_hash"]) == MemoryTree.from_entries(entries).root()
    )
    entries += build_log(client, registrar, 1, prefix="log/next")
    tree = MemoryTree.from_entries(entries)
    assert b64d(client.get("/v1/log").json()["root_hash"]) == tree.root()
    report = audit(engine, rebuild=False)
    assert report.ok, [str(f) for f in report.findings]


# ----------------------------------------------------------------------------- checkpoints, key


def test_the_checkpoint_is_a_c2sp_signed_note(
    client: Client, registrar: Actor, settings: Settings
) -> None:
    entries = build_log(client, registrar, 3)
    r = client.get("/v1/log/checkpoint")
    assert r.headers["content-type"].startswith("text/plain")
    text, _, signatures = r.text.partition("\n\n")
    origin, size, root = text.split("\n")
    # Each deployment's log gets its own origin at its first start, shown by `GET /v1/log`.
    own = client.get("/v1/log").json()["origin"]
    assert settings.log_origin is None and own.startswith("studbook/") and len(own) > 16
    assert (origin, size) == (own, "3")
    assert b64d(root) == MemoryTree.from_entries(entries).root()
    assert signatures.startswith(f"\u2014 {own} ") and signatures.endswith("\n")
    checkpoint = verify_checkpoint(r.text, vkey_of(client), origin=own)
    assert checkpoint.size == 3


def test_the_log_key_is_created_once_in_a_private_file_and_only_its_public_half_in_the_database(
    client: Client, engine: Engine, settings: Settings
) -> None:
    first = vkey_of(client)
    create_app(settings, engine=engine)  # a restart, or a second replica
    assert vkey_of(client) == first
    path = settings.log_key_path
    assert path == settings.data_dir / "log-key.pem"
    assert (os.stat(path).st_mode & 0o777) == 0o600
    key = dsse.load_private_key(path.read_bytes())
    with Session(engine) as session:
        rows = session.execute(select(LogKey.__table__)).mappings().all()  # type: ignore[attr-defined]
    assert len(rows) == 1 and set(rows[0]) == {"id", "origin", "public_key", "created_at"}
    name, public = parse_vkey(first)
    assert name == rows[0]["origin"]
    assert base64.b64decode(rows[0]["public_key"]) == public.public_bytes_raw()
    assert dsse.keyid(key.public_key()) == dsse.keyid(dsse.load_public_key(rows[0]["public_key"]))


def test_the_log_key_can_live_in_a_file(client: Client, engine: Engine, settings: Settings) -> None:
    path = settings.data_dir / "keys" / "log.pem"
    configured = settings.model_copy(update={"log_key_file": path, "log_origin": "example.org/x"})
    with pytest.raises(log.LogKeyError):  # another origin (and key) would be another log
        log.install(engine, configured)
    with Session(engine) as session:  # a new log on this database
        session.execute(delete(LogKey))
        session.commit()
    notary = log.install(engine, configured)
    try:
        assert path.exists() and (os.stat(path).st_mode & 0o777) == 0o600
        assert log.install(engine, configured).vkey == notary.vkey  # read back, not replaced
        assert notary.vkey.startswith("example.org/x+")
        assert vkey_of(client) == notary.vkey
        assert client.get("/v1/log").json()["origin"] == "example.org/x"
        key = dsse.load_private_key(Path(path).read_bytes())
        assert dsse.keyid(key.public_key()) == dsse.keyid(notary.private_key.public_key())
    finally:
        with Session(engine) as session:
            session.execute(delete(LogKey))
            session.commit()
        log.install(engine, settings)


def test_hooks_are_installed_once(engine: Engine, settings: Settings, client: Client) -> None:
    create_app(settings, engine=engine)
    create_app(settings, engine=engine)
    hooks = [h for h in attestations.AFTER_ACCEPT if h.__module__ == log.__name__]
    assert len(hooks) == 1
    described = [h for h in attestations.DESCRIBE_EXISTING if h.__module__ == log.__name__]
    assert len(described) == 1


# ----------------------------------------------------------------------------- offline checks


def test_offline_checks_accept_an_honest_log(client: Client, registrar: Actor) -> None:
    build_log(client, registrar, 3)
    vkey = vkey_of(client)
    saved = client.get("/v1/log/checkpoint").text
    env = registration_envelope(registrar.signer, "model", "log/late@1")
    post(client, registrar, env)
    build_log(client, registrar, 2, prefix="log/later")
    reader = Reader(client, registrar.headers)
    check = offline.check_consistency(reader, saved, vkey)
    assert (check.old.size, check.new.size) == (3, 6)
    included = offline.check_inclusion(reader, env, vkey)
    assert (included.index, included.checkpoint.size) == (3, 6)
    verified = offline.verify_signature(env, {registrar.signer.keyid: registrar.signer.public_key})
    assert verified.keyid == registrar.signer.keyid


def test_offline_inclusion_rejects_an_envelope_that_is_not_logged(
    client: Client, registrar: Actor
) -> None:
    build_log(client, registrar, 2)
    stranger = registration_envelope(registrar.signer, "model", "log/never-sent@1")
    with pytest.raises(ApiError) as err:
        offline.check_inclusion(Reader(client), stranger, vkey_of(client))
    assert err.value.status == 404


# ----------------------------------------------------------------------------- concurrency


def test_concurrent_writers_get_consecutive_indices(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    threads, per_thread = 6, 12
    envs = [
        [
            registration_envelope(registrar.signer, "model", f"conc/t{t}-{i}@1")
            for i in range(per_thread)
        ]
        for t in range(threads)
    ]
    indices: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(batch: list[dict[str, Any]]) -> None:
        try:
            with Session(engine) as session:
                caller = authenticate(session, f"Bearer {registrar.token}")
            start.wait()
            for env in batch:
                with Session(engine, expire_on_commit=False) as session:
                    sub = attestations.submit(session, caller, env)
                with lock:
                    indices.append(sub.outcome["log_index"])
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(batch,)) for batch in envs]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    assert not errors, errors
    assert sorted(indices) == list(range(threads * per_thread))
    with Session(engine) as session:
        logged = session.scalars(select(LogEntry.idx).order_by(LogEntry.idx)).all()  # type: ignore[arg-type]
    assert list(logged) == list(range(threads * per_thread))
    report = audit(engine, rebuild=False)
    assert report.ok, [str(f) for f in report.findings]
    assert report.root_hash == b64d(client.get("/v1/log").json()["root_hash"])


def test_register_helper_answers_carry_the_log_fields(client: Client, registrar: Actor) -> None:
    body = register(client, registrar, "model", "log/helper@1")
    assert body["log_index"] == 0 and body["inclusion_proof"]["tree_size"] == 1


# ----------------------------------------------------------------------------- migration


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url_at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0001")
        yield url
    else:
        gen = postgres_database()
        url = next(gen)
        upgrade(url, "0001")
        yield url
        for _ in gen:
            pass


def test_upgrading_logs_the_attestations_accepted_before_the_log(
    url_at_0001: str, tmp_path: Path
) -> None:
    signer = dsse.Signer(dsse.generate_private_key())
    envs = [registration_envelope(signer, "model", f"old/m{i}@1") for i in range(7)]
    now = datetime.now(UTC)
    engine = make_engine(url_at_0001)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Principal.__table__).values(id=1, name="p", role="registrar", created_at=now)  # type: ignore[attr-defined]
            )
            conn.execute(
                insert(SigningKey.__table__).values(  # type: ignore[attr-defined]
                    keyid=signer.keyid,
                    public_key=dsse.public_key_b64(signer.public_key),
                    principal_id=1,
                    created_at=now,
                )
            )
            for i, env in enumerate(envs):
                conn.execute(
                    insert(Attestation.__table__).values(  # type: ignore[attr-defined]
                        id=10 + i,
                        payload_digest=hashlib.sha256(b"%d" % i).hexdigest(),
                        predicate_type="old",
                        envelope=env,
                        signer_keyid=signer.keyid,
                        principal_id=1,
                        received_at=now,
                    )
                )
        upgrade(url_at_0001)
        with engine.connect() as conn:
            rows = conn.execute(
                select(LogEntry.idx, LogEntry.attestation_id, LogEntry.entry).order_by(LogEntry.idx)  # type: ignore[arg-type]
            ).all()
        assert [(r[0], r[1]) for r in rows] == [(i, 10 + i) for i in range(7)]
        assert [bytes(r[2]) for r in rows] == [entry_bytes(e) for e in envs]
        report = audit(engine, rebuild=False)
        assert report.ok, [str(f) for f in report.findings]
        assert report.root_hash == MemoryTree.from_entries(entry_bytes(e) for e in envs).root()
        # The log carries on from the migrated head.
        notary = log.install(engine, Settings(data_dir=tmp_path, database_url=url_at_0001))
        with Session(engine) as session:
            extra = {"payload": "eA==", "payloadType": "x", "signatures": []}
            att = session.execute(
                insert(Attestation.__table__)  # type: ignore[attr-defined]
                .values(
                    payload_digest="e" * 64,
                    predicate_type="old",
                    envelope=extra,
                    signer_keyid=signer.keyid,
                    principal_id=1,
                    received_at=now,
                )
                .returning(Attestation.__table__.c.id)  # type: ignore[attr-defined]
            ).scalar_one()
            proof = log.append(session, att, entry_bytes(extra), notary)
            session.commit()
        tree = MemoryTree.from_entries([*(entry_bytes(e) for e in envs), entry_bytes(extra)])
        assert proof.log_index == 7 and b64d(proof.root_hash) == tree.root()
        assert audit(engine, rebuild=False).ok
    finally:
        engine.dispose()
