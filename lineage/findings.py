"""Findings: what the weights say against declared lineage, and reviewers' decisions on them.

A model registered with a fingerprint (`lineage.fingerprint`) is tested by the registry against
its declared weights-lineage parents and against registered root models of the same input space.
Two disagreements become a finding:

- `declared_parent_contradicted`: a declared parent whose fingerprint is comparable and whose
  weights show no shared initialisation with the child's;
- `undeclared_shared_base`: a root model that the weights say shares an initialisation with the
  child, although it is not among the child's declared weights ancestors.

A finding is a statement the registry itself signs (with the transparency log's key) and logs,
carrying the statistic and the p-value, so anyone can check that the registry raised it and when.
A reviewer decides on it with a signed statement of their own: a confirmation (for an undeclared
shared base it adds the `initialized_from` edge child -> base, so the risk rule sees it) or a
dismissal with a reason. Decisions name the finding by the sha256 of the finding statement's
payload, which is the same in every copy of the registry (ids are not).

`screen` computes the test's statistic alone, vectorised over many candidates, so the registry
runs the permutation test (hundreds of relabellings) only where the decision can be "shared":
`shared_base` decides "shared" only for ``r >= MIN_EFFECT``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import DigestError, InvalidStatementError
from .statements import STATEMENT_TYPE
from .types import check_digest, check_text

__all__ = [
    "CONFIRMATION_PREDICATE",
    "DISMISSAL_PREDICATE",
    "FINDING_PREDICATE",
    "MAX_DECISION_REASON",
    "DecisionClaim",
    "FindingClaim",
    "FindingKind",
    "FindingStatus",
    "confirmation_statement",
    "dismissal_statement",
    "finding_statement",
    "parse_decision",
    "parse_finding",
    "screen",
]

FINDING_PREDICATE = "https://studbook.dev/attestations/weights-finding/v1"
"""Signed by the registry: the weights of subject[0] contradict a declared parent, or share a
base nobody declared with subject[1]."""
CONFIRMATION_PREDICATE = "https://studbook.dev/attestations/finding-confirmation/v1"
DISMISSAL_PREDICATE = "https://studbook.dev/attestations/finding-dismissal/v1"
MAX_DECISION_REASON = 4000
_MAX_FINDING_REASON = 500


class FindingKind(StrEnum):
    """What the weights contradict."""

    DECLARED_PARENT_CONTRADICTED = "declared_parent_contradicted"
    UNDECLARED_SHARED_BASE = "undeclared_shared_base"


class FindingStatus(StrEnum):
    """Where a finding stands in the review queue."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


@dataclass(frozen=True, slots=True)
class FindingClaim:
    """What a finding statement says: `model`'s weights against `other`'s."""

    kind: FindingKind
    model: str
    other: str
    relation: str | None
    statistic: float
    p_value: float
    permutations: int
    reason: str
    scheme: str
    registration: str


@dataclass(frozen=True, slots=True)
class DecisionClaim:
    """A reviewer's decision on the finding whose statement payload hashes to `finding`."""

    confirmed: bool
    model: str
    finding: str
    reason: str


def _subject(label: str, digest: str) -> dict[str, Any]:
    return {"name": label, "digest": {"sha256": check_digest(digest)}}


def finding_statement(
    kind: FindingKind,
    model: tuple[str, str],
    other: tuple[str, str],
    *,
    statistic: float,
    p_value: float,
    permutations: int,
    reason: str,
    scheme: str,
    registration: str,
    relation: str | None = None,
) -> dict[str, Any]:
    """The statement the registry signs for a finding.

    Args:
        kind: what the weights contradict.
        model, other: (digest, label) of the model just registered and of the model it was
            tested against (the declared parent, or the root model it shares a base with).
        statistic, p_value, permutations, reason: `lineage.fingerprint.Comparison`'s answer.
        scheme: the fingerprint scheme both were compared under.
        registration: payload digest of the registration that triggered the test.
        relation: the declared relation, for a contradicted parent.
    """
    return {
        "_type": STATEMENT_TYPE,
        "subject": [_subject(model[1], model[0]), _subject(other[1], other[0])],
        "predicateType": FINDING_PREDICATE,
        "predicate": {
            "kind": kind.value,
            "relation": relation,
            "statistic": round(float(statistic), 6),
            "p_value": round(float(p_value), 6),
            "permutations": int(permutations),
            "reason": reason[:_MAX_FINDING_REASON],
            "scheme": scheme,
            "registration": check_digest(registration),
        },
    }


def _digest_at(statement: Mapping[str, Any], i: int) -> str:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) <= i or not isinstance(subjects[i], dict):
        raise InvalidStatementError(f"subject[{i}] is missing", field=f"subject[{i}]")
    digests = subjects[i].get("digest")
    if not isinstance(digests, dict) or not isinstance(digests.get("sha256"), str):
        raise InvalidStatementError(
            f"subject[{i}].digest must have a sha256 entry", field=f"subject[{i}].digest"
        )
    try:
        return check_digest(digests["sha256"], field_name=f"subject[{i}].digest.sha256")
    except DigestError as exc:
        raise InvalidStatementError(exc.message, field=exc.field) from exc


def _number(pred: Mapping[str, Any], name: str, lo: float, hi: float) -> float:
    value = pred.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidStatementError(
            f"predicate.{name} must be a number in [{lo}, {hi}]", field=f"predicate.{name}"
        )
    return float(value)


def parse_finding(statement: Mapping[str, Any]) -> FindingClaim:
    """Read a finding statement (the registry's own; checked all the same).

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    if statement.get("predicateType") != FINDING_PREDICATE:
        raise InvalidStatementError("not a finding statement", field="predicateType")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 2:
        raise InvalidStatementError("a finding names exactly two subjects", field="subject")
    model, other = _digest_at(statement, 0), _digest_at(statement, 1)
    if model == other:
        raise InvalidStatementError("a finding compares two different models", field="subject")
    pred = statement.get("predicate")
    if not isinstance(pred, dict):
        raise InvalidStatementError("predicate must be an object", field="predicate")
    try:
        kind = FindingKind(str(pred.get("kind")))
    except ValueError as exc:
        names = ", ".join(k.value for k in FindingKind)
        raise InvalidStatementError(
            f"predicate.kind must be one of: {names}", field="predicate.kind"
        ) from exc
    relation = pred.get("relation")
    if relation is not None and (not isinstance(relation, str) or len(relation) > 20):
        raise InvalidStatementError(
            "predicate.relation must be a relation name", field="predicate.relation"
        )
    permutations = pred.get("permutations")
    if not isinstance(permutations, int) or isinstance(permutations, bool) or permutations < 1:
        raise InvalidStatementError(
            "predicate.permutations must be a positive integer", field="predicate.permutations"
        )
    reason = check_text(
        pred.get("reason", ""), field_name="predicate.reason", max_len=500, empty=True
    )
    scheme = check_text(pred.get("scheme"), field_name="predicate.scheme", max_len=200)
    registration = pred.get("registration")
    try:
        registration = check_digest(str(registration), field_name="predicate.registration")
    except DigestError as exc:
        raise InvalidStatementError(exc.message, field=exc.field) from exc
    return FindingClaim(
        kind,
        model,
        other,
        relation,
        _number(pred, "statistic", -1.0, 1.0),
        _number(pred, "p_value", 0.0, 1.0),
        permutations,
        reason,
        scheme,
        registration,
    )


def _decision(
    predicate_type: str, model: str, finding: str, reason: str, label: str
) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [_subject(label, model)],
        "predicateType": predicate_type,
        "predicate": {"finding": check_digest(finding), "reason": reason},
    }


def confirmation_statement(
    model: str, finding: str, reason: str = "", *, label: str = "_"
) -> dict[str, Any]:
    """A reviewer confirms the finding (named by its statement's payload digest) on `model`."""
    return _decision(CONFIRMATION_PREDICATE, model, finding, reason, label)


def dismissal_statement(
    model: str, finding: str, reason: str, *, label: str = "_"
) -> dict[str, Any]:
    """A reviewer dismisses the finding, saying why (the reason is required)."""
    return _decision(DISMISSAL_PREDICATE, model, finding, reason, label)


def parse_decision(statement: Mapping[str, Any]) -> DecisionClaim:
    """Read a confirmation or dismissal. A dismissal needs a reason: a finding set aside without
    one is a decision nobody can review later.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    ptype = statement.get("predicateType")
    if ptype not in (CONFIRMATION_PREDICATE, DISMISSAL_PREDICATE):
        raise InvalidStatementError("not a finding decision", field="predicateType")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise InvalidStatementError("a decision names exactly one subject", field="subject")
    model = _digest_at(statement, 0)
    pred = statement.get("predicate")
    if not isinstance(pred, dict):
        raise InvalidStatementError("predicate must be an object", field="predicate")
    unknown = sorted(set(pred) - {"finding", "reason"})
    if unknown:
        raise InvalidStatementError(
            f"unknown predicate field {unknown[0]!r}", field=f"predicate.{unknown[0]}"
        )
    finding = pred.get("finding")
    if not isinstance(finding, str):
        raise InvalidStatementError(
            "predicate.finding must be the finding statement's sha256", field="predicate.finding"
        )
    try:
        finding = check_digest(finding, field_name="predicate.finding")
    except DigestError as exc:
        raise InvalidStatementError(exc.message, field=exc.field) from exc
    reason = check_text(
        pred.get("reason", ""),
        field_name="predicate.reason",
        max_len=MAX_DECISION_REASON,
        multiline=True,
        empty=True,
    )
    confirmed = ptype == CONFIRMATION_PREDICATE
    if not confirmed and not reason.strip():
        raise InvalidStatementError(
            "a dismissal needs a reason (why the weights evidence does not hold)",
            field="predicate.reason",
        )
    return DecisionClaim(confirmed, model, finding, reason)


def screen(gram: Sequence[float], others: Sequence[Sequence[float]]) -> list[float]:
    """The shared-base statistic (Pearson r of two Grams' upper triangles) of `gram` against
    each of `others`, at once; each has the same length (same scheme and indices).

    The same number `lineage.fingerprint.shared_base` reports, without its permutation null: a
    candidate under `MIN_EFFECT` cannot be decided "shared", so the registry tests only those
    above it.
    """
    import numpy as np

    if not others:
        return []
    a = np.asarray(gram, dtype=np.float64)
    b = np.asarray(others, dtype=np.float64)
    a = a - a.mean()
    b = b - b.mean(axis=1, keepdims=True)
    sa = float(np.sqrt((a * a).sum()))
    sb = np.sqrt((b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (b @ a) / (sa * sb)
    return [0.0 if not np.isfinite(v) else float(v) for v in r]
