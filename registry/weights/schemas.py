"""API shapes for shared-base checks and findings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lineage.findings import FindingKind, FindingStatus

from ..schema_types import UtcDateTime


class SharedBaseRequest(BaseModel):
    """Two sides to compare: each a registered artifact's reference (id, `sha256:<digest>`, a
    digest prefix, or `name@version`) or a fingerprint's JSON form (`studbook fingerprint
    --json`)."""

    a: str | dict[str, Any] = Field(description="A reference, or a fingerprint object")
    b: str | dict[str, Any] = Field(description="A reference, or a fingerprint object")


class SharedBasePublic(BaseModel):
    """`lineage.fingerprint.Comparison`, and which registered artifacts were compared."""

    comparable: bool
    statistic: float | None = Field(
        description="Pearson r of the two Grams; null if not comparable"
    )
    p_value: float | None = Field(description="Permutation p-value; null if not comparable")
    shared: bool | None = Field(description="The decision: p <= 0.01 and r >= 0.5")
    permutations: int
    reason: str
    a_ref: str | None = Field(default=None, description="name@version, when a was a reference")
    b_ref: str | None = Field(default=None, description="name@version, when b was a reference")


class FindingPublic(BaseModel):
    """A finding: what the weights say against the declared lineage, and its review status."""

    id: int
    kind: FindingKind
    status: FindingStatus
    model: str = Field(description="sha256 of the model the finding is about")
    model_ref: str
    other: str = Field(description="sha256 of the declared parent, or of the undeclared base")
    other_ref: str
    relation: str | None = Field(description="The declared relation (contradicted parents)")
    statistic: float
    p_value: float
    permutations: int
    reason: str
    statement: str = Field(
        description="sha256 of the registry's signed finding statement: decisions name it"
    )
    attestation_id: int = Field(description="The registry's finding statement (in the log)")
    log_index: int | None = Field(description="The finding statement's index in the log")
    signed_by: str = Field(description="The principal that signed the finding (the registry)")
    signer_keyid: str = Field(description="The key it was signed with (the log's key)")
    scheme: str | None = Field(default=None, description="The fingerprint scheme compared")
    model_fingerprint: str | None = Field(
        default=None, description="sha256 of the model's signed fingerprint (scheme, inputs, Gram)"
    )
    other_fingerprint: str | None = Field(
        default=None, description="sha256 of the other model's signed fingerprint"
    )
    decision_attestation_id: int | None
    decision_reason: str | None
    decided_by: str | None = Field(default=None, description="The reviewer who decided")
    decided_at: UtcDateTime | None = Field(default=None, description="When the decision came")
    created_at: UtcDateTime


class FindingsPublic(BaseModel):
    """A page of findings, newest first."""

    data: list[FindingPublic]
    count: int
    limit: int
    offset: int
    counts_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="Findings of each kind under the status and model filters (not `kind`)",
    )
