"""Alembic is the only source of the schema: on an empty database `upgrade head` creates
exactly what the SQLModel tables declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import registry.models  # noqa: F401  (declares the tables)
from registry.db import upgrade
from tests.support import postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        yield from postgres_database()


def test_upgrade_head_matches_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, SQLModel.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_upgrade_is_repeatable(empty_database: str) -> None:
    upgrade(empty_database)
    upgrade(empty_database)  # a second run is a no-op, as `studbook serve` does on every start
