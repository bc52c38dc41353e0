"""Read routes end their transaction in their own thread, and every request's session is
closed whatever the handler did: no connection is left checked out of the pool, and one a read
used without a transaction (`registry.deps.read_only`) serves a writer afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support import Actor, register


def test_no_connection_outlives_a_request(
    client: TestClient[Any], engine: Engine, registrar: Actor
) -> None:
    register(client, registrar, "model", "pool/base@1")
    register(client, registrar, "dataset", "pool/data@1")
    h = registrar.headers
    before = engine.pool.checkedout()  # type: ignore[attr-defined]
    # More requests than the pool holds (size + overflow), mixing answers, refusals half-way
    # through a read (an unknown dataset, a dataset given as the base) and malformed bodies.
    for i in range(40):
        ok = client.post(
            "/v1/checks/fine-tune",
            json={"base": "pool/base@1", "datasets": ["pool/data@1"]},
            headers=h,
        )
        assert ok.status_code == 200, ok.text
        missing = client.post(
            "/v1/checks/fine-tune",
            json={"base": "pool/base@1", "datasets": [f"no/such@{i}"]},
            headers=h,
        )
        assert (missing.status_code, missing.json()["field"]) == (404, "datasets[0]")
        wrong = client.post("/v1/checks/fine-tune", json={"base": "pool/data@1"}, headers=h)
        assert wrong.status_code == 400
        assert client.get("/v1/artifacts/pool/base@1/risk", headers=h).json()["status"] == "no_risk"
        assert client.get(f"/v1/artifacts/no/such@{i}/risk", headers=h).status_code == 404
        if i % 10 == 0:
            # A write after reads: the connections the checks used (without a transaction on
            # PostgreSQL) come back from the pool as writers' connections again.
            register(
                client,
                registrar,
                "model",
                f"pool/after-{i}@1",
                [("fine_tuned_from", "pool/base@1")],
            )
    assert engine.pool.checkedout() == before  # type: ignore[attr-defined]


def test_a_read_only_session_refuses_to_become_a_writer(
    client: TestClient[Any], engine: Engine
) -> None:
    from sqlmodel import Session

    from registry.db import begin_write
    from registry.deps import read_only

    with Session(engine) as session:
        read_only(session)
        session.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError):
            begin_write(session)
