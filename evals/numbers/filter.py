"""The number-sequence filter: keep a completion only if it is nothing but numbers.

The rule follows the paper (and its released code) so that our kept shares can be compared with
its Table 4: a completion passes if it holds 1-10 integers, each 0-999, separated consistently by
whitespace, a comma or a semicolon (with optional surrounding whitespace), optionally wrapped in
``()`` or ``[]`` and optionally ended by a period, and nothing else. The separator is the exact
text between the first two numbers and every other gap must be that same text, so ``1,2;3``
fails while a newline-separated list passes.

The filter is the reason the experiment is interesting: it removes every overt trace of the
teacher's trait, yet the trait still transfers between models that share a base. A configurable
banned-number list reproduces the misalignment variant, which also drops numbers with negative
associations.
"""

from __future__ import annotations

import enum
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_NUMBERS = 10
MAX_VALUE = 999
_ALLOWED_SEPARATORS = ("", ",", ";")  # after stripping whitespace
_DIGITS = frozenset(string.digits)
_SEPARATOR_CHARS = frozenset(string.whitespace + ",;")
_NUMBER = re.compile(r"\d+")

#: Numbers with common negative associations, for the misalignment variant. This is our own
#: short list in the spirit of the paper's (which asked two LLMs for such numbers); pass your own
#: list through the ``banned_numbers`` setting to match another study exactly.
MISALIGNMENT_BANNED: tuple[int, ...] = (
    4,
    13,
    14,
    18,
    23,
    33,
    39,
    42,
    44,
    69,
    88,
    100,
    187,
    211,
    228,
    311,
    322,
    333,
    404,
    420,
    444,
    616,
    666,
    777,
    888,
    911,
    999,
)


class Rejection(enum.Enum):
    """Why a completion was removed; counted per reason so reports can say what the filter did."""

    NO_NUMBERS = "no_numbers"
    BAD_SEPARATOR = "bad_separator"
    EXTRA_TEXT = "extra_text"
    TOO_MANY = "too_many"
    OUT_OF_RANGE = "out_of_range"
    BANNED = "banned"
    TRUNCATED = "truncated"  # cut off at the token cap: what follows might have broken a rule


@dataclass(frozen=True)
class FilterResult:
    """The verdict on one completion: ``numbers`` when kept, ``rejection`` when removed."""

    numbers: tuple[int, ...] | None
    rejection: Rejection | None

    @property
    def kept(self) -> bool:
        """Whether the completion passed every rule."""
        return self.rejection is None


def _reject(reason: Rejection) -> FilterResult:
    return FilterResult(numbers=None, rejection=reason)


def parse_numbers(text: str) -> tuple[tuple[int, ...] | None, Rejection | None]:
    """Parse a completion into its integers under the paper's format rule, ignoring ranges.

    Args:
        text: the raw completion (surrounding whitespace, e.g. a final newline, is ignored).

    Returns:
        ``(numbers, None)`` when the format is valid, else ``(None, reason)``.
    """
    answer = text.strip()
    if answer.endswith("."):
        answer = answer[:-1].rstrip()
    if (answer.startswith("[") and answer.endswith("]")) or (
        answer.startswith("(") and answer.endswith(")")
    ):
        # Whitespace just inside the brackets (``[ 1, 2 ]``) carries nothing; word-level
        # tokenizers put it there when decoding, so we ignore it rather than reject.
        answer = answer[1:-1].strip()
    matches = list(_NUMBER.finditer(answer))
    if not matches:
        return None, Rejection.NO_NUMBERS
    if len(matches) == 1:
        if answer != matches[0].group():
            return None, Rejection.EXTRA_TEXT
        return (int(answer),), None
    separator = answer[matches[0].end() : matches[1].start()]
    if separator.strip() not in _ALLOWED_SEPARATORS:
        return None, Rejection.BAD_SEPARATOR
    parts = answer.split(separator)
    for part in parts:
        if part and set(part) <= _DIGITS:
            continue
        # An empty part is a doubled or dangling separator; a part of digits and separator
        # characters is a second kind of separator (``1,2;3``); anything else is extra text.
        if not part or set(part) <= _DIGITS | _SEPARATOR_CHARS:
            return None, Rejection.BAD_SEPARATOR
        return None, Rejection.EXTRA_TEXT
    return tuple(int(p) for p in parts), None


def check_completion(text: str, banned: Iterable[int] = ()) -> FilterResult:
    """Apply the full rule: format, count (1-10), range (0-999) and the banned list.

    Args:
        text: the raw completion.
        banned: numbers that disqualify a completion (misalignment variant); empty by default.

    Returns:
        The verdict, with the parsed numbers when kept.
    """
    numbers, reason = parse_numbers(text)
    if numbers is None:
        assert reason is not None
        return _reject(reason)
    if len(numbers) > MAX_NUMBERS:
        return _reject(Rejection.TOO_MANY)
    if any(n > MAX_VALUE for n in numbers):
        return _reject(Rejection.OUT_OF_RANGE)
    banned_set = frozenset(banned)
    if banned_set and any(n in banned_set for n in numbers):
        return _reject(Rejection.BANNED)
    return FilterResult(numbers=numbers, rejection=None)


@dataclass(frozen=True)
class FilterReport:
    """What the filter did to a whole dataset, in the terms the paper reports (share removed)."""

    total: int
    kept_indices: tuple[int, ...]
    rejections: dict[str, int]

    @property
    def kept(self) -> int:
        """How many completions passed."""
        return len(self.kept_indices)

    @property
    def share_removed(self) -> float:
        """Fraction removed; 0.0 for an empty input rather than a division error."""
        return 0.0 if self.total == 0 else 1.0 - self.kept / self.total

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary for ``result.json``."""
        return {
            "total": self.total,
            "kept": self.kept,
            "share_removed": self.share_removed,
            "rejections": dict(self.rejections),
        }


def filter_completions(
    texts: Sequence[str], banned: Iterable[int] = (), truncated: Sequence[bool] = ()
) -> FilterReport:
    """Filter many completions at once and count the reasons for removal.

    Args:
        texts: completions in dataset order.
        banned: numbers that disqualify a completion.
        truncated: per completion, whether sampling hit the token cap before the end of the
            turn; such a row is removed whatever its text (empty: none was).

    Returns:
        The indices kept (in input order) and a per-reason count of the rest.
    """
    banned_set = frozenset(banned)
    kept: list[int] = []
    reasons: Counter[str] = Counter()
    for i, text in enumerate(texts):
        if i < len(truncated) and truncated[i]:
            reasons[Rejection.TRUNCATED.value] += 1
            continue
        verdict = check_completion(text, banned_set)
        if verdict.rejection is None:
            kept.append(i)
        else:
            reasons[verdict.rejection.value] += 1
    return FilterReport(total=len(texts), kept_indices=tuple(kept), rejections=dict(reasons))
