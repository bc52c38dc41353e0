"""One edited envelope row is exactly one audit finding, naming the entry and the attestation.

The audit replays the bytes the log committed to, not the `attestations.envelope` rows, so an
edit to a row is reported where it is (`envelope_altered`) and nothing downstream of it cascades:
no signature failure from re-verifying the edit, no derived-table difference from re-applying it.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from registry.log.audit import LogFinding, audit
from registry.models import Attestation
from registry.models.log import LogEntry
from tests.support import Actor, digest_of, registration_envelope

Client = TestClient[Any]
ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]
ENTRIES = LogEntry.__table__  # type: ignore[attr-defined]


def populate(client: Client, actor: Actor) -> list[dict[str, Any]]:
    """A small graph: a base, a teacher from it, its data, a student trained on the data."""
    envs = [
        registration_envelope(actor.signer, "model", "acme/base@1"),
        registration_envelope(
            actor.signer,
            "model",
            "acme/teacher@1",
            parents=[("fine_tuned_from", digest_of("acme/base@1"))],
        ),
        registration_envelope(
            actor.signer,
            "dataset",
            "acme/numbers@1",
            parents=[("generated_by", digest_of("acme/teacher@1"))],
        ),
        registration_envelope(
            actor.signer,
            "model",
            "acme/student@1",
            parents=[
                ("fine_tuned_from", digest_of("acme/base@1")),
                ("trained_on", digest_of("acme/numbers@1")),
            ],
        ),
    ]
    for env in envs:
        r = client.post("/v1/attestations", json=env, headers=actor.headers)
        assert r.status_code == 201, r.text
    return envs


def attestation_at(engine: Engine, index: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(ENTRIES.c.attestation_id).where(ENTRIES.c.idx == index)
            ).scalar_one()
        )


def edits(envs: list[dict[str, Any]], actor: Actor) -> dict[str, dict[str, Any]]:
    """Ways an insider might edit the teacher's stored envelope (log entry 1)."""
    other = registration_envelope(actor.signer, "model", "acme/forged@1")
    sig = envs[1]["signatures"][0]
    return {
        "an unsigned extra field": {**envs[1], "note": "approved"},
        "another payload": {**envs[1], "payload": other["payload"]},
        "a whole other signed envelope": other,
        "a forged signature": {
            **envs[1],
            "signatures": [{**sig, "sig": other["signatures"][0]["sig"]}],
        },
        "a second signature": {**envs[1], "signatures": [sig, {"keyid": "x", "sig": sig["sig"]}]},
        "an emptied envelope": {},
    }


@pytest.mark.parametrize(
    "edit",
    [
        "an unsigned extra field",
        "another payload",
        "a whole other signed envelope",
        "a forged signature",
        "a second signature",
        "an emptied envelope",
    ],
)
def test_one_edited_envelope_row_is_one_finding(
    client: Client, registrar: Actor, engine: Engine, edit: str
) -> None:
    envs = populate(client, registrar)
    assert audit(engine).ok
    att = attestation_at(engine, 1)
    with engine.begin() as conn:
        conn.execute(
            update(ATTESTATIONS)
            .where(ATTESTATIONS.c.id == att)
            .values(envelope=edits(envs, registrar)[edit])
        )
    report = audit(engine)
    assert [(f.kind, f.log_index, f.attestation_id) for f in report.findings] == [
        (LogFinding.ENVELOPE_ALTERED, 1, att)
    ], [str(f) for f in report.findings]
    (finding,) = report.findings
    assert finding.where == f"log entry 1 (attestation {att})"
    # The replay still rebuilt everything from the logged bytes, the edited entry included.
    assert report.replay is not None and report.replay.applied == len(envs)
    assert report.replay.tables["edges"] == (4, 4)


def test_every_row_edited_is_one_finding_each(
    client: Client, registrar: Actor, engine: Engine
) -> None:
    envs = populate(client, registrar)
    atts = [attestation_at(engine, i) for i in range(len(envs))]
    with engine.begin() as conn:
        for att in atts[1:3]:
            conn.execute(
                update(ATTESTATIONS).where(ATTESTATIONS.c.id == att).values(envelope={"x": 1})
            )
    report = audit(engine)
    assert [(f.kind, f.log_index) for f in report.findings] == [
        (LogFinding.ENVELOPE_ALTERED, 1),
        (LogFinding.ENVELOPE_ALTERED, 2),
    ]
    # Nothing cascades: the derived rows those envelopes declared still match the log.
    assert report.replay is not None and report.replay.applied == len(envs)
