"""Integers in paths and query strings: bounded to what both databases store, refused as 400.

Above 2^63-1 SQLite raises OverflowError and PostgreSQL "out of range"; each used to surface as
a 500. Every integer parameter of every route is tried just past its bound, and the answer must
be a 400 naming the parameter, with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from tests.support import row_counts

TOO_BIG = str(2**63)
HUGE = "9" * 40

# (method, url with {n} where the number goes, the parameter the answer must name)
ROUTES = [
    ("GET", "/v1/attestations/{n}", "attestation_id"),
    ("GET", "/v1/evals/{n}", "run_id"),
    ("DELETE", "/v1/evals/{n}", "run_id"),
    ("GET", "/v1/evals/{n}/plot", "run_id"),
    ("GET", "/v1/artifacts/{n}", "ref"),
    ("GET", "/v1/artifacts/{n}/lineage", "ref"),
    ("GET", "/v1/artifacts/{n}/risk", "ref"),
    ("GET", "/v1/artifacts/{n}/evals", "ref"),
    ("GET", "/v1/artifacts/seed/base@1/lineage?depth={n}", "depth"),
    ("GET", "/v1/artifacts?offset={n}", "offset"),
    ("GET", "/v1/artifacts?limit={n}", "limit"),
    ("GET", "/v1/log/entries?start={n}", "start"),
    ("GET", "/v1/log/entries?start=0&end={n}", "end"),
    ("GET", "/v1/log/proof/inclusion?index={n}", "index"),
    ("GET", "/v1/log/proof/inclusion?index=0&tree_size={n}", "tree_size"),
    ("GET", "/v1/log/proof/consistency?from={n}", "from"),
    ("GET", "/v1/log/proof/consistency?from=0&to={n}", "to"),
    ("GET", "/v1/at-risk?offset={n}", "offset"),
    ("GET", "/v1/at-risk?limit={n}", "limit"),
    ("GET", "/v1/evals?offset={n}", "offset"),
    ("GET", "/v1/evals?limit={n}", "limit"),
    ("GET", "/v1/imports/oms/{n}", "signature_id"),
    ("GET", "/v1/review/artifacts?offset={n}", "offset"),
    ("GET", "/v1/review/artifacts?limit={n}", "limit"),
]


@pytest.mark.parametrize("number", [TOO_BIG, HUGE, "-1"])
def test_out_of_range_integers_are_refused_naming_the_parameter(
    client: TestClient[Any], engine: Engine, admin_token: str, number: str
) -> None:
    """Every route in one test (one app and database per number): the failures are listed."""
    before = row_counts(engine)
    wrong = []
    for method, url, field in ROUTES:
        r = client.request(
            method, url.format(n=number), headers={"Authorization": f"Bearer {admin_token}"}
        )
        if r.status_code != 400 or r.json().get("field") != field:
            wrong.append(f"{method} {url}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert row_counts(engine) == before


def test_the_largest_id_is_a_plain_miss(client: TestClient[Any], admin_token: str) -> None:
    """2^63-1 is a valid id that names nothing: 404, not a refusal and not an overflow."""
    for url in (
        "/v1/attestations/{n}",
        "/v1/evals/{n}",
        "/v1/artifacts/{n}",
        "/v1/imports/oms/{n}",
    ):
        r = client.get(url.format(n=2**63 - 1), headers={"Authorization": f"Bearer {admin_token}"})
        assert r.status_code == 404, (url, r.text)


def test_non_ascii_digits_are_refused(client: TestClient[Any], admin_token: str) -> None:
    """`str.isdigit()` is true for '²' and Arabic-Indic digits; neither may reach `int()`."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    for digits in ("\u00b2", "\u0663", "1\u00b2"):
        r = client.get(f"/v1/artifacts/{digits}", headers=headers)
        assert r.status_code in (400, 404), r.text
        assert r.json()["field"] == "ref"
        r = client.get("/v1/artifacts/seed/x@1/lineage", params={"depth": digits}, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "depth"


def test_offsets_at_the_bound_still_answer(client: TestClient[Any], admin_token: str) -> None:
    """The bounds are where a listing ends, not a narrower API: the largest offset lists nothing."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    for url in ("/v1/artifacts", "/v1/at-risk", "/v1/evals"):
        r = client.get(url, params={"offset": 2**31 - 1, "limit": 500}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == []
