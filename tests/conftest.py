"""Shared test configuration: golden files and database selection.

Integration tests run once per database. SQLite always runs. PostgreSQL runs when a server is
reachable at `STUDBOOK_TEST_POSTGRES_URL` (default: the local server, database `test`); with
`STUDBOOK_TEST_POSTGRES=require` (set by CI) an unreachable server fails the run instead of
skipping it, so CI can never pass silently on SQLite alone; with `STUDBOOK_TEST_POSTGRES=skip`
every PostgreSQL test is skipped without trying to connect.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", help="Rewrite golden files instead of comparing."
    )


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`STUDBOOK_TEST_POSTGRES=skip`: skip every test marked `postgres`, named as such."""
    from tests.support import postgres_skipped

    if not postgres_skipped():
        return
    skip = pytest.mark.skip(reason="PostgreSQL skipped (STUDBOOK_TEST_POSTGRES=skip)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
