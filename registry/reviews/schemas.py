"""API shapes of the review workspace."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from ..risk.schemas import MarkPublic
from ..schema_types import UtcDateTime


class QueueSort(StrEnum):
    """Orders of the review queue."""

    NEWEST = "newest"
    OLDEST = "oldest"
    SEVERITY = "severity"
    NAME = "name"


class QueueItem(BaseModel):
    """An at-risk model nobody has decided on, for one trait."""

    mark: MarkPublic
    severity: str | None = Field(description="Severity of the flag the risk comes from.")
    owner: str | None
    age_s: int = Field(description="Seconds since the mark appeared.")
    path_line: str = Field(description="The explanation path in one line.")
    new: bool = Field(description="Appeared since the reviewer last looked at the queue.")


class Change(BaseModel):
    """A decision recorded since the reviewer last looked."""

    attestation_id: int
    decision: str = Field(description="flag, clearance or acceptance")
    artifact_ref: str
    trait: str
    principal: str
    at: UtcDateTime


class QueuePublic(BaseModel):
    """The review queue, with counts per trait and what changed since the last look."""

    data: list[QueueItem]
    count: int
    counts_by_trait: dict[str, int]
    accepted: int = Field(description="At-risk models taken off the queue by an acceptance.")
    last_seen: UtcDateTime | None
    new_since_last_seen: int
    changes: list[Change]
    truncated: bool


class SeenPublic(BaseModel):
    """When the queue was marked seen."""

    seen_at: UtcDateTime


class BrowseStatus(StrEnum):
    """Statuses the browse view filters on."""

    FLAGGED = "flagged"
    AT_RISK = "at_risk"
    ACCEPTED = "accepted"
    CLEARED = "cleared"
    NO_RISK = "no_risk"


class BrowseItem(BaseModel):
    """An artifact in a listing, with its owner and risk in one word."""

    id: int
    ref: str
    digest: str
    kind: str
    owner: str | None
    status: BrowseStatus
    traits: list[str]
    created_at: UtcDateTime


class BrowsePublic(BaseModel):
    """A page of the artifact browser."""

    data: list[BrowseItem]
    count: int
    limit: int
    offset: int


class StatementPublic(BaseModel):
    """One signed statement concerning an artifact: who signed it, when, and where it is logged."""

    attestation_id: int
    role: str = Field(
        description="registration, lineage, flag, clearance, acceptance, eval, finding, "
        "finding-decision"
    )
    predicate_type: str
    principal: str
    signer_keyid: str
    received_at: UtcDateTime
    payload_digest: str
    log_index: int | None
    summary: str


class StatementsPublic(BaseModel):
    """The statements concerning an artifact, oldest first."""

    artifact: str
    artifact_ref: str
    data: list[StatementPublic]
    count: int


class ReportPublic(BaseModel):
    """A review report: everything a board needs to decide on one model, and to check offline."""

    format: str = Field(description="https://studbook.dev/ReviewReport/v1")
    generated_at: UtcDateTime
    artifact: dict[str, Any]
    owner: str | None
    lineage: dict[str, Any]
    risk: dict[str, Any]
    acceptances: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    findings: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Findings from the weights about this model (open and decided), newest first.",
    )
    decisions: list[dict[str, Any]]
    statements: list[dict[str, Any]] = Field(
        description="Every statement cited, with its envelope and inclusion proof."
    )
    log: dict[str, Any] = Field(description="Origin, verifier key and the signed checkpoint.")
