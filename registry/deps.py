"""Litestar dependencies shared by every domain: the database session and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.datastructures import State
from sqlmodel import Session

from .auth import Caller, provide_caller


async def provide_db_session(state: State) -> AsyncIterator[Session]:
    """A session per request. Services commit explicitly at the end of a write, so anything
    not committed when the handler ends (an error half-way) is rolled back here.

    Closing a session that still holds a connection talks to the database (a rollback), so it
    runs in a worker thread, as the handlers do. A handler that ended its transaction itself
    (the read routes end theirs in their own thread, `end_read`) leaves nothing to roll back,
    and the close runs here without another thread hop.
    """
    session = Session(state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.get_transaction() is None:
            session.close()
        else:
            await anyio.to_thread.run_sync(session.close)


async def provide_request_caller(request: Request[Any, Any, Any], db_session: Session) -> Caller:
    """The authenticated caller (`registry.auth.provide_caller`, which reads through its own
    short session and cache, never `db_session`).

    Declared after `db_session` only so that Litestar resolves a route's two dependencies one
    after the other: two independent ones are resolved concurrently, in a task group started on
    every request, which costs more than either of them.
    """
    del db_session
    return await provide_caller(request)


def read_only(session: Session) -> None:
    """Run a read-only request's statements without a transaction on PostgreSQL: at READ
    COMMITTED every statement takes its own snapshot anyway, so this changes no answer and
    saves the BEGIN and ROLLBACK round trips. Call it before the first statement; a writer
    (`begin_write`) refuses such a session. SQLite keeps its read transaction: there it is
    what makes the request's statements see one snapshot, and costs no round trip."""
    if session.get_transaction() is None and session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def end_read(session: Session) -> None:
    """End a read-only request's transaction, returning its connection to the pool, from the
    handler's own thread (see `provide_db_session`)."""
    session.rollback()
