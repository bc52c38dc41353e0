"""API shapes for flags, at-risk marks and fine-tune checks."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from lineage.evidence import EvidenceKind
from lineage.risk import MarkKind, ReasonKind, Severity, Verdict
from lineage.types import Relation

from ..schema_types import UtcDateTime


class PathEdge(BaseModel):
    """One edge of an explanation, child -> parent, with human references."""

    child: str
    child_ref: str
    parent: str
    parent_ref: str
    relation: Relation


class EvidencePublic(BaseModel):
    """One cited reference and what it points at (`registry/risk/evidence.py`)."""

    reference: str = Field(description="As cited, e.g. attestation:42 or external:<URL>")
    kind: EvidenceKind = Field(
        description="attestation (a record in this registry, checked), external (outside the "
        "registry, marked as such, not checked) or text (free text, flags only)"
    )
    attestation_id: int | None = None
    attestation_kind: str | None = Field(
        default=None, description="The cited attestation's kind, e.g. eval_result"
    )
    signed_by: str | None = Field(
        default=None, description="The principal that signed the cited attestation"
    )
    experiment: str | None = Field(default=None, description="For an eval result")
    preset: str | None = Field(default=None, description="For an eval result (never smoke)")
    verdict: str | None = Field(default=None, description="For an eval result")


class FlagPublic(BaseModel):
    """A flag in force."""

    artifact: str
    artifact_ref: str
    trait: str
    severity: Severity
    reason: str
    evidence: list[str]
    evidence_detail: list[EvidencePublic] = Field(
        default_factory=list, description="What each reference of `evidence` points at"
    )
    attestation_id: int
    created_at: UtcDateTime


class ClearancePublic(BaseModel):
    """The clearance in force for (artifact, trait)."""

    artifact: str
    artifact_ref: str
    trait: str
    reason: str
    evidence: list[str]
    evidence_detail: list[EvidencePublic] = Field(
        default_factory=list, description="What each reference of `evidence` points at"
    )
    attestation_id: int
    created_at: UtcDateTime


class MarkPublic(BaseModel):
    """An at-risk mark and why: the path from the model to the flagged source."""

    model: str
    model_ref: str
    trait: str
    kind: MarkKind
    source: str
    source_ref: str
    via: str
    via_ref: str
    path: list[PathEdge]
    shared_base: list[str]
    shared_base_refs: list[str]
    source_evidence: list[EvidencePublic] = Field(
        default_factory=list, description="What the flag on `source` cites"
    )
    since: UtcDateTime


class RiskStatus(StrEnum):
    """One word for an artifact's risk. `cleared` (a reviewer's decision) and `no_risk`
    (nothing found) are deliberately unalike: the first is evidence, the second an absence."""

    FLAGGED = "flagged"
    AT_RISK = "at_risk"
    CLEARED = "cleared"
    NO_RISK = "no_risk"


class RiskPublic(BaseModel):
    """Everything the registry knows about one artifact's risk."""

    artifact: str
    artifact_ref: str
    status: RiskStatus = Field(
        description="flagged (a flag in force), at_risk (a mark), cleared (a reviewer cleared "
        "it with evidence) or no_risk (nothing recorded against it)"
    )
    flags: list[FlagPublic]
    clearances: list[ClearancePublic]
    at_risk: list[MarkPublic]


class FlagsPublic(BaseModel):
    """Flags in force."""

    data: list[FlagPublic]
    count: int


class MarksPublic(BaseModel):
    """A page of the review queue: at-risk models, newest first."""

    data: list[MarkPublic]
    count: int
    limit: int
    offset: int


class FineTuneCheckRequest(BaseModel):
    """A candidate fine-tune: a base model and the datasets it would be trained on."""

    base: str = Field(min_length=1, description="id, sha256:<digest> or name@version of a model")
    datasets: list[str] = Field(default_factory=list, max_length=1000)


class ReasonPublic(BaseModel):
    """One reason behind a verdict."""

    kind: ReasonKind
    verdict: Verdict
    trait: str
    dataset: str | None
    dataset_ref: str | None
    via: str
    via_ref: str
    source: str
    source_ref: str
    path: list[PathEdge]
    shared_base: list[str]
    shared_base_refs: list[str]
    explanation: str


class FineTuneCheckPublic(BaseModel):
    """ok, warn (overt content risk only) or block (the fine-tune would be at risk)."""

    verdict: Verdict
    base: str
    base_ref: str
    datasets: list[str]
    reasons: list[ReasonPublic]
