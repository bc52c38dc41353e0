"""Property: whatever body the boundary accepts can be encoded back, and it accepts it unchanged.

`registry.boundary.decode_body` is the one JSON decoder of request bodies. For arbitrary JSON
(any text, lone surrogates and NUL included, any integer, any depth up to past the limit) it
either refuses with a `BadRequestError` naming a field, or returns exactly what the standard
library decodes, and that value encodes back to UTF-8 JSON: nothing accepted is unservable.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.boundary import MAX_BODY_DEPTH, MAX_ID, MIN_INT, decode_body
from registry.errors import BadRequestError

_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    _text,
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=20,
)


def _nest(value: Any, levels: int) -> Any:
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def _clean(value: Any, depth: int = 0) -> bool:
    """What the boundary promises: depth, scalar values without NUL, int64, finite numbers."""
    if isinstance(value, dict | list):
        if depth >= MAX_BODY_DEPTH:
            return False
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return all(
            (not isinstance(k, str) or _clean(k, depth)) and _clean(v, depth + 1) for k, v in items
        )
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return MIN_INT <= value <= MAX_ID
    return math.isfinite(value)


@settings(max_examples=300, deadline=None)
@given(value=_json, levels=st.sampled_from([0, 1, 30, MAX_BODY_DEPTH - 1, MAX_BODY_DEPTH, 200]))
def test_accepted_bodies_round_trip_and_refusals_name_a_field(value: Any, levels: int) -> None:
    body = json.dumps(_nest(value, levels)).encode()  # ASCII: surrogates as \ud800 escapes
    expected = json.loads(body)
    try:
        decoded = decode_body(body)
    except BadRequestError as exc:
        assert exc.field, exc.message
        assert not _clean(expected), (exc.message, exc.field)
        json.dumps({"detail": exc.message, "field": exc.field}, ensure_ascii=False).encode()
        return
    assert _clean(expected)
    assert decoded == expected
    # Servable: the standard encoders take it back without error.
    json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    msgspec.json.encode(decoded)


@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_as_another_error(raw: bytes) -> None:
    try:
        decode_body(raw)
    except BadRequestError as exc:
        assert exc.field


@given(text=_text)
def test_error_answers_can_always_be_encoded(text: str) -> None:
    """An error that echoes client text (a reference, a field) is encodable whatever the text:
    a refusal must never itself become a response that fails to serialise."""
    from registry.errors import NotFoundError, exception_handler

    exc = NotFoundError(f"no artifact {text}", field=text or None, ref=text, path=[text])
    response = exception_handler(None, exc)  # type: ignore[arg-type]  (unused for this error)
    assert response.status_code == 404
    encoded = msgspec.json.encode(response.content)
    assert json.loads(encoded)["status_code"] == 404
