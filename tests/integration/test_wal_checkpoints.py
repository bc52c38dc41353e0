"""SQLite WAL checkpoints in a background thread (`registry.db.WalCheckpointer`), as a server
process runs them: commits only append to the log, the thread copies it into the database file,
the log stays bounded under a steady stream of commits, and the app starts and stops the thread
with its lifespan."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from registry.app import GC_THRESHOLDS, create_app
from registry.db import WRITE_OPTION, WalCheckpointer, make_engine, upgrade, wal_checkpointer
from registry.settings import Settings
from tests.support import postgres_skipped, postgres_url

ROW = "x" * 3000  # about one page a row


def _until(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    """An SQLite file with one table, its engine made as a server makes it (overrides the
    package's `engine`, which is a registry database)."""
    eng = make_engine(f"sqlite:///{tmp_path / 'wal.db'}", background_checkpoints=True)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield eng
    cp = wal_checkpointer(eng)
    if cp is not None:
        cp.stop()
    eng.dispose()


def _insert(engine: Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": ROW}] * rows)


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_commits_leave_the_checkpoint_to_the_thread(engine: Engine, tmp_path: Path) -> None:
    cp = wal_checkpointer(engine)
    assert cp is not None
    # A commit checkpoints itself only past the fallback, far beyond SQLite's 1,000 pages.
    assert _autocheckpoint(engine) == WalCheckpointer.FALLBACK_PAGES > 1000
    _insert(engine, 1500)  # past 1,000 pages: a default engine's commit would checkpoint here
    with sqlite3.connect(tmp_path / "wal.db") as probe:
        # Nothing is copied yet: the log holds every page, none checkpointed.
        _, log, _ = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert log > 1000
    cp.start()
    assert cp.running
    _insert(engine, 10)
    assert _until(lambda: cp.last is not None and cp.last[1] == cp.last[2] and cp.checkpoints > 0)
    cp.stop()
    assert not cp.running
    cp.stop()  # idempotent
    with sqlite3.connect(tmp_path / "wal.db") as probe:
        assert probe.execute("SELECT count(*) FROM t").fetchone() == (1510,)


def test_the_log_is_copied_after_the_last_commit_of_a_burst(engine: Engine) -> None:
    """The commit event fires as a commit starts; a checkpoint that ran before it finished
    leaves its pages in the log, and the thread looks again when no commit follows."""
    cp = wal_checkpointer(engine)
    assert cp is not None
    cp.start()
    for _ in range(20):
        _insert(engine, 5)
    assert _until(lambda: cp.last is not None and cp.last[1] == cp.last[2])


def _writer_engine(engine: Engine) -> Engine:
    """`engine` with every connection a writer's: `begin_write`'s option, so each transaction
    begins as the registry's writers do (`BEGIN IMMEDIATE`)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _stream(engine: Engine, wal: Path, commits: int, pause_s: float) -> int:
    """Commit `commits` transactions of some 20 pages as writers; the largest `-wal` size."""
    writer = _writer_engine(engine)
    largest = 0
    for _ in range(commits):
        _insert(writer, 20)
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
        time.sleep(pause_s)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 20 * commits
    return largest


def _frames(pages: int) -> int:
    return 32 + pages * (4096 + 24)  # the WAL header, then a header and a page per frame


def test_writers_start_a_long_log_over_while_the_thread_copies(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import on a large registry: each checkpoint takes longer than the pause before the
    next batch begins, so no checkpoint is ever complete when a writer begins and the log
    would only grow. Writers that begin past `RESTART_PAGES` copy the rest and start it over;
    the commits' fallback is off, so nothing else bounds it."""
    cp = wal_checkpointer(engine)
    assert cp is not None
    monkeypatch.setattr(WalCheckpointer, "RESTART_PAGES", 64)
    monkeypatch.setattr(WalCheckpointer, "FALLBACK_PAGES", 0)  # commits never checkpoint
    copy = WalCheckpointer._checkpoint

    def slow_in_the_thread(self: WalCheckpointer, run: Callable[[str], object]) -> bool:
        if threading.current_thread().name == "studbook-wal-checkpointer":
            time.sleep(0.03)  # a large registry's pages, scattered over the file
        return copy(self, run)

    monkeypatch.setattr(WalCheckpointer, "_checkpoint", slow_in_the_thread)
    engine.pool.dispose()  # connections from here on take the settings above
    assert _autocheckpoint(engine) == 0
    cp.start()
    largest = _stream(engine, tmp_path / "wal.db-wal", 200, 0.01)
    assert cp.catch_ups > 0
    # 200 commits of some 20 pages: 4,000 pages if nothing started the log over. The thread
    # tells the writers how long the log is as its checkpoints end, a few commits late.
    assert largest <= _frames(64 + 5 * 22)


def test_writers_back_to_back_are_bounded_by_the_fallback(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers with no pause at all can keep the thread from running for a while (it waits
    for the GIL), so it cannot tell them the log is long; past `FALLBACK_PAGES` a commit
    checkpoints itself (unless the thread's checkpoint runs) and the next writer starts the
    log over, as with SQLite's default."""
    cp = wal_checkpointer(engine)
    assert cp is not None
    monkeypatch.setattr(WalCheckpointer, "RESTART_PAGES", 64)
    monkeypatch.setattr(WalCheckpointer, "FALLBACK_PAGES", 256)
    engine.pool.dispose()
    assert _autocheckpoint(engine) == 256
    cp.start()
    largest = _stream(engine, tmp_path / "wal.db-wal", 300, 0.0)
    # 300 commits of some 20 pages: 6,000 pages if nothing started the log over. A commit's
    # fallback gives way to a checkpoint the thread runs at that moment, so the bound is
    # looser than SQLite's own (measured here: up to some 4 times the fallback).
    assert largest <= _frames(8 * 256)


def test_writers_and_readers_racing_the_thread_see_every_commit(engine: Engine) -> None:
    cp = wal_checkpointer(engine)
    assert cp is not None
    cp.start()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(60):
                _insert(engine, 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            seen = 0
            while seen < 360:
                with engine.connect() as conn:
                    now = conn.execute(text("SELECT count(*) FROM t")).scalar_one()
                assert now >= seen  # never goes back
                seen = now
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (write, write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert _until(lambda: cp.last is not None and cp.last[1] == cp.last[2])


def test_only_server_engines_on_sqlite_files_have_one(tmp_path: Path) -> None:
    plain = make_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        assert wal_checkpointer(plain) is None
        assert _autocheckpoint(plain) == 1000  # SQLite's own: commits checkpoint themselves
    finally:
        plain.dispose()
    if not postgres_skipped():
        pg = make_engine(postgres_url(), background_checkpoints=True)
        try:
            assert wal_checkpointer(pg) is None
        finally:
            pg.dispose()


def test_the_app_runs_the_thread_for_its_lifespan(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studbook.db'}"
    upgrade(url)
    engine = make_engine(url, background_checkpoints=True)
    cp = wal_checkpointer(engine)
    assert cp is not None and not cp.running
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=url), engine=engine)
    with TestClient(app) as client:
        assert cp.running
        assert client.get("/healthz").status_code == 200
    assert not cp.running  # stopped before the engine closed its connections


def test_serve_app_sets_up_the_server_process(tmp_path: Path) -> None:
    """`studbook serve`'s factory, in a process of its own (it freezes the collector's heap)."""
    code = (
        "import gc\n"
        "from registry.app import serve_app\n"
        "from registry.db import wal_checkpointer\n"
        "from registry.settings import get_settings\n"
        "from registry.startup import prepare\n"
        "prepare(get_settings())\n"
        "app = serve_app()\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 0,"
        " wal_checkpointer(app.state.engine) is not None)\n"
    )
    env = {**os.environ, "STUDBOOK_DATA_DIR": str(tmp_path)}
    env.pop("STUDBOOK_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == f"{GC_THRESHOLDS} True True"
