"""Evidence references in reviewers' statements, and the rule a clearance's evidence must meet.

A clearance stops risk from propagating through a model, so what it cites decides whether that is
justified. A free-text reference ("eval passed", `attestation:42` for an attestation that does
not exist, a smoke run that only tests the code path) made a clearance look supported when
nothing supported it. So a clearance cites only two kinds of thing, each unambiguous:

- `attestation:<id>`: an eval-result attestation in this registry. The registry checks that it
  exists, that it is an eval result, that its run was not a smoke run, and that it concerns the
  cleared model (`registry.risk.service`); this module only reads the reference's form.
- `external:<text or URL>`: something outside the registry (a red-team report, a ticket), marked
  as such so nobody mistakes it for a checked record.

A flag may cite anything (a flag only adds caution), but an `attestation:` reference in a flag must
still be well formed, and the registry checks that it exists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .errors import InvalidStatementError

__all__ = [
    "ATTESTATION_PREFIX",
    "EXTERNAL_PREFIX",
    "EvidenceKind",
    "EvidenceRef",
    "clearance_evidence",
    "parse_evidence",
]

ATTESTATION_PREFIX = "attestation:"
EXTERNAL_PREFIX = "external:"
MAX_ATTESTATION_ID = 2**63 - 1  # attestation ids are signed 64-bit integers in both databases
_ID = re.compile(r"[1-9][0-9]{0,18}")


class EvidenceKind(StrEnum):
    """What a reference points at."""

    ATTESTATION = "attestation"
    """An attestation in this registry, by id (checked by the registry)."""
    EXTERNAL = "external"
    """Something outside the registry, marked as such (not checked)."""
    TEXT = "text"
    """Free text: allowed in a flag, never enough for a clearance."""


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """One parsed evidence reference."""

    reference: str
    kind: EvidenceKind
    attestation_id: int | None = None


def parse_evidence(reference: str, *, index: int) -> EvidenceRef:
    """Read the kind of `predicate.evidence[index]`.

    Raises:
        InvalidStatementError: an `attestation:` reference whose id is not a positive 64-bit
            integer, or an `external:` reference with nothing after the prefix (naming
            `predicate.evidence`; the message names the index).
    """
    field = "predicate.evidence"
    if reference.startswith(ATTESTATION_PREFIX):
        raw = reference[len(ATTESTATION_PREFIX) :]
        if not _ID.fullmatch(raw) or int(raw) > MAX_ATTESTATION_ID:
            raise InvalidStatementError(
                f"{field}[{index}] must be attestation:<id> with the attestation's numeric id, got "
                f"{reference!r}",
                field=field,
            )
        return EvidenceRef(reference, EvidenceKind.ATTESTATION, int(raw))
    if reference.startswith(EXTERNAL_PREFIX):
        if not reference[len(EXTERNAL_PREFIX) :].strip():
            raise InvalidStatementError(
                f"{field}[{index}]: external: must be followed by the reference (text or URL)",
                field=field,
            )
        return EvidenceRef(reference, EvidenceKind.EXTERNAL)
    return EvidenceRef(reference, EvidenceKind.TEXT)


def clearance_evidence(references: Sequence[str]) -> tuple[EvidenceRef, ...]:
    """Parse a clearance's evidence: at least one reference, each `attestation:<id>` or
    `external:<reference>`.

    Raises:
        InvalidStatementError: no reference, or one of another form (naming
            `predicate.evidence`; the message names the index).
    """
    if not references:
        raise InvalidStatementError(
            "a clearance needs evidence: attestation:<id> of an eval result, or "
            "external:<reference> for evidence kept outside the registry",
            field="predicate.evidence",
        )
    out = []
    for i, ref in enumerate(references):
        parsed = parse_evidence(ref, index=i)
        if parsed.kind is EvidenceKind.TEXT:
            raise InvalidStatementError(
                f"predicate.evidence[{i}] must be attestation:<id> of an eval result or "
                f"external:<text or URL> for evidence outside the registry, got {ref!r}",
                field="predicate.evidence",
            )
        out.append(parsed)
    return tuple(out)
