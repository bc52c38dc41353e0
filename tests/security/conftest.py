"""Security tests run against the same real databases and app as the integration tests.

The fixtures are the integration ones (one Alembic-built database per backend, every table
emptied after each test), imported rather than copied so both suites see the same registry.
"""

from tests.integration.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    admin_token,
    client,
    database_url,
    engine,
    registrar,
    reviewer,
    settings,
)
