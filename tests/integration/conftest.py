"""Integration fixtures: a real database per backend, a real app, real signatures.

Each backend's database is created once per session with Alembic (never `create_all`), and every
table is emptied after each test, so tests see an empty registry without paying for a new schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from registry.app import create_app
from registry.auth import Role
from registry.db import make_engine, upgrade
from registry.principals.service import bootstrap_admin
from registry.settings import Settings
from tests.support import Actor, make_actor, postgres_database


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "studbook.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
    else:
        gen = postgres_database()
        url = next(gen)
        upgrade(url)
        yield url
        for _ in gen:
            pass


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f"DELETE FROM {t}"))
            conn.execute(text("DELETE FROM sqlite_sequence")) if _has_sequence(conn) else None


def _truncate_data(engine: Engine) -> None:
    """Empty the registry's content but keep principals and keys (for property tests that run
    many examples inside one test)."""
    keep = {"principals", "api_tokens", "keys", "log_keys", "alembic_version"}
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables) if t.name not in keep]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for t in tables:
                conn.execute(text(f"DELETE FROM {t}"))


def _has_sequence(conn: Any) -> bool:
    return (
        conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
        is not None
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient[Any]]:
    _truncate(engine)
    app = create_app(settings, engine=engine)
    with TestClient(app) as c:
        yield c
    _truncate(engine)


@pytest.fixture
def admin_token(client: TestClient[Any], engine: Engine, settings: Settings) -> str:
    with Session(engine) as session:
        token = bootstrap_admin(session, settings.admin_token_file)
    assert token is not None
    return token


@pytest.fixture
def registrar(client: TestClient[Any], engine: Engine) -> Actor:
    return make_actor(client, engine, "pipeline", Role.REGISTRAR)


@pytest.fixture
def reviewer(client: TestClient[Any], engine: Engine) -> Actor:
    return make_actor(client, engine, "reviewer", Role.REVIEWER)
