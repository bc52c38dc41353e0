"""What `studbook serve` and `studbook migrate` do before the database is touched.

1. The data folder holds the SQLite database, the admin token, the log's private key and the eval
   worker's key, so it must be readable by the server's user only. A new one is created 0700; an
   existing one that its group or others can enter is refused, with the command that fixes it,
   rather than narrowed silently: whatever it exposed may already have been copied, and the
   operator should know. A SQLite database outside the data folder gets the same check on its
   folder, and a log key file outside it on the file itself.
2. Revision 0006 moves the log's private key out of the database. A migration knows only a
   database URL, so the server does the part that needs the host: before migrating, it writes
   any private key still in `log_keys` to the configured key file (0600 from creation; a file
   already there must hold the same key) and tells the migration which keys it exported. A
   plain `alembic upgrade` on such a database stops with a message instead of losing the key.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from lineage.private_files import (
    PrivateFileError,
    check_private,
    ensure_private_dir,
    write_private,
)

from .errors import RegistryError
from .settings import Settings

__all__ = ["DataDirError", "check_data_dir", "export_database_log_key", "migrate", "prepare"]


class DataDirError(RegistryError):
    """A folder or file that holds secrets is readable by others, or cannot be made private."""

    status_code = 500

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message, field="data_dir")
        self.path = path


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def _inside(folder: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_data_dir(settings: Settings) -> Path:
    """Create the data folder 0700, or refuse one that others can read (see module docstring).

    Returns:
        The data folder.

    Raises:
        DataDirError: the data folder (or the folder of a SQLite database, or a log key file,
            kept elsewhere) is readable by the group or others; the message says how to fix it.
    """
    data_dir = settings.data_dir
    try:
        ensure_private_dir(data_dir)
    except PrivateFileError as exc:
        raise DataDirError(
            f"refusing to serve: the data folder {data_dir} holds the database, tokens and "
            f"keys, and others can read it (mode "
            f"{'?' if exc.mode is None else format(exc.mode, '04o')}); fix it with "
            f"`chmod 700 {data_dir}`",
            path=data_dir,
        ) from exc
    db = _sqlite_path(settings.resolved_database_url)
    if db is not None and not _inside(data_dir, db) and db.parent.exists():
        try:
            check_private(db.parent)
        except PrivateFileError as exc:
            raise DataDirError(
                f"refusing to serve: the database's folder is not private: {exc.message}",
                path=db.parent,
            ) from exc
    key = settings.log_key_path
    if key.exists() and not _inside(data_dir, key):
        try:
            check_private(key)
        except PrivateFileError as exc:
            raise DataDirError(
                f"refusing to serve: the log key file is not private: {exc.message}", path=key
            ) from exc
    return data_dir


def export_database_log_key(url: str, path: Path) -> set[str]:
    """Write the newest private log key still kept in the database (before 0006) to `path`.

    Returns:
        The base64 public keys now held in `path` (empty when the database keeps none).

    Raises:
        DataDirError: `path` exists and holds another key.
    """
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )
    from sqlalchemy import inspect, text

    from .db import make_engine

    def public(pem: bytes) -> str:
        key = load_pem_private_key(pem, password=None)
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        if not inspector.has_table("log_keys"):
            return set()
        if "private_key" not in {c["name"] for c in inspector.get_columns("log_keys")}:
            return set()
        with engine.connect() as conn:
            pem = conn.execute(
                text("SELECT private_key FROM log_keys ORDER BY id DESC LIMIT 1")
            ).scalar()
    finally:
        engine.dispose()
    if pem is None:
        return set()
    data = str(pem).encode("ascii")
    wanted = public(data)
    if path.exists():
        if public(path.read_bytes()) != wanted:
            raise DataDirError(
                f"the log key file {path} exists and holds another key than the one this "
                f"database's log was signing with; move it away (or set STUDBOOK_LOG_KEY_FILE) "
                f"and migrate again",
                path=path,
            )
        return {wanted}
    if not path.parent.exists():
        ensure_private_dir(path.parent)
    write_private(path, data)
    return {wanted}


def migrate(settings: Settings) -> None:
    """Apply every migration, exporting the log key first where revision 0006 needs it."""
    from .db import upgrade

    url = settings.resolved_database_url
    exported = export_database_log_key(url, settings.log_key_path)
    attributes: dict[str, Any] = {"exported_log_keys": exported}
    if settings.log_origin:
        attributes["log_origin"] = settings.log_origin
    upgrade(url, attributes=attributes)


def prepare(settings: Settings, *, private_umask: bool = False) -> None:
    """Everything `serve` does before it starts serving: check the data folder, migrate, and
    load the log's key (creating the log's identity on its first start), so that a server that
    could not sign checkpoints never starts.

    With `private_umask` (what `serve` asks for), the process's umask becomes 0o077 first, so
    whatever the server, its workers and its eval processes create without choosing a mode (logs,
    eval outputs, files written by libraries) is private too. Secret files never rely on it: they
    are created with their mode (`lineage.private_files`).

    Raises:
        DataDirError: see `check_data_dir`, `export_database_log_key`.
        LogKeyError: the log key file is missing, not private or not the log's key.
    """
    from .db import make_engine
    from .log.service import require_key

    if private_umask:
        os.umask(0o077)
    check_data_dir(settings)
    migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        require_key(engine, settings)
    finally:
        engine.dispose()
