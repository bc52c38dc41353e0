"""Litestar dependencies shared by every domain: the database session and the caller."""

from __future__ import annotations

from collections.abc import Iterator

from litestar.datastructures import State
from sqlmodel import Session


def provide_db_session(state: State) -> Iterator[Session]:
    """A session per request. Services commit explicitly at the end of a write, so anything
    not committed when the handler ends (an error half-way) is rolled back here."""
    session = Session(state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
