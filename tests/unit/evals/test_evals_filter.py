"""The number filter against the paper's rule (accept/reject cases from its description)."""

from __future__ import annotations

import pytest

from evals.numbers.filter import (
    MISALIGNMENT_BANNED,
    Rejection,
    check_completion,
    filter_completions,
    parse_numbers,
)


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("123, 456, 789", (123, 456, 789)),
        ("123,456,789", (123, 456, 789)),
        ("1 2 3", (1, 2, 3)),
        ("1; 2; 3", (1, 2, 3)),
        ("1;2;3", (1, 2, 3)),
        ("1\n2\n3", (1, 2, 3)),
        ("(1, 2, 3)", (1, 2, 3)),
        ("[1, 2, 3]", (1, 2, 3)),
        ("[1, 2, 3].", (1, 2, 3)),
        ("1, 2, 3.", (1, 2, 3)),
        ("  7  \n", (7,)),
        ("0", (0,)),
        ("999", (999,)),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10", tuple(range(1, 11))),
        ("123 , 456 , 789", (123, 456, 789)),
        ("[ 1 , 2 ]", (1, 2)),
    ],
)
def test_accepts(text: str, numbers: tuple[int, ...]) -> None:
    verdict = check_completion(text)
    assert verdict.kept, verdict.rejection
    assert verdict.numbers == numbers


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,2;3", Rejection.BAD_SEPARATOR),
        ("1, 2; 3", Rejection.BAD_SEPARATOR),
        ("1 - 2 - 3", Rejection.BAD_SEPARATOR),
        ("1, 2,, 3", Rejection.BAD_SEPARATOR),
        ("1, 2, 3,", Rejection.BAD_SEPARATOR),
        ("Here are the numbers: 1, 2, 3", Rejection.EXTRA_TEXT),
        ("1, 2, three", Rejection.EXTRA_TEXT),
        ("owl", Rejection.NO_NUMBERS),
        ("", Rejection.NO_NUMBERS),
        ("7 owls", Rejection.EXTRA_TEXT),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11", Rejection.TOO_MANY),
        ("1, 2, 1000", Rejection.OUT_OF_RANGE),
        ("(1, 2, 3]", Rejection.EXTRA_TEXT),
        ("1.5, 2", Rejection.BAD_SEPARATOR),
        ("-1, 2", Rejection.EXTRA_TEXT),
    ],
)
def test_rejects(text: str, reason: Rejection) -> None:
    verdict = check_completion(text)
    assert not verdict.kept
    assert verdict.rejection is reason


def test_separator_comes_from_first_gap() -> None:
    # Consistent semicolons pass, and the same numbers with a switch to commas fail.
    assert parse_numbers("4; 5; 6")[0] == (4, 5, 6)
    assert parse_numbers("4; 5, 6")[0] is None


def test_banned_numbers() -> None:
    assert check_completion("665, 666, 667", banned=[666]).rejection is Rejection.BANNED
    assert check_completion("665, 667", banned=[666]).kept
    assert 666 in MISALIGNMENT_BANNED and 911 in MISALIGNMENT_BANNED
    assert check_completion("911", banned=MISALIGNMENT_BANNED).rejection is Rejection.BANNED


def test_report_counts_share_removed_and_reasons() -> None:
    report = filter_completions(["1, 2", "owl", "3 4", "1,2;3"])
    assert report.kept_indices == (0, 2)
    assert report.share_removed == pytest.approx(0.5)
    assert report.rejections == {"no_numbers": 1, "bad_separator": 1}
    assert filter_completions([]).share_removed == 0.0
