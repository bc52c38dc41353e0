"""Helpers shared by integration and end-to-end tests: databases, principals, signed envelopes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

from lineage import dsse
from lineage.digests import opaque_digest
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation
from registry.auth import Role
from registry.principals.service import create_principal

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """Server used for PostgreSQL tests (a fresh database is created on it)."""
    return os.environ.get("STUDBOOK_TEST_POSTGRES_URL", DEFAULT_PG)


def postgres_required() -> bool:
    """CI sets STUDBOOK_TEST_POSTGRES=require so an unreachable server fails instead of skipping."""
    return os.environ.get("STUDBOOK_TEST_POSTGRES", "").lower() in {"1", "require", "required"}


def postgres_skipped() -> bool:
    """STUDBOOK_TEST_POSTGRES=skip runs the suite on SQLite alone, without trying to connect."""
    return os.environ.get("STUDBOOK_TEST_POSTGRES", "").lower() in {"0", "skip", "no", "off"}


def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test session; dropped afterwards."""
    import psycopg

    if postgres_skipped():
        pytest.skip("PostgreSQL skipped (STUDBOOK_TEST_POSTGRES=skip)")
    base = make_url(postgres_url())
    admin_dsn = (
        f"host={base.host} port={base.port or 5432} user={base.username} dbname={base.database}"
    )
    try:
        conn = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if postgres_required():
            pytest.fail(f"PostgreSQL required but unreachable at {postgres_url()}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {postgres_url()}")
    name = f"studbook_test_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@dataclass
class Actor:
    """A principal with a token and a registered signing key."""

    name: str
    token: str
    signer: dsse.Signer

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def key_registration(
    signer: dsse.Signer, principal: str, *, for_principal: bool = False
) -> dict[str, Any]:
    """The `POST /v1/keys` body registering `signer`'s key for `principal`, with its proof of
    possession (`for_principal`: an admin names the owner in the body)."""
    body: dict[str, Any] = {
        "public_key": signer.public_key_text,
        "proof": dsse.key_possession_proof(signer, principal).to_json(),
    }
    if for_principal:
        body["principal"] = principal
    return body


def make_actor(client: TestClient[Any], engine: Engine, name: str, role: Role) -> Actor:
    with Session(engine) as session:
        _, token = create_principal(session, name, role)
    signer = dsse.Signer(dsse.generate_private_key())
    r = client.post(
        "/v1/keys",
        json=key_registration(signer, name),
        headers={"Authorization": f"Bearer {token}"},
    )
    if role is not Role.VIEWER:
        assert r.status_code == 201, r.text
    return Actor(name, token, signer)


def digest_of(label: str) -> str:
    """A stable fake content digest for test artifacts."""
    return opaque_digest("test:" + label)


def registration_envelope(
    signer: dsse.Signer,
    kind: str,
    label: str,
    parents: list[tuple[str, str]] = (),  # type: ignore[assignment]
    *,
    digest: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sign a registration of `label` (`name@version`) with parents [(relation, parent digest)]."""
    name, _, version = label.rpartition("@")
    reg = Registration(
        ArtifactRef(ArtifactKind(kind), name, version, digest or digest_of(label)),
        tuple(ParentLink(Relation(r), d) for r, d in parents),
        metadata or {},
    )
    return sign_statement(registration_statement(reg), signer).to_json()


def register(
    client: TestClient[Any],
    actor: Actor,
    kind: str,
    label: str,
    parents: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Register through the API; parents given as [(relation, parent label)]."""
    env = registration_envelope(actor.signer, kind, label, [(r, digest_of(p)) for r, p in parents])
    r = client.post("/v1/attestations", json=env, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


def row_counts(engine: Engine) -> dict[str, int]:
    """How many rows each table holds (to prove a refusal wrote nothing)."""
    with engine.connect() as conn:
        return {
            t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar_one()
            for t in SQLModel.metadata.sorted_tables
        }


def review_envelope(
    signer: dsse.Signer,
    artifact: str,
    trait: str,
    *,
    severity: str | None = "high",
    reason: str = "reviewed",
    evidence: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Sign a flag (with `severity`) or a clearance (`severity=None`) of `artifact`."""
    from lineage.review import clearance_statement, flag_statement
    from lineage.risk import Severity

    if severity is None:
        statement = clearance_statement(
            artifact, trait, reason, evidence or ("external:reviewed outside the registry",)
        )
    else:
        statement = flag_statement(artifact, trait, Severity(severity), reason, evidence)
    return sign_statement(statement, signer).to_json()


def studbook(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    run_env = {k: v for k, v in env.items() if k != "cwd"}
    out = subprocess.run(
        [sys.executable, "-m", "studbook_cli", *args],
        cwd=env["cwd"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out
