"""Migration 0007 widens `keys.public_key` for PEM (ECDSA) keys on a database whose keys are
already referenced by stored attestations, on both databases, without losing or orphaning a row;
a downgrade refuses while a key that would not fit is registered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from lineage import dsse
from registry.db import make_engine, upgrade
from tests.support import postgres_database, registration_envelope


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url_at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
        upgrade(url, "0006")
        yield url
    else:
        gen = postgres_database()
        url = next(gen)
        upgrade(url, "0006")
        yield url
        for _ in gen:
            pass


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from registry.db import migrations_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.downgrade(cfg, revision)


def _columns(url: str) -> dict[str, object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {c["name"]: c["type"] for c in inspect(conn).get_columns("keys")}
    finally:
        engine.dispose()


def _public_key_length(url: str) -> int | None:
    return getattr(_columns(url)["public_key"], "length", None)


def test_0007_widens_public_keys_under_existing_references(url_at_0006: str) -> None:
    signer = dsse.Signer(dsse.generate_private_key())
    env = registration_envelope(signer, "model", "old/m@1")
    engine = make_engine(url_at_0006)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO principals (id, name, role, created_at) "
                    "VALUES (1, 'p', 'registrar', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO keys (keyid, public_key, principal_id, created_at) "
                    "VALUES (:k, :p, 1, CURRENT_TIMESTAMP)"
                ),
                {"k": signer.keyid, "p": signer.public_key_text},
            )
            conn.execute(
                text(
                    "INSERT INTO attestations (id, payload_digest, predicate_type, envelope, "
                    "signer_keyid, principal_id, received_at) "
                    "VALUES (1, :d, 'old', :e, :k, 1, CURRENT_TIMESTAMP)"
                ),
                {"d": "0" * 64, "e": json.dumps(env), "k": signer.keyid},
            )
        assert _public_key_length(url_at_0006) == 64
        upgrade(url_at_0006, "0007")
        assert _public_key_length(url_at_0006) == 400
        p384 = dsse.Signer(dsse.generate_private_key("ecdsa-p384"))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO keys (keyid, public_key, principal_id, created_at) "
                    "VALUES (:k, :p, 1, CURRENT_TIMESTAMP)"
                ),
                {"k": p384.keyid, "p": p384.public_key_text},
            )
            rows = dict(conn.execute(text("SELECT keyid, public_key FROM keys")).all())
            assert rows == {signer.keyid: signer.public_key_text, p384.keyid: p384.public_key_text}
            # keys registered before proofs were required have none on record
            proofs = conn.execute(
                text("SELECT proof FROM keys WHERE keyid = :k"), {"k": signer.keyid}
            )
            assert proofs.scalar_one() is None
            joined = conn.execute(
                text("SELECT count(*) FROM attestations a JOIN keys k ON k.keyid = a.signer_keyid")
            ).scalar_one()
            assert joined == 1
            if engine.dialect.name == "sqlite":
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
                assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        # the table's foreign keys are still enforced after the retype
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("DELETE FROM keys WHERE keyid = :k"), {"k": signer.keyid})
    finally:
        engine.dispose()
    with pytest.raises(RuntimeError, match="ECDSA keys are registered"):
        _downgrade(url_at_0006, "0006")
    engine = make_engine(url_at_0006)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM keys WHERE keyid = :k"), {"k": p384.keyid})
    finally:
        engine.dispose()
    _downgrade(url_at_0006, "0006")
    assert _public_key_length(url_at_0006) == 64
    assert "proof" not in _columns(url_at_0006)
    upgrade(url_at_0006, "0007")
    assert _public_key_length(url_at_0006) == 400
