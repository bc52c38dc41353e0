"""Reviewers' statements: flags and clearances, as in-toto predicates.

A flag says an artifact carries a trait (with a severity, a reason and evidence); a clearance
says, with evidence, that it does not. Both are signed by a reviewer and name the artifact by
digest as the statement's single subject, like every Studbook statement. The registry orders them
by acceptance and turns them into `lineage.risk.Flag` / `Clearance` values; this module only
defines and checks their wire shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import DigestError, InvalidStatementError
from .risk import Severity
from .statements import STATEMENT_TYPE
from .types import check_digest, check_text

__all__ = [
    "ACCEPTANCE_PREDICATE",
    "CLEARANCE_PREDICATE",
    "FLAG_PREDICATE",
    "MAX_ACCEPTANCE_DAYS",
    "AcceptanceClaim",
    "ReviewClaim",
    "acceptance_statement",
    "clearance_statement",
    "flag_statement",
    "parse_acceptance",
    "parse_review",
]

FLAG_PREDICATE = "https://studbook.dev/attestations/flag/v1"
CLEARANCE_PREDICATE = "https://studbook.dev/attestations/clearance/v1"
ACCEPTANCE_PREDICATE = "https://studbook.dev/attestations/risk-acceptance/v1"
"""A reviewer accepts a model's risk for a trait, for a time: the model leaves the review queue
until `expires`, and nothing else changes (the mark stays, and still propagates; an acceptance is
a decision to live with a risk, not evidence against it, which is what a clearance is)."""
MAX_ACCEPTANCE_DAYS = 366

MAX_TRAIT = 100
MAX_REASON = 4000
MAX_EVIDENCE = 50


@dataclass(frozen=True, slots=True)
class ReviewClaim:
    """What a flag or clearance statement says. `severity` is None for a clearance."""

    artifact: str
    trait: str
    severity: Severity | None
    reason: str
    evidence: tuple[str, ...]

    @property
    def is_flag(self) -> bool:
        """True for a flag, False for a clearance."""
        return self.severity is not None


def _statement(
    predicate_type: str, artifact: str, label: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": label, "digest": {"sha256": check_digest(artifact)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def flag_statement(
    artifact: str,
    trait: str,
    severity: Severity,
    reason: str,
    evidence: tuple[str, ...] = (),
    *,
    label: str = "_",
) -> dict[str, Any]:
    """A flag: `artifact` carries `trait`."""
    return _statement(
        FLAG_PREDICATE,
        artifact,
        label,
        {"trait": trait, "severity": severity.value, "reason": reason, "evidence": list(evidence)},
    )


def clearance_statement(
    artifact: str, trait: str, reason: str, evidence: tuple[str, ...], *, label: str = "_"
) -> dict[str, Any]:
    """A clearance: with `evidence`, `artifact` does not carry `trait`."""
    return _statement(
        CLEARANCE_PREDICATE,
        artifact,
        label,
        {"trait": trait, "reason": reason, "evidence": list(evidence)},
    )


def parse_review(statement: Mapping[str, Any]) -> ReviewClaim:
    """Read a flag or clearance predicate.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    ptype = statement.get("predicateType")
    if ptype not in (FLAG_PREDICATE, CLEARANCE_PREDICATE):
        raise InvalidStatementError("not a flag or clearance statement", field="predicateType")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise InvalidStatementError("a review names exactly one subject", field="subject")
    digest_map = subjects[0].get("digest") if isinstance(subjects[0], dict) else None
    if not isinstance(digest_map, dict) or "sha256" not in digest_map:
        raise InvalidStatementError(
            "subject[0].digest must have a sha256 entry", field="subject[0].digest"
        )
    try:
        artifact = check_digest(str(digest_map["sha256"]), field_name="subject[0].digest.sha256")
    except DigestError as exc:
        raise InvalidStatementError(exc.message, field=exc.field) from exc
    pred = statement.get("predicate")
    if not isinstance(pred, dict):
        raise InvalidStatementError("predicate must be an object", field="predicate")
    trait = pred.get("trait")
    if (
        not isinstance(trait, str)
        or not trait.strip()
        or trait != trait.strip()
        or len(trait) > MAX_TRAIT
    ):
        raise InvalidStatementError(
            f"predicate.trait must be 1-{MAX_TRAIT} characters without surrounding spaces",
            field="predicate.trait",
        )
    # Traits, reasons and references are read by people deciding on a model: the same readable-
    # text rules as artifact names (NFC, no control, bidi or zero-width characters), with spaces,
    # and newlines in the reason.
    check_text(trait, field_name="predicate.trait", max_len=MAX_TRAIT)
    reason = pred.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidStatementError(
            f"predicate.reason must be text of at most {MAX_REASON} characters",
            field="predicate.reason",
        )
    check_text(
        reason, field_name="predicate.reason", max_len=MAX_REASON, multiline=True, empty=True
    )
    evidence = pred.get("evidence", [])
    if (
        not isinstance(evidence, list)
        or len(evidence) > MAX_EVIDENCE
        or not all(isinstance(e, str) and 0 < len(e) <= 500 for e in evidence)
    ):
        raise InvalidStatementError(
            f"predicate.evidence must be a list of at most {MAX_EVIDENCE} references (strings)",
            field="predicate.evidence",
        )
    for i, e in enumerate(evidence):
        check_text(e, field_name=f"predicate.evidence[{i}]", max_len=500)
    severity: Severity | None = None
    if ptype == FLAG_PREDICATE:
        try:
            severity = Severity(str(pred.get("severity")))
        except ValueError as exc:
            names = ", ".join(s.value for s in Severity)
            raise InvalidStatementError(
                f"predicate.severity must be one of: {names}", field="predicate.severity"
            ) from exc
    elif not evidence:
        raise InvalidStatementError(
            "a clearance needs evidence (e.g. the eval attestation that supports it)",
            field="predicate.evidence",
        )
    return ReviewClaim(artifact, trait, severity, reason, tuple(evidence))


@dataclass(frozen=True, slots=True)
class AcceptanceClaim:
    """What a risk-acceptance statement says: `artifact`'s risk for `trait` is accepted, for
    `reason`, until `expires` (UTC)."""

    artifact: str
    trait: str
    reason: str
    expires: datetime
    evidence: tuple[str, ...]


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def acceptance_statement(
    artifact: str,
    trait: str,
    reason: str,
    expires: datetime,
    evidence: tuple[str, ...] = (),
    *,
    label: str = "_",
) -> dict[str, Any]:
    """A risk acceptance: `artifact`'s risk for `trait` is accepted until `expires`."""
    if expires.tzinfo is None:
        raise InvalidStatementError("expires must be timezone-aware", field="predicate.expires")
    return _statement(
        ACCEPTANCE_PREDICATE,
        artifact,
        label,
        {
            "trait": trait,
            "reason": reason,
            "expires": _rfc3339(expires),
            "evidence": list(evidence),
        },
    )


def parse_acceptance(statement: Mapping[str, Any]) -> AcceptanceClaim:
    """Read a risk-acceptance predicate. The reason is required: an acceptance without one is a
    decision nobody can review later.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    if statement.get("predicateType") != ACCEPTANCE_PREDICATE:
        raise InvalidStatementError("not a risk-acceptance statement", field="predicateType")
    pred = statement.get("predicate")
    if not isinstance(pred, dict):
        raise InvalidStatementError("predicate must be an object", field="predicate")
    unknown = sorted(set(pred) - {"trait", "reason", "expires", "evidence"})
    if unknown:
        raise InvalidStatementError(
            f"unknown predicate field {unknown[0]!r}", field=f"predicate.{unknown[0]}"
        )
    # The shared checks (subject, trait, reason, evidence) are those of a clearance.
    as_clearance = dict(statement)
    as_clearance["predicateType"] = CLEARANCE_PREDICATE
    as_clearance["predicate"] = {
        "trait": pred.get("trait"),
        "reason": pred.get("reason", ""),
        "evidence": pred.get("evidence", []) or ["-"],
    }
    claim = parse_review(as_clearance)
    evidence = pred.get("evidence", [])
    reason = claim.reason
    if not reason.strip():
        raise InvalidStatementError(
            "an acceptance needs a reason (why the risk is acceptable)", field="predicate.reason"
        )
    raw = pred.get("expires")
    if not isinstance(raw, str) or len(raw) > 40 or not raw.endswith("Z"):
        raise InvalidStatementError(
            "predicate.expires must be an RFC 3339 UTC time such as 2027-01-31T00:00:00Z",
            field="predicate.expires",
        )
    try:
        expires = datetime.fromisoformat(raw[:-1] + "+00:00")
    except ValueError as exc:
        raise InvalidStatementError(
            "predicate.expires must be an RFC 3339 UTC time such as 2027-01-31T00:00:00Z",
            field="predicate.expires",
        ) from exc
    return AcceptanceClaim(claim.artifact, claim.trait, reason, expires, tuple(evidence))
