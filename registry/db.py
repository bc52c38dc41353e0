"""Engines, sessions and migrations.

SQLite and PostgreSQL run the same schema, created only by Alembic. On SQLite we turn on WAL (so
readers never wait for the writer), foreign keys (off by default there) and a busy timeout.

One serialisation for every decision that reads before it writes. Ingest decides from what it
reads: is this name@version taken, is this digest known, would this edge close a cycle, is this
principal name or key free. Two writers deciding at the same instant from the same state would
both say yes (two artifacts with one name, a cycle A -> B -> A), so every writing transaction
starts with `begin_write`, which takes one database-wide write lock before the first read:

- SQLite: `BEGIN IMMEDIATE` (the database's single writer lock);
- PostgreSQL: `pg_advisory_xact_lock(WRITE_LOCK_KEY)`, a transaction-level advisory lock on one
  fixed key, released by COMMIT or ROLLBACK. PostgreSQL makes a transaction's commit visible
  before it releases its locks, so under READ COMMITTED every statement after the lock sees
  everything the previous holder wrote. Replicas sharing the database share the lock.

The cost is small: the transparency log's append already serialises every accepted statement on
the log head row from the append to the commit (`registry/log/service.py`); the lock moves that
point to the start of the transaction, so the validation reads join the serialised section.
Readers never take it. Unique constraints stay as the last line of defence; a violation that
still happens is answered as the same 409 as the sequential path (`registry/errors.py`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from .schema_types import utc

WRITE_OPTION = "studbook_write"
# The advisory lock every PostgreSQL writer takes first: "STUDBOOK" in ASCII, a signed bigint.
WRITE_LOCK_KEY = int.from_bytes(b"STUDBOOK", "big")
_LOCKED = "studbook_write_locked"


def begin_write(session: Session) -> None:
    """Start `session`'s transaction as a writer holding the database-wide write lock (see the
    module docstring); calling it again in the same transaction does nothing.

    Call it before the transaction's first read: the decisions a writer makes must read under
    the lock.

    Raises:
        RuntimeError: on SQLite, the session already started a read transaction, whose snapshot
            can no longer become a writer's; on PostgreSQL, the session reads in autocommit
            mode (programming errors: roll back, or use a new session, first).
    """
    tx = session.get_transaction()
    if tx is not None and session.info.get(_LOCKED) is tx:
        return
    # Options apply only when the transaction procures its connection; once it holds one (a
    # read already ran), asking again would only warn.
    connected = tx is not None and bool(getattr(tx, "_connections", None))
    conn = (
        session.connection()
        if connected
        else session.connection(execution_options={WRITE_OPTION: True})
    )
    if conn.dialect.name == "postgresql":
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            # A transaction-level lock would be released at once: no serialisation at all.
            raise RuntimeError("begin_write called on an autocommit read session; use a new one")
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
    elif not conn.get_execution_options().get(WRITE_OPTION):
        raise RuntimeError("begin_write called inside a read transaction; roll back first")
    session.info[_LOCKED] = session.get_transaction()


def holds_write_lock(session: Session) -> bool:
    """Whether `session`'s current transaction took the write lock (`begin_write`): while it
    holds it, no other writer can change what it reads."""
    tx = session.get_transaction()
    return tx is not None and session.info.get(_LOCKED) is tx


def _create_private_sqlite(path: Path) -> None:
    """Create a new SQLite database file 0600 (its folder 0700) before SQLite opens it.

    SQLite would create it 0644, and gives its -wal and -shm files the database file's mode, so
    creating the (empty, hence valid) file first with `O_EXCL` and mode 0600 makes all three
    private from the moment they exist, without a process-wide umask. An existing file is left
    as it is (`serve` checks the data folder).
    """
    import os

    if path.exists():
        return
    if not path.parent.exists():
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def make_engine(url: str, *, background_checkpoints: bool = False) -> Engine:
    """Create an engine for `url` with the per-backend settings described above.

    `background_checkpoints` (a long-running server's engine on an SQLite file): commits only
    append to the write-ahead log, and a `WalCheckpointer` thread copies it into the database
    file (`wal_checkpointer(engine)`; the app starts and stops it with its lifespan).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        on_disk = "///" in url and path and path != ":memory:" and not path.startswith("file:")
        if on_disk:
            _create_private_sqlite(Path(path))
        checkpointer = WalCheckpointer(path) if on_disk and background_checkpoints else None
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
            if checkpointer is not None:
                # The checkpointer's thread does the work; a commit checkpoints itself only if
                # the log outgrows this (the thread stopped or fell far behind).
                cur.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.FALLBACK_PAGES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            if conn.get_execution_options().get(WRITE_OPTION):
                if checkpointer is not None:
                    checkpointer.before_write(conn)
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        if checkpointer is not None:
            _CHECKPOINTERS[engine] = checkpointer

            @event.listens_for(engine, "commit")
            def _on_commit(_conn: Any) -> None:
                checkpointer.wake()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class WalCheckpointer:
    """Checkpoints an SQLite database's write-ahead log in a background thread.

    In WAL mode a commit appends the pages it changed to the `-wal` file, and by default the
    commit that takes the log past 1,000 pages then copies the log into the database file
    itself (an automatic checkpoint), while its request waits. A batch of 1,000 registrations
    changes several thousand pages (every digest index takes a random page), so on a large
    registry every batch commit paid for a checkpoint: writing those pages into the database
    file and syncing it.

    Here a commit wakes this thread and returns. The thread runs a PASSIVE checkpoint on its
    own connection, which waits for no reader or writer, while the next request is read and
    verified. A checkpoint never starts the log over by itself: the next writer to begin does,
    when it finds every page of the log copied and no reader still on it. Under a steady import
    the next batch begins while the thread is still copying, so the log would only grow. So a
    writer that begins once the log holds `RESTART_PAGES` first waits for the thread's
    checkpoint under way and copies what it left (the last commit's pages at most); its own
    BEGIN then starts the log over. Writers wait once every few batches, for at most one
    batch's pages, instead of every batch for all of them, and the `-wal` file stays within a
    batch or two of `RESTART_PAGES` (112 MB at most, importing batches of 1,000 into a
    registry of 1.6M artifacts).

    Durability is the WAL's either way (`synchronous=NORMAL`: a commit is in the `-wal` file
    when it returns, which survives the process; a checkpoint syncs both files). A commit
    still checkpoints itself once the log exceeds `FALLBACK_PAGES` (the thread is stopped, or
    another process writes). Several server processes on one file each run one; SQLite runs
    one checkpoint at a time, and the others give up at once (busy) and try again later.
    """

    RESTART_PAGES = 16384  # 64 MiB of 4 KiB pages
    FALLBACK_PAGES = 4 * RESTART_PAGES
    IDLE_RECHECK_S = 1.0  # a commit that lands while a checkpoint runs is copied this late

    def __init__(self, path: str) -> None:
        self.path = path
        self.checkpoints = 0  # checkpoints run, by the thread and by writers (diagnostics)
        self.catch_ups = 0  # writers that copied the rest of a long log before beginning
        self.last: tuple[int, int, int] | None = None  # (busy, log pages, pages checkpointed)
        self._log_pages = 0  # the log's length at the last checkpoint
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # start and stop
        self._copying = threading.Lock()  # one checkpoint at a time in this process

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="studbook-wal-checkpointer", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """A transaction committed: checkpoint soon (called by the engine on every commit)."""
        self._wake.set()

    def before_write(self, conn: Any) -> None:
        """A writer is about to begin on `conn` (an engine connection outside a transaction):
        once the log is long, copy the rest of it, so that this writer starts it over."""
        if not self.running or self._log_pages < self.RESTART_PAGES:
            return
        with self._copying:
            if self._log_pages < self.RESTART_PAGES:
                return  # another writer just did
            if self._checkpoint(lambda sql: conn.exec_driver_sql(sql).fetchone()):
                self._log_pages = 0  # all copied: this writer's BEGIN starts it over
                self.catch_ups += 1

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the checkpoint under way, if any, and end the thread (idempotent)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._wake.set()
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            pending = False  # a commit may have landed after the last checkpoint read the log
            while True:
                woke = self._wake.wait(self.IDLE_RECHECK_S if pending else None)
                self._wake.clear()
                if self._stopping:
                    return
                pending = woke
                # A checkpoint that cannot run now is tried again after the next commit.
                with self._copying, contextlib.suppress(sqlite3.OperationalError):
                    self._checkpoint(lambda sql: conn.execute(sql).fetchone())
        finally:
            conn.close()

    def _checkpoint(self, run: Callable[[str], Any]) -> bool:
        """Run a PASSIVE checkpoint; whether it copied the whole log. The pragma answers
        (busy, log pages, pages copied); busy (1) when another process's checkpoint runs."""
        row = run("PRAGMA wal_checkpoint(PASSIVE)")
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        self._log_pages = self.last[1]
        self.checkpoints += 1
        return self.last[0] == 0 and self.last[1] == self.last[2]


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The background checkpointer of an engine made with `background_checkpoints`, if any
    (only SQLite files have one)."""
    return _CHECKPOINTERS.get(engine)


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


def upgrade(url: str, revision: str = "head", attributes: dict[str, Any] | None = None) -> None:
    """Apply Alembic migrations up to `revision`.

    `attributes` reach the migrations as `config.attributes` (revision 0006 reads which log
    keys the server exported to their file before it drops them from the database).
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config(attributes=dict(attributes or {}))
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


# ----------------------------------------------------------------------------- driver-level SQL
#
# Hot paths (ingest, the fine-tune check, the risk query, the log's appends and proofs) run a
# handful of fixed statements each, and SQLAlchemy's per-statement work (cache keys, compiled
# parameters, result metadata) costs more than the statements themselves. `fetch` and `sql`
# run fixed SQL text on the session's own transaction through the driver's cursor.

_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
_IN_LIST = re.compile(r"IN_(INTS|STRS)\(:([a-z_][a-z0-9_]*)\)")
_PG_ARRAY = {"INTS": "BIGINT", "STRS": "TEXT"}


def fetch(session: Session, text_: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of a fixed read on the session's transaction, through the driver's cursor.

    The read paths (the fine-tune check, the risk query) run a handful of indexed lookups each,
    and SQLAlchemy's per-statement work (building, cache keys, result metadata) costs more than
    the lookups themselves; this skips all of it. `:name` parameters (rewritten to
    `%(name)s` for psycopg);
    `IN_INTS(:ids)` and `IN_STRS(:names)` take a list as one parameter (`json_each` on SQLite,
    `= ANY(array)` on PostgreSQL), so the text, and the driver's prepared statement, stay fixed
    however many values there are. JSON columns come back as text on SQLite (`loads`).
    """
    with _cursor(session) as (cur, pg):
        cur.execute(_ready(text_, pg), _bind(text_, params, pg))
        return cur.fetchall() if cur.description is not None else []


def fetch_first(session: Session, text_: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The first row of `fetch`, or None when there is none."""
    rows = fetch(session, text_, params)
    return rows[0] if rows else None


def sql(session: Session, text_: str, params: dict[str, Any]) -> int:
    """Run a fixed write on the session's transaction through the driver's cursor (as `fetch`);
    returns the number of rows it changed."""
    with _cursor(session) as (cur, pg):
        cur.execute(_ready(text_, pg), _bind(text_, params, pg))
        return int(cur.rowcount)


def sql_many(session: Session, text_: str, rows: list[dict[str, Any]]) -> None:
    """Run a fixed write once per parameter set (the driver's executemany), as `sql`."""
    if rows:
        with _cursor(session) as (cur, pg):
            cur.executemany(_ready(text_, pg), [_bind(text_, r, pg) for r in rows])


def next_ids(session: Session, table: str, n: int) -> list[int]:
    """`n` ids for new rows of `table` (an integer `id` key), for a writer holding the write lock
    (`begin_write`) that inserts them itself with `insert_rows`.

    PostgreSQL draws them from the column's sequence; SQLite would give a new row the largest
    id plus one (the tables have no AUTOINCREMENT), and under the lock no one else inserts.
    """
    if n <= 0:
        return []
    if driver_connection(session)[1]:
        rows = fetch(
            session,
            "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)",
            {"t": table, "n": n},
        )
        return [int(r[0]) for r in rows]
    top = fetch(session, f"SELECT COALESCE(MAX(id), 0) FROM {_name(table)}", {})[0][0]
    return list(range(int(top) + 1, int(top) + n + 1))


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (each with the same columns) into `table` as `write_rows` does (one COPY on
    PostgreSQL, one executemany on SQLite), each value converted as SQLAlchemy converts it for
    its column's type (JSON, timestamps, booleans) but without its per-row statement work."""
    if not rows:
        return
    columns = tuple(rows[0])
    convert = _converters(table, columns, session.get_bind().dialect)
    write_rows(
        session,
        table.name,
        columns,
        [
            tuple(f(r[c]) if f is not None and r[c] is not None else r[c] for c, f in convert)
            for r in rows
        ],
    )


_CONVERTERS: dict[tuple[str, tuple[str, ...], str], list[tuple[str, Any]]] = {}


def _converters(table: Any, columns: tuple[str, ...], dialect: Any) -> list[tuple[str, Any]]:
    """Each column with the dialect's bind processor of its type (None: passed as it is)."""
    key = (table.name, columns, dialect.name)
    found = _CONVERTERS.get(key)
    if found is None:
        found = _CONVERTERS[key] = [
            (c, table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) for c in columns
        ]
    return found


def _name(table: str) -> str:
    if not table.isidentifier():
        raise ValueError(f"not a table name: {table!r}")
    return table


def write_rows(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT plain rows (integers, text, JSON as text) into `table` on the session's
    transaction: one COPY on PostgreSQL (an executemany is a round of protocol messages per
    row), one executemany on SQLite."""
    if not rows:
        return
    names = ", ".join(_name(c) for c in columns)
    driver, pg = driver_connection(session)
    cur = driver.cursor()
    try:
        if pg:
            with cur.copy(f"COPY {_name(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cur.executemany(f"INSERT INTO {_name(table)} ({names}) VALUES ({marks})", rows)
    finally:
        cur.close()


def int_array(values: Iterable[int]) -> str:
    """PostgreSQL's text form of an integer array (`{1,2,3}`), to bind as one string and cast:
    a thousandth of the cost of binding the list."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


# Both caches are bounded: a few texts are built from a request's shape (one OR term per
# reference asked for), and a client must not be able to grow them without end.
@functools.lru_cache(maxsize=1024)
def _ready(text_: str, pg: bool) -> str:
    """`text_` in the driver's parameter style, its list parameters expanded."""
    if pg:
        out = _IN_LIST.sub(lambda m: f"= ANY(CAST(:{m[2]} AS {_PG_ARRAY[m[1]]}[]))", text_)
        return _NAMED.sub(r"%(\1)s", out)
    return _IN_LIST.sub(r"IN (SELECT value FROM json_each(:\2))", text_)


@functools.lru_cache(maxsize=1024)
def _lists(text_: str) -> dict[str, str]:
    """The list parameters of `text_` and their kinds (`INTS`, `STRS`)."""
    return {m[2]: m[1] for m in _IN_LIST.finditer(text_)}


def _bind(text_: str, params: dict[str, Any], pg: bool) -> dict[str, Any]:
    """The parameters as the driver takes them: the lists of `IN_INTS`/`IN_STRS` as one JSON
    text on SQLite; on PostgreSQL an `IN_INTS` list as one array literal (psycopg dumps a list
    element by element) and any other list as an array."""
    lists = _lists(text_)
    if not lists:
        return params
    if pg:
        return {k: int_array(v) if lists.get(k) == "INTS" else v for k, v in params.items()}
    return {k: json.dumps(v) if k in lists else v for k, v in params.items()}


@contextmanager
def _cursor(session: Session) -> Iterator[tuple[Any, bool]]:
    driver, pg = driver_connection(session)
    cur = driver.cursor()
    try:
        yield cur, pg
    finally:
        cur.close()


def driver_connection(session: Session) -> tuple[Any, bool]:
    """The driver connection of the session's transaction (begun if need be, pending ORM
    writes flushed first, as `session.execute` would) and whether it is PostgreSQL's."""
    if session.autoflush:
        session.flush()
    tx = session.get_transaction()
    held = session.info.get(_DRIVER)
    if tx is None or held is None or held[0] is not tx:
        conn = session.connection()  # joins (or begins) the session's transaction
        held = (session.get_transaction(), conn.connection.driver_connection, conn.dialect.name)
        session.info[_DRIVER] = held  # a transaction keeps its connection until it ends
    return held[1], held[2] == "postgresql"


_DRIVER = "studbook_driver_connection"


def timestamp(value: Any) -> datetime:
    """A timestamp column's value as read by `fetch`, with its UTC offset: text without an offset
    on SQLite (every timestamp Studbook writes is UTC), a datetime on PostgreSQL."""
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def loads(value: Any) -> Any:
    """A JSON column's value as read by `fetch`: text on SQLite, decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value
