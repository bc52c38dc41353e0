"""Schemathesis over the OpenAPI document, against the real app on SQLite and PostgreSQL.

Every operation the document lists is called with generated requests, valid and invalid
(positive and negative generation), with an admin token, on a registry that already holds a
small lineage graph (so ids, names and digests in requests can hit real rows). Three checks run
on every answer:

- `not_a_server_error`: no input makes the registry answer 5xx;
- `response_schema_conformance`: every answer's body matches the schema documented for its
  status (error bodies included);
- `status_code_conformance`: no status the document does not list.

The run is deterministic (`derandomize`, no example database) and bounded (`MAX_EXAMPLES` per
operation and mode), so it costs about a minute per database on two cores. Shrinking is off: the
first failing case of an operation is reported as found, and every operation is still run, so
one report lists everything that is wrong.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.python import asgi
from sqlalchemy.engine import Engine

from registry.auth import Role
from tests.support import make_actor, register

MAX_EXAMPLES = 50

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.status_code_conformance,
]


def _seed(client: TestClient[Any], engine: Engine) -> None:
    """A base, a fine-tune, a dataset it was trained on: ids 1..3 exist, as do log entries."""
    actor = make_actor(client, engine, "seed-pipeline", Role.REGISTRAR)
    register(client, actor, "model", "seed/base@1")
    register(client, actor, "dataset", "seed/data@1")
    register(
        client,
        actor,
        "model",
        "seed/tuned@1",
        [("fine_tuned_from", "seed/base@1"), ("trained_on", "seed/data@1")],
    )


def _operations(schema: Any) -> list[Any]:
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())  # an operation the loader cannot read is itself a failure
    return ops


def _exercise(operation: Any, mode: Any, headers: dict[str, str], seen: Counter[int]) -> str | None:
    """Run one operation's generated cases in `mode`; the first failure, described, or None.
    `seen` counts the answers' statuses (to show the run reached the handlers)."""
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is enough
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen[response.status_code] += 1

    try:
        run()
    except Unsatisfiable:  # no invalid request exists (an operation without inputs)
        return None
    except (Exception, BaseExceptionGroup) as exc:  # a check failure, with its case
        return f"{operation.label} [{mode.value}]: {type(exc).__name__}: {exc}"
    return None


@pytest.mark.slow
def test_every_operation_holds_to_the_document(
    client: TestClient[Any], engine: Engine, admin_token: str
) -> None:
    _seed(client, engine)
    schema = schemathesis.openapi.from_asgi("/docs/openapi.json", client.app)
    headers = {"Authorization": f"Bearer {admin_token}"}
    operations = _operations(schema)
    assert len(operations) >= 20, [op.label for op in operations]
    failures = []
    seen: Counter[int] = Counter()
    try:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failure = _exercise(operation, mode, headers, seen)
                if failure:
                    failures.append(failure)
    finally:
        asgi.shutdown_lifespans()
    assert not failures, "\n\n".join(failures)
    # The run reached the handlers: accepted requests, and refusals of each kind of input.
    assert sum(n for status, n in seen.items() if status < 300) >= 100, seen
    assert seen[400] >= 50 and seen[404] >= 1, seen
