"""Engines, sessions and migrations.

SQLite and PostgreSQL run the same schema, created only by Alembic. On SQLite we turn on WAL (so
readers never wait for the writer), foreign keys (off by default there) and a busy timeout, and
we take the write lock at the start of every writing transaction (`BEGIN IMMEDIATE`), so that
two writers serialise cleanly instead of failing half-way with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

WRITE_OPTION = "studbook_write"


def begin_write(session: Session) -> None:
    """Start `session`'s transaction as a writer (takes SQLite's write lock up front)."""
    session.connection(execution_options={WRITE_OPTION: True})


def make_engine(url: str) -> Engine:
    """Create an engine for `url` with the per-backend settings described above."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Graph walks read many pages; mapping the file shares them across the pool's
            # connections instead of giving each its own small page cache.
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def migrations_dir() -> Path:
    """The Alembic script directory, found through the installed `migrations` package."""
    import migrations

    return Path(migrations.__file__).resolve().parent


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)
