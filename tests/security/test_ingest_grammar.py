"""The ingest rules as properties (pure: no database): whatever the validators accept is a name
a person can read and a URL can carry, and a value every answer can encode.

Hypothesis draws arbitrary text (any code point, lone surrogates included) and arbitrary JSON;
the properties say what acceptance guarantees, so a validator that lets something through that
could not be served fails here.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.errors import InvalidStatementError
from lineage.statements import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    canonical_json,
    check_metadata,
    parse_registration,
    parse_statement,
)
from lineage.types import (
    BIDI_CONTROLS,
    MAX_NAME,
    MAX_VERSION,
    ZERO_WIDTH,
    check_name,
    check_version,
)
from tests.security._ingest import payload_of, registration

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
# Name-like text built from the characters the rules are about ("e" + U+0301 is not NFC).
NAMEISH = st.lists(
    st.sampled_from([*"ab/.@\\~: -_%?#", "\u00e9", "e\u0301", "\u202e", "\u200b", "\x00"]),
    max_size=12,
).map("".join)


def _readable(value: str) -> None:
    assert unicodedata.is_normalized("NFC", value)
    assert all(c.isprintable() and not c.isspace() for c in value)
    assert not (set(value) & (BIDI_CONTROLS | ZERO_WIDTH))
    assert "@" not in value and "\\" not in value
    value.encode("utf-8")  # scalar values only


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(ANY_TEXT, NAMEISH))
def test_an_accepted_name_is_readable_relative_and_unambiguous(value: str) -> None:
    try:
        name = check_name(value, field_name="n")
    except InvalidStatementError as exc:
        assert exc.field == "n"
        return
    _readable(name)
    assert 0 < len(name) <= MAX_NAME
    assert not name.startswith(("/", "~"))
    assert all(seg not in ("", ".", "..") for seg in name.split("/"))
    label = f"{name}@1"
    assert label.rpartition("@") == (name, "@", "1")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(ANY_TEXT, NAMEISH))
def test_an_accepted_version_has_no_slash_and_no_dot_segments(value: str) -> None:
    try:
        version = check_version(value, field_name="v")
    except InvalidStatementError as exc:
        assert exc.field == "v"
        return
    _readable(version)
    assert 0 < len(version) <= MAX_VERSION
    assert "/" not in version and version not in (".", "..")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=30,
)


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = {"n": value}
    return value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, st.integers(min_value=0, max_value=MAX_METADATA_DEPTH + 2))
def test_accepted_metadata_can_be_encoded_by_every_answer(value: Any, depth: int) -> None:
    """Through the signed payload (JSON with escapes) and the statement parser, as ingest does."""
    metadata = _nest({"v": value}, depth)
    statement = registration("acme/m", metadata=metadata)
    try:
        parsed = parse_registration(parse_statement(payload_of(statement)))
    except InvalidStatementError as exc:
        assert exc.field
        json.dumps(exc.field)
        exc.field.encode("utf-8")  # the refusal itself can be sent back
        return
    encoded = msgspec.json.encode({"metadata": parsed.metadata})  # what the API answers with
    assert msgspec.json.decode(encoded)["metadata"] == parsed.metadata
    assert len(canonical_json(parsed.metadata)) <= MAX_METADATA_BYTES


def test_metadata_depth_limit_is_exact() -> None:
    check_metadata(_nest({}, MAX_METADATA_DEPTH - 1))
    with pytest.raises(InvalidStatementError):
        check_metadata(_nest({}, MAX_METADATA_DEPTH))
