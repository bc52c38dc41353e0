"""Tampering with the database behind the registry's back, and the audit that catches it.

Each test changes stored rows directly (as an insider with database access could), then checks
that `studbook log audit` names exactly the entry, node or row that changed and why, and that a
checkpoint saved before the change no longer verifies against the log after it.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from lineage.merkle import MemoryTree, ProofError, subtree_nodes
from registry.commands import EXIT_BLOCK, server_cli
from registry.log import offline
from registry.log.audit import LogFinding, audit
from registry.log.leaf import entry_bytes
from registry.models import Artifact, Attestation, LineageEdge, SigningKey
from registry.models.log import LogEntry, LogHead, LogNode
from registry.replay import ReplayFinding
from registry.settings import get_settings
from tests.integration.test_log import Reader, post, vkey_of
from tests.support import Actor, digest_of, registration_envelope

Client = TestClient[Any]
ENTRIES = LogEntry.__table__  # type: ignore[attr-defined]
NODES = LogNode.__table__  # type: ignore[attr-defined]
ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]

GRAPH = [
    ("model", "acme/base@1", []),
    ("dataset", "acme/numbers@1", [("generated_by", "acme/base@1")]),
    (
        "model",
        "acme/student@1",
        [("fine_tuned_from", "acme/base@1"), ("trained_on", "acme/numbers@1")],
    ),
    ("model", "acme/other@1", []),
    ("model", "acme/student-q@1", [("quantized_from", "acme/student@1")]),
]


def populate(client: Client, actor: Actor) -> list[dict[str, Any]]:
    """Register the graph above; entry i is GRAPH[i]."""
    envs = []
    for kind, label, parents in GRAPH:
        env = registration_envelope(
            actor.signer, kind, label, [(r, digest_of(p)) for r, p in parents]
        )
        assert post(client, actor, env).status_code == 201
        envs.append(env)
    return envs


def attestation_of(engine: Engine, index: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(ENTRIES.c.attestation_id).where(ENTRIES.c.idx == index)
            ).scalar_one()
        )


def kinds(findings: list[Any]) -> set[str]:
    return {str(f.kind) for f in findings}


def test_an_honest_registry_passes_the_audit(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    populate(client, registrar)
    saved = client.get("/v1/log/checkpoint").text
    post(client, registrar, registration_envelope(registrar.signer, "model", "acme/late@1"))
    # Revoking a key later does not invalidate what it signed while it was valid.
    assert client.post(f"/v1/keys/{registrar.signer.keyid}/revoke", headers=registrar.headers)
    report = audit(engine, vkey=vkey_of(client), checkpoints=[saved])
    assert report.ok, [str(f) for f in report.findings]
    assert (report.tree_size, report.entries) == (6, 6)
    assert [cp.size for cp in report.checkpoints] == [5]
    assert report.root_hash == report.stored_root
    assert base64.b64encode(report.root_hash).decode() == client.get("/v1/log").json()["root_hash"]
    assert report.replay is not None and report.replay.applied == 6
    assert report.replay.tables["artifacts"] == (6, 6)
    assert report.replay.tables["edges"] == (4, 4)


def test_a_changed_entry_is_reported_at_that_entry_and_breaks_saved_checkpoints(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    envs = populate(client, registrar)
    vkey = vkey_of(client)
    saved = client.get("/v1/log/checkpoint").text
    forged = entry_bytes({**envs[2], "payloadType": "application/x-forged"})
    with engine.begin() as conn:
        conn.execute(update(ENTRIES).where(ENTRIES.c.idx == 2).values(entry=forged))
    report = audit(engine, vkey=vkey, checkpoints=[saved])
    assert {f.log_index for f in report.findings if "checkpoint" not in f.kind} == {2}
    assert kinds(report.findings) == {
        LogFinding.ENTRY_ALTERED,  # its bytes no longer hash to the committed leaf
        LogFinding.ENVELOPE_ALTERED,  # the accepted envelope is not what the log holds
        LogFinding.CHECKPOINT_INCONSISTENT,  # the saved checkpoint's root is not the entries'
    }
    altered = [f for f in report.findings if f.kind is LogFinding.ENTRY_ALTERED]
    assert altered[0].where == f"log entry 2 (attestation {attestation_of(engine, 2)})"
    assert "changed after it was logged" in altered[0].message
    assert report.root_hash != report.stored_root


def test_a_changed_stored_envelope_is_reported(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    envs = populate(client, registrar)
    att = attestation_of(engine, 1)
    with engine.begin() as conn:  # an unsigned field: the signature still verifies
        conn.execute(
            update(ATTESTATIONS)
            .where(ATTESTATIONS.c.id == att)
            .values(envelope={**envs[1], "note": "approved"})
        )
    report = audit(engine)
    assert [(f.kind, f.log_index, f.attestation_id) for f in report.findings] == [
        (LogFinding.ENVELOPE_ALTERED, 1, att)
    ]
    # A change to what was signed also fails the signature on replay.
    other = registration_envelope(registrar.signer, "dataset", "acme/numbers@2")
    with engine.begin() as conn:
        conn.execute(
            update(ATTESTATIONS)
            .where(ATTESTATIONS.c.id == att)
            .values(envelope={**envs[1], "payload": other["payload"]})
        )
    report = audit(engine)
    # The replay applies the logged bytes, so the edited row is one finding, not a cascade.
    assert [(f.kind, f.log_index, f.attestation_id) for f in report.findings] == [
        (LogFinding.ENVELOPE_ALTERED, 1, att)
    ]
    assert "fields changed: payload" in report.findings[0].message


def test_a_deleted_entry_is_reported(client: Client, registrar: Actor, engine: Engine) -> None:
    populate(client, registrar)
    att = attestation_of(engine, 3)
    with engine.begin() as conn:
        conn.execute(delete(ENTRIES).where(ENTRIES.c.idx == 3))
    report = audit(engine, rebuild=False)
    assert [(f.kind, f.log_index, f.attestation_id) for f in report.findings] == [
        (LogFinding.ENTRY_MISSING, 3, None),
        (LogFinding.NOT_LOGGED, None, att),
    ]
    assert "deleted" in report.findings[0].message


def test_changed_or_deleted_derived_rows_are_reported_by_natural_key(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    populate(client, registrar)
    student, base = digest_of("acme/student@1"), digest_of("acme/base@1")
    edges, artifacts = LineageEdge.__table__, Artifact.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        ids = dict(conn.execute(select(artifacts.c.digest, artifacts.c.id)).all())
        conn.execute(
            delete(edges).where(
                edges.c.child_id == ids[student],
                edges.c.parent_id == ids[base],
                edges.c.relation == "fine_tuned_from",
            )
        )
        conn.execute(
            update(artifacts).where(artifacts.c.digest == base).values(name="acme/renamed")
        )
    report = audit(engine)
    assert sorted((str(f.kind), f.where) for f in report.findings) == [
        (ReplayFinding.DERIVED_CHANGED, f"artifacts[digest={base}]"),
        (
            ReplayFinding.DERIVED_MISSING,
            f"edges[child={student}, parent={base}, relation=fine_tuned_from]",
        ),
    ]
    changed = next(f for f in report.findings if f.kind is ReplayFinding.DERIVED_CHANGED)
    assert changed.message == "name: stored 'acme/renamed', envelopes say 'acme/base'"


def test_an_altered_interior_node_is_reported_and_proofs_through_it_fail(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    envs = populate(client, registrar)
    vkey = vkey_of(client)
    with engine.begin() as conn:
        conn.execute(
            update(NODES).where(NODES.c.level == 1, NODES.c.idx == 0).values(hash=b"\x07" * 32)
        )
    report = audit(engine, rebuild=False)
    assert [(f.kind, f.where) for f in report.findings] == [
        (LogFinding.NODE_ALTERED, "node (level 1, index 0)")
    ]
    # Leaf 2's audit path goes through the altered node: the client's check fails.
    with pytest.raises(ProofError):
        offline.check_inclusion(Reader(client), envs[2], vkey)
    assert offline.check_inclusion(Reader(client), envs[4], vkey).index == 4


def test_an_altered_log_head_is_reported_and_breaks_saved_checkpoints(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    populate(client, registrar)
    vkey, saved = vkey_of(client), client.get("/v1/log/checkpoint").text
    head = LogHead.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        frontier = bytes(conn.execute(select(head.c.frontier)).scalar_one())
        conn.execute(update(head).values(frontier=frontier[:32] + b"\x09" * 32))
    report = audit(engine, rebuild=False)
    assert [(f.kind, f.where) for f in report.findings] == [(LogFinding.HEAD_ALTERED, "log head")]
    assert "(level 0, index 4)" in report.findings[0].message
    with pytest.raises(ProofError, match="forked"):
        offline.check_consistency(Reader(client), saved, vkey)


def test_a_history_rewritten_consistently_passes_everything_but_a_saved_checkpoint(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    """The insider rewrites an envelope, its log entry and every node to match. Only a checkpoint
    saved earlier (by a client, a witness, an auditor) can tell, and it does."""
    envs = populate(client, registrar)
    vkey, saved = vkey_of(client), client.get("/v1/log/checkpoint").text
    # Still a valid envelope (the keyid is an unsigned hint), so only the bytes differ.
    rewritten = {**envs[1], "signatures": [{**envs[1]["signatures"][0], "keyid": ""}]}
    att = attestation_of(engine, 1)
    with engine.begin() as conn:
        conn.execute(
            update(ATTESTATIONS).where(ATTESTATIONS.c.id == att).values(envelope=rewritten)
        )
        conn.execute(update(ENTRIES).where(ENTRIES.c.idx == 1).values(entry=entry_bytes(rewritten)))
        entries = [
            bytes(e) for (e,) in conn.execute(select(ENTRIES.c.entry).order_by(ENTRIES.c.idx))
        ]
        from registry.log.leaf import envelope_digest

        conn.execute(
            update(ENTRIES)
            .where(ENTRIES.c.idx == 1)
            .values(envelope_digest=envelope_digest(entry_bytes(rewritten)))
        )
        tree = MemoryTree.from_entries(entries)
        frontier = b"".join(tree.get_node(*n) for n in subtree_nodes(0, tree.size))
        conn.execute(update(LogHead.__table__).values(frontier=frontier))  # type: ignore[attr-defined]
        conn.execute(delete(NODES))
        conn.execute(
            NODES.insert(),
            [
                {"level": level, "idx": idx, "hash": tree.get_node(level, idx)}
                for level in range(tree.size.bit_length())
                for idx in range(tree.size >> level)
            ],
        )
    assert audit(engine).ok  # internally consistent: entries, nodes, envelopes, signatures
    post(client, registrar, registration_envelope(registrar.signer, "model", "acme/after@1"))
    report = audit(engine, vkey=vkey, checkpoints=[saved], rebuild=False)
    assert [(f.kind, f.where) for f in report.findings] == [
        (LogFinding.CHECKPOINT_INCONSISTENT, "saved checkpoint #1 (size 5)")
    ]
    with pytest.raises(ProofError, match="old root"):
        offline.check_consistency(Reader(client), saved, vkey)


def test_a_key_revoked_before_an_attestation_was_received_invalidates_it(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    populate(client, registrar)
    keys = SigningKey.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        first = conn.execute(
            select(ATTESTATIONS.c.received_at).order_by(ATTESTATIONS.c.id)
        ).scalar()
        conn.execute(
            update(keys)
            .where(keys.c.keyid == registrar.signer.keyid)
            .values(revoked_at=first - timedelta(seconds=1))
        )
    report = audit(engine)
    invalid = [f for f in report.findings if f.kind is ReplayFinding.SIGNATURE_INVALID]
    assert [f.log_index for f in invalid] == [0, 1, 2, 3, 4]
    assert "revoked" in invalid[0].message


def test_rows_beyond_the_head_are_reported_as_a_partial_append(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    populate(client, registrar)
    head = LogHead.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(update(head).values(size=4))
    report = audit(engine, rebuild=False)
    assert [(str(f.kind), f.where) for f in report.findings] == [
        (LogFinding.ENTRY_UNEXPECTED, f"log entry 4 (attestation {attestation_of(engine, 4)})"),
        (LogFinding.NODE_UNEXPECTED, "node (level 0, index 4)"),
        (LogFinding.HEAD_ALTERED, "log head"),  # its frontier is for 5 entries
    ]


def test_the_audit_command(
    client: Client,
    registrar: Actor,
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    populate(client, registrar)
    saved = tmp_path / "checkpoint.txt"
    saved.write_text(client.get("/v1/log/checkpoint").text)
    monkeypatch.setenv("STUDBOOK_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(server_cli, ["log-audit", "--checkpoint", str(saved)])
        assert ok.exit_code == 0, ok.output
        assert "audit passed" in ok.output and "saved checkpoint of size 5" in ok.output
        with engine.begin() as conn:
            conn.execute(update(ENTRIES).where(ENTRIES.c.idx == 0).values(entry=b"{}"))
        bad = runner.invoke(server_cli, ["log-audit", "--json", "--no-rebuild"])
        assert bad.exit_code == EXIT_BLOCK
        findings = json.loads(bad.stdout)
        assert {f["log_index"] for f in findings} == {0}
        assert {f["kind"] for f in findings} == {"entry_altered", "envelope_altered"}
    finally:
        get_settings.cache_clear()
