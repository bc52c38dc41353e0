"""`check_json_tree`'s quick walk accepts exactly what the naming walk accepts, at the same
depth, and anything it refuses is refused with the naming walk's error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.errors import InvalidStatementError
from lineage.statements import _clean_depth, _named_check, check_json_tree

_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x00", "\ud800", "\udfff", "a", "é"]),
    ),
    max_size=6,
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=30,
)


def _outcome(check: Any, value: object, max_depth: int) -> tuple[str, Any]:
    try:
        return ("ok", check(value, root="predicate", max_depth=max_depth))
    except InvalidStatementError as exc:
        return ("refused", (exc.message, exc.field))


@settings(max_examples=400, deadline=None)
@given(_VALUES, st.integers(min_value=1, max_value=5))
def test_the_quick_walk_agrees_with_the_naming_walk(value: object, max_depth: int) -> None:
    named = _outcome(_named_check, value, max_depth)
    assert _outcome(check_json_tree, value, max_depth) == named
    quick = _clean_depth(value, max_depth)
    assert (quick is None) == (named[0] == "refused")
    if quick is not None:
        assert quick == named[1]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": ["x", "y\x00"]}, "predicate.a[1]"),
        ({"k\ud800": 1}, "predicate.k\\ud800"),
        ({"a": {"b": 2**63}}, "predicate.a.b"),
        ({"a": float("inf")}, "predicate.a"),
        ({"a": [[[[[]]]]]}, "predicate.a[0][0][0]"),
    ],
)
def test_an_offence_is_named_by_its_path(value: object, field: str) -> None:
    with pytest.raises(InvalidStatementError) as info:
        check_json_tree(value, root="predicate", max_depth=4)
    assert info.value.field == field
