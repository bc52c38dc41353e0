"""API shapes for eval runs and eval results."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from ..schema_types import UtcDateTime


class EvalStatus(StrEnum):
    """Where a run is. `succeeded`, `failed` and `cancelled` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True once nothing will change the run any more."""
        return self in (EvalStatus.SUCCEEDED, EvalStatus.FAILED, EvalStatus.CANCELLED)


class EvalCreate(BaseModel):
    """A run to queue."""

    experiment: str = Field(max_length=40, description="digits, toy-lm or numbers")
    preset: str = Field(
        default="default", max_length=40, description="smoke, default, cpu or paper"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='Settings layered over the preset, e.g. {"seeds": 5}; validated by name '
        "and type before anything is queued.",
    )
    base: str | None = Field(
        default=None,
        description="numbers: the registered base model (id, sha256:<digest> or name@version) "
        "whose files the workers hold under their model directory.",
    )
    cross_base: str | None = Field(
        default=None, description="numbers: a second registered base for a cross-base student."
    )
    trait: str | None = Field(
        default=None,
        max_length=100,
        description="numbers and toy-lm: the teacher's trait (the target animal, e.g. owl).",
    )


class ArtifactBrief(BaseModel):
    """A registered artifact, by digest and human reference."""

    id: int
    digest: str
    ref: str


class StageProgress(BaseModel):
    """Progress of one stage of a run."""

    stage: str
    done: int
    total: int


class RunArtifact(BaseModel):
    """An artifact of a finished run, as registered in the graph."""

    role: str
    kind: str
    digest: str
    ref: str
    attestation_id: int | None = None


class EvalRunPublic(BaseModel):
    """A run: what was asked, where it is, and what it found."""

    id: int
    experiment: str
    preset: str
    overrides: dict[str, Any]
    config: dict[str, Any]
    base: ArtifactBrief | None = None
    cross_base: ArtifactBrief | None = None
    trait: str | None = None
    status: EvalStatus
    requested_by: str
    created_at: UtcDateTime
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    heartbeat_at: UtcDateTime | None = None
    cancel_requested: bool
    worker: str | None = None
    attempts: int
    progress: list[StageProgress]
    messages: list[str]
    timings: dict[str, float] = Field(
        description="queued_s, run_s and register_s, and the experiment's own stage timings."
    )
    error: str | None = None
    metrics: dict[str, Any] | None = None
    verdict: str | None = None
    notes: list[str] | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="The full result file (only on GET /v1/evals/{id})."
    )
    artifacts: list[RunArtifact] | None = None
    result_attestation_id: int | None = Field(
        default=None,
        description="The signed eval-result attestation; cite it as `attestation:<id>` in a "
        "flag or clearance.",
    )
    plot_url: str | None = None


class EvalRunsPublic(BaseModel):
    """A page of runs, newest first."""

    data: list[EvalRunPublic]
    count: int
    limit: int
    offset: int


class EvalResultPublic(BaseModel):
    """An accepted eval-result attestation about an artifact."""

    attestation_id: int
    run_id: str
    experiment: str
    preset: str
    verdict: str
    role: str
    part: str
    signed_by: str
    received_at: UtcDateTime
    metrics: dict[str, Any]


class EvalResultsPublic(BaseModel):
    """Eval results that concern one artifact, newest first."""

    artifact: str
    artifact_ref: str
    data: list[EvalResultPublic]
    count: int
