"""Secrets at rest: files that hold keys and tokens are private from the moment they exist.

Modes are read with `os.stat` right after creation, under a permissive umask (0), so a mode that
came from the umask rather than from the code would show. "Never chmod after" is checked by making
`chmod` fail for the duration.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage.private_files import (
    PrivateFileError,
    check_private,
    ensure_private_dir,
    write_private,
)
from registry.db import make_engine
from registry.principals.service import bootstrap_admin
from registry.settings import Settings, get_settings
from registry.startup import DataDirError, check_data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 0: whatever mode a file gets, the code chose it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """Narrowing a mode after creation is the bug; make any attempt fail loudly."""

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("chmod after creation")

    for name in ("chmod", "fchmod", "lchmod"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(Path, "chmod", refuse)


# ----------------------------------------------------------------------- lineage.private_files


def test_write_private_creates_0600_from_the_start(
    tmp_path: Path, open_umask: None, no_chmod: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode_: int = 0o777, *a: Any, **k: Any) -> int:
        fd = real_open(path, flags, mode_, *a, **k)
        if flags & os.O_CREAT:
            opened.append((str(path), flags, stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    monkeypatch.setattr(os, "open", spy)
    target = tmp_path / "key.pem"
    write_private(target, b"secret")
    assert mode(target) == 0o600 and target.read_bytes() == b"secret"
    # Every file it created was 0600 the instant it existed, and created exclusively.
    assert opened and all(m == 0o600 and f & os.O_EXCL for _, f, m in opened)
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]  # no temporary file left


def test_write_private_never_widens_an_existing_mode(tmp_path: Path, open_umask: None) -> None:
    """`keygen --force` over a 0644 key must leave a 0600 key; over a 0400 key, a 0400 one."""
    key = tmp_path / "key.pem"
    key.write_bytes(b"old")
    os.chmod(key, 0o644)
    with pytest.raises(FileExistsError):
        write_private(key, b"new")  # without overwrite
    assert key.read_bytes() == b"old"
    write_private(key, b"new", overwrite=True)
    assert mode(key) == 0o600 and key.read_bytes() == b"new"
    os.chmod(key, 0o400)
    write_private(key, b"newer", overwrite=True)
    assert mode(key) == 0o400 and key.read_bytes() == b"newer"


def test_a_leftover_temporary_file_is_never_reused(tmp_path: Path, open_umask: None) -> None:
    leftover = tmp_path / ".key.pem.tmp"
    leftover.write_bytes(b"from a crash")
    os.chmod(leftover, 0o666)
    write_private(tmp_path / "key.pem", b"secret")
    assert mode(tmp_path / "key.pem") == 0o600
    assert leftover.read_bytes() == b"from a crash"  # untouched, not followed


def test_write_private_refuses_to_replace_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"x")
    link = tmp_path / "key.pem"
    link.symlink_to(elsewhere)
    with pytest.raises(PrivateFileError):
        write_private(link, b"secret", overwrite=True)
    assert elsewhere.read_bytes() == b"x" and link.is_symlink()


def test_private_dirs_are_created_0700_and_open_ones_refused(
    tmp_path: Path, open_umask: None, no_chmod: None
) -> None:
    new = tmp_path / "a" / "data"
    ensure_private_dir(new)
    assert mode(new) == 0o700
    ensure_private_dir(new)  # idempotent
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    with pytest.raises(PrivateFileError) as err:
        ensure_private_dir(shared)
    assert f"chmod 700 {shared}" in str(err.value) and mode(shared) == 0o755  # not narrowed
    readable = tmp_path / "token"
    os.close(os.open(readable, os.O_WRONLY | os.O_CREAT, 0o640))
    with pytest.raises(PrivateFileError, match="chmod 600"):
        check_private(readable)


# ----------------------------------------------------------------------------- the database files


def test_a_new_sqlite_database_and_its_wal_and_shm_are_0600(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "data" / "studbook.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert mode(path) == 0o600 and mode(path.parent) == 0o700  # before SQLite opened it
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:  # WAL mode keeps -wal and -shm while connections live
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
            for suffix in ("", "-wal", "-shm"):
                f = path.with_name(path.name + suffix)
                assert f.exists() and mode(f) == 0o600, suffix
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- the admin token


def test_the_admin_token_is_0600_despite_a_leftover_tmp_file(
    client: Any, engine: Engine, settings: Settings, open_umask: None
) -> None:
    token_file = settings.admin_token_file
    token_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    leftover = token_file.with_suffix(".tmp")  # `admin-token.tmp`, as an old crash left it
    leftover.write_text("stale\n")
    os.chmod(leftover, 0o644)
    with Session(engine) as session:
        token = bootstrap_admin(session, token_file)
    assert token is not None
    assert mode(token_file) == 0o600 and token_file.read_text() == token + "\n"
    assert leftover.read_text() == "stale\n"  # never reused
    assert not [p for p in token_file.parent.iterdir() if p.name.startswith(".admin-token")]


def test_the_admin_token_folder_is_created_private(
    client: Any, engine: Engine, tmp_path: Path, open_umask: None
) -> None:
    token_file = tmp_path / "fresh" / "admin-token"
    with Session(engine) as session:
        assert bootstrap_admin(session, token_file) is not None
    assert mode(token_file.parent) == 0o700 and mode(token_file) == 0o600


# ----------------------------------------------------------------------------- serve


def test_check_data_dir_creates_0700_and_refuses_others_readable(
    tmp_path: Path, open_umask: None
) -> None:
    fresh = Settings(data_dir=tmp_path / "fresh")
    check_data_dir(fresh)
    assert mode(tmp_path / "fresh") == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    with pytest.raises(DataDirError) as err:
        check_data_dir(Settings(data_dir=shared))
    assert f"chmod 700 {shared}" in err.value.message
    key = tmp_path / "elsewhere" / "log.pem"
    key.parent.mkdir()
    key.write_text("k")
    os.chmod(key, 0o644)
    with pytest.raises(DataDirError, match="log key file"):
        check_data_dir(Settings(data_dir=tmp_path / "fresh", log_key_file=key))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_a_data_directory_others_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.commands import EXIT_USAGE, server_cli

    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    monkeypatch.setenv("STUDBOOK_DATA_DIR", str(data))
    monkeypatch.delenv("STUDBOOK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    umask = os.umask(0o022)  # serve narrows the process umask; give it back afterwards
    try:
        result = CliRunner().invoke(server_cli, ["serve", "--port", str(_free_port())])
    finally:
        assert os.umask(umask) == 0o077  # serve made everything it creates private
        get_settings.cache_clear()
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"chmod 700 {data}" in result.output
    assert list(data.iterdir()) == []  # nothing written: no database, no token, no key
    assert mode(data) == 0o755  # reported, not silently changed


def test_a_data_folder_linked_elsewhere_is_judged_by_its_target(
    tmp_path: Path, open_umask: None
) -> None:
    private, shared = tmp_path / "vol-private", tmp_path / "vol-shared"
    private.mkdir(mode=0o700)
    shared.mkdir(mode=0o755)
    (tmp_path / "data-ok").symlink_to(private)
    (tmp_path / "data-open").symlink_to(shared)
    check_data_dir(Settings(data_dir=tmp_path / "data-ok"))
    with pytest.raises(DataDirError, match="chmod 700"):
        check_data_dir(Settings(data_dir=tmp_path / "data-open"))
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(PrivateFileError):
        ensure_private_dir(tmp_path / "dangling")
