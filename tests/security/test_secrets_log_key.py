"""The log's private key lives in a 0600 file, never in the database; each log has its own origin.

Covers the first start (key file created, public half and origin stored), later starts (the file
must hold the stored key, the configured origin must be the stored one), a host without the key
file (it can check, not sign), and revision 0006 moving a key older versions kept in the
database out to the file, on both databases.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import dsse
from lineage.checkpoint import parse_vkey, verify_checkpoint, vkey
from registry.db import make_engine, upgrade
from registry.log import service as log
from registry.models.log import LogKey
from registry.settings import Settings
from registry.startup import DataDirError, migrate, prepare
from tests.support import postgres_database


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _fresh_log(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(delete(LogKey))
        session.commit()


def test_no_private_key_material_in_the_database(
    client: Any, engine: Engine, settings: Settings
) -> None:
    pem = settings.log_key_path.read_text()
    assert mode(settings.log_key_path) == 0o600
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("log_keys")}
        rows = conn.execute(text("SELECT * FROM log_keys")).all()
    assert columns == {"id", "origin", "public_key", "created_at"}
    body = pem.split("-----")[2].strip().replace("\n", "")
    assert rows and all(body not in str(v) for row in rows for v in row)


def test_each_log_gets_its_own_origin_at_its_first_start(
    client: Any, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    first = client.get("/v1/log").json()
    assert first["origin"].startswith("studbook/") and first["origin"] != "studbook.local/log"
    assert first["vkey"].startswith(first["origin"] + "+")
    _fresh_log(engine)
    other = settings.model_copy(update={"data_dir": tmp_path / "another"})
    try:
        second = log.install(engine, other)
        assert second.origin.startswith("studbook/") and second.origin != first["origin"]
        checkpoint = client.get("/v1/log/checkpoint").text
        assert checkpoint.split("\n", 1)[0] == second.origin
        verify_checkpoint(checkpoint, second.vkey, origin=second.origin)
    finally:
        _fresh_log(engine)
        log.install(engine, settings)


def test_a_restart_refuses_another_key_or_origin(
    client: Any, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    vkey_before = client.get("/v1/log").json()["vkey"]
    # Another origin than the stored one: another log, refused.
    with pytest.raises(log.LogKeyError, match="origin"):
        log.require_key(engine, settings.model_copy(update={"log_origin": "example.org/x"}))
    # Another key in the file: refused, naming the file.
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(dsse.private_key_pem(dsse.generate_private_key()))
    wrong.chmod(0o600)
    with pytest.raises(log.LogKeyError, match="does not hold this log's key"):
        log.require_key(engine, settings.model_copy(update={"log_key_file": wrong}))
    # No key file: a server must not start; a reader may (it checks, it cannot sign).
    missing = settings.model_copy(update={"log_key_file": tmp_path / "missing.pem"})
    with pytest.raises(log.LogKeyError, match="missing"):
        log.require_key(engine, missing)
    try:
        reader = log.install(engine, missing)
        assert reader.vkey == vkey_before and not reader.can_sign
        with pytest.raises(log.LogKeyError):
            reader.sign(0, b"\x00" * 32)
        assert not (tmp_path / "missing.pem").exists()  # nothing created on a later start
    finally:
        log.install(engine, settings)
    # A key file others can read: refused, with the fix.
    os.chmod(settings.log_key_path, 0o644)
    try:
        with pytest.raises(log.LogKeyError, match="chmod 600"):
            log.require_key(engine, settings)
    finally:
        os.chmod(settings.log_key_path, 0o600)
    assert client.get("/v1/log").json()["vkey"] == vkey_before


def test_prepare_creates_the_log_identity_with_a_private_key_file(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    _fresh_log(engine)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    try:
        prepare(settings)
        assert mode(tmp_path / "data") == 0o700 and mode(settings.log_key_path) == 0o600
        with Session(engine) as session:
            stored = log.stored_vkey(session)
        key = dsse.load_private_key(settings.log_key_path.read_bytes())
        assert stored is not None
        origin, public = parse_vkey(stored)
        assert origin.startswith("studbook/") and stored == vkey(origin, key.public_key())
        assert public.public_bytes_raw() == key.public_key().public_bytes_raw()
    finally:
        _fresh_log(engine)


# ----------------------------------------------------------------------------- revision 0006


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0005")
        yield url
    else:
        gen = postgres_database()
        url = next(gen)
        upgrade(url, "0005")
        yield url
        for _ in gen:
            pass


def _legacy_keys(url: str) -> list[Any]:
    """Two keys kept in the database the way versions before 0006 kept them."""
    keys = [dsse.generate_private_key(), dsse.generate_private_key()]
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for k in keys:
                conn.execute(
                    text("INSERT INTO log_keys (private_key, created_at) VALUES (:pem, :now)"),
                    {"pem": dsse.private_key_pem(k).decode(), "now": datetime.now(UTC)},
                )
    finally:
        engine.dispose()
    return keys


def test_0006_moves_the_private_key_out_to_its_file(database_at_0005: str, tmp_path: Path) -> None:
    url = database_at_0005
    old, newest = _legacy_keys(url)
    # A plain upgrade (nobody exported the key) stops instead of losing the only copy.
    with pytest.raises(RuntimeError, match="studbook migrate"):
        upgrade(url)
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    migrate(settings)
    path = settings.log_key_path
    assert mode(path) == 0o600
    exported = dsse.load_private_key(path.read_bytes())
    assert dsse.keyid(exported.public_key()) == dsse.keyid(newest.public_key())
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("log_keys")}
            rows = conn.execute(
                select(LogKey.origin, LogKey.public_key).order_by(LogKey.id)  # type: ignore[arg-type]
            ).all()
        assert "private_key" not in columns
        # An existing log keeps its origin (clients pinned its vkey), and old public keys stay.
        assert [r.origin for r in rows] == ["studbook.local/log"] * 2
        expected = [vkey("studbook.local/log", k.public_key()) for k in (old, newest)]
        assert [vkey(r.origin, dsse.load_public_key(r.public_key)) for r in rows] == expected
        notary = log.install(engine, settings)
        assert notary.can_sign and notary.vkey == expected[1]
    finally:
        engine.dispose()


def test_0006_refuses_a_key_file_holding_another_key(database_at_0005: str, tmp_path: Path) -> None:
    _legacy_keys(database_at_0005)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_at_0005)
    settings.data_dir.mkdir(mode=0o700)
    settings.log_key_path.write_bytes(dsse.private_key_pem(dsse.generate_private_key()))
    with pytest.raises(DataDirError, match="another key"):
        migrate(settings)
    engine = make_engine(database_at_0005)
    try:
        with engine.connect() as conn:  # nothing migrated, the key still where it was
            assert "private_key" in {c["name"] for c in inspect(conn).get_columns("log_keys")}
    finally:
        engine.dispose()
