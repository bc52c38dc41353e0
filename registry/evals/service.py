"""Eval runs as the API sees them: validate and queue, list and show, cancel, find dead runs;
and the eval-result predicate that links a signed result to the models it measured.

The API process never runs an eval and never imports torch: a request is checked with
`evals.resolve_config` (which imports neither), stored, and queued (see `queue`); workers do the
rest (see `worker`). Every bad request is refused before anything is queued, naming the field.

Liveness. A worker stamps `heartbeat_at` every few seconds while it runs a run. `reap`, called
periodically by every API process and every worker, fails the runs whose heartbeat is older than
`eval_stale_after_s`, and at once those whose worker process, on this very host, is gone; so no
run stays `running` after its worker died, whichever process notices first.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

from lineage.evalresult import EVAL_RESULT_PREDICATE, parse_eval_result
from lineage.statements import VerifiedStatement
from lineage.types import ArtifactKind

from ..artifacts.service import resolve
from ..auth import Caller, Role, require
from ..db import begin_write
from ..errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableError,
)
from ..models import (
    Artifact,
    Attestation,
    EvalPlot,
    EvalResultRow,
    EvalResultSubject,
    EvalRun,
    Principal,
    utcnow,
)
from ..replay import DerivedTable
from ..settings import Settings
from . import queue
from .schemas import (
    ArtifactBrief,
    EvalCreate,
    EvalResultPublic,
    EvalResultsPublic,
    EvalRunPublic,
    EvalStatus,
    RunArtifact,
    StageProgress,
)

_R = EvalRun.__table__  # type: ignore[attr-defined]
_A = Artifact.__table__  # type: ignore[attr-defined]
_RES = EvalResultRow.__table__  # type: ignore[attr-defined]
_SUB = EvalResultSubject.__table__  # type: ignore[attr-defined]
_ATT = Attestation.__table__  # type: ignore[attr-defined]
_P = Principal.__table__  # type: ignore[attr-defined]

# Settings that name files on the worker's host. A caller does not choose paths on another
# machine: base models are registered artifacts (`base`), found under the worker's model dir.
WORKER_PATHS = {"model": "base", "cross_model": "cross_base", "mnist": None}
# Experiments that build their own bases, and those whose teacher is given a trait (animal).
_TAKES_BASE = {"numbers"}
_TAKES_TRAIT = {"numbers", "toy-lm"}


def _now_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- submit


def _resolve_base(session: Session, ref: str | None, field: str) -> Artifact | None:
    if ref is None:
        return None
    try:
        art = resolve(session, ref)
    except NotFoundError as exc:
        raise UnprocessableError(
            f"{field} {ref!r} is not a registered artifact; register the model first",
            field=field,
        ) from exc
    except BadRequestError as exc:
        raise BadRequestError(exc.message, field=field) from exc
    if art.kind != ArtifactKind.MODEL.value:
        raise BadRequestError(f"{field} {ref} is a dataset, expected a model", field=field)
    if art.opaque:
        raise UnprocessableError(
            f"{field} {ref} is an opaque (API-only) model: there are no weights to run", field=field
        )
    return art


def _validate(
    session: Session, data: EvalCreate
) -> tuple[dict[str, Any], dict[str, Any], list[Artifact | None]]:
    """(overrides to store, resolved config to show, [base, cross base]), or a 4xx naming the
    field."""
    import evals

    if data.experiment not in evals.experiments():
        raise BadRequestError(
            f"unknown experiment {data.experiment!r}; expected one of: "
            + ", ".join(evals.experiments()),
            field="experiment",
        )
    overrides = dict(data.overrides)
    for key, instead in WORKER_PATHS.items():
        if key in overrides:
            hint = f"; give `{instead}` (a registered model) instead" if instead else ""
            raise BadRequestError(
                f"overrides.{key} names a file on the worker, which the service chooses{hint}",
                field=f"overrides.{key}",
            )
    if data.trait is not None:
        if data.experiment not in _TAKES_TRAIT:
            raise BadRequestError(
                f"{data.experiment} takes no trait (only: {', '.join(sorted(_TAKES_TRAIT))})",
                field="trait",
            )
        if overrides.get("animal", data.trait) != data.trait:
            raise BadRequestError("trait and overrides.animal disagree", field="trait")
        overrides["animal"] = data.trait
    for field in ("base", "cross_base"):
        if getattr(data, field) is not None and data.experiment not in _TAKES_BASE:
            raise BadRequestError(
                f"{data.experiment} builds its own base models; {field} is for numbers",
                field=field,
            )
    shown = dict(overrides)
    bases = []
    for key, field in (("model", "base"), ("cross_model", "cross_base")):
        art = _resolve_base(session, getattr(data, field), field)
        if art is not None:
            shown[key] = f"sha256:{art.digest}"
        bases.append(art)
    try:
        config = evals.resolve_config(data.experiment, data.preset, shown)
    except evals.UnknownPresetError as exc:
        raise BadRequestError(str(exc), field="preset") from exc
    except evals.InvalidOverrideError as exc:
        raise BadRequestError(str(exc), field=f"overrides.{exc.key}") from exc
    except evals.EvalError as exc:
        raise BadRequestError(str(exc), field="overrides") from exc
    from evals.presets import config_as_dict

    return overrides, config_as_dict(config), bases


def submit_run(session: Session, caller: Caller, data: EvalCreate) -> EvalRun:
    """Validate and queue a run; commits.

    Raises:
        PermissionDeniedError: the caller is neither a registrar nor a reviewer.
        BadRequestError: unknown experiment or preset, invalid override, misplaced base/trait.
        UnprocessableError: the base is not a registered model with weights.
    """
    require(caller, Role.REGISTRAR, Role.REVIEWER)
    overrides, config, (base, cross) = _validate(session, data)
    session.rollback()  # the checks read; the write starts clean, with the write lock
    begin_write(session)
    run = EvalRun(
        experiment=data.experiment,
        preset=data.preset,
        overrides=overrides,
        config=config,
        base_id=base.id if base else None,
        cross_base_id=cross.id if cross else None,
        trait=data.trait,
        status=EvalStatus.QUEUED.value,
        requested_by=caller.id,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    run.job_id = queue.enqueue(session, run.id)
    session.commit()
    return run


# ---------------------------------------------------------------------------- reads


def get_run(session: Session, run_id: int) -> EvalRun:
    """One run.

    Raises:
        NotFoundError: no such run.
    """
    run = session.get(EvalRun, run_id)
    if run is None:
        raise NotFoundError(f"no eval run {run_id}", field="id")
    return run


def list_runs(
    session: Session, status: EvalStatus | None, experiment: str | None, limit: int, offset: int
) -> tuple[list[EvalRun], int]:
    """A page of runs, newest first."""
    stmt = select(EvalRun)
    if status is not None:
        stmt = stmt.where(EvalRun.status == status.value)  # type: ignore[arg-type]
    if experiment is not None:
        stmt = stmt.where(EvalRun.experiment == experiment)  # type: ignore[arg-type]
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(EvalRun.id.desc()).limit(limit).offset(offset))  # type: ignore[union-attr]
    return list(rows), total


def plot_png(session: Session, run_id: int) -> bytes:
    """The run's figure.

    Raises:
        NotFoundError: no such run, or it has no figure (yet).
    """
    run = get_run(session, run_id)
    plot = session.get(EvalPlot, run_id)
    if plot is None:
        raise NotFoundError(
            f"eval run {run_id} has no plot (status {run.status}); a plot exists once a run "
            "has succeeded",
            field="id",
        )
    return plot.png


def _briefs(session: Session, ids: Iterable[int | None]) -> dict[int, ArtifactBrief]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(
        select(_A.c.id, _A.c.digest, _A.c.name, _A.c.version).where(_A.c.id.in_(wanted))
    )
    return {
        r.id: ArtifactBrief(id=r.id, digest=r.digest, ref=f"{r.name}@{r.version}") for r in rows
    }


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return dict(session.execute(select(_P.c.id, _P.c.name).where(_P.c.id.in_(wanted))).all())  # type: ignore[arg-type]


def _timings(run: EvalRun) -> dict[str, float]:
    out: dict[str, float] = {}
    created = _now_utc(run.created_at)
    started = _now_utc(run.started_at) if run.started_at else None
    finished = _now_utc(run.finished_at) if run.finished_at else None
    if started is not None:
        out["queued_s"] = round((started - created).total_seconds(), 3)
        end = finished or utcnow()
        out["run_s"] = round((end - started).total_seconds(), 3)
    for key, value in (run.timings or {}).items():
        if isinstance(value, int | float):
            out[key] = float(value)
    return out


def to_public(session: Session, runs: Sequence[EvalRun], *, full: bool) -> list[EvalRunPublic]:
    """API views of runs; `full` includes the whole result file."""
    briefs = _briefs(session, [i for r in runs for i in (r.base_id, r.cross_base_id)])
    names = _names(session, [r.requested_by for r in runs])
    out = []
    for r in runs:
        assert r.id is not None
        result = r.result or {}
        succeeded = r.status == EvalStatus.SUCCEEDED.value
        out.append(
            EvalRunPublic(
                id=r.id,
                experiment=r.experiment,
                preset=r.preset,
                overrides=r.overrides,
                config=r.config,
                base=briefs.get(r.base_id) if r.base_id else None,
                cross_base=briefs.get(r.cross_base_id) if r.cross_base_id else None,
                trait=r.trait,
                status=EvalStatus(r.status),
                requested_by=names.get(r.requested_by, "?"),
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
                heartbeat_at=r.heartbeat_at,
                cancel_requested=r.cancel_requested,
                worker=r.worker,
                attempts=r.attempts,
                progress=[StageProgress(**p) for p in r.progress or []],
                messages=[str(m) for m in r.messages or []],
                timings=_timings(r),
                error=r.error,
                metrics=result.get("metrics") if result else None,
                verdict=result.get("verdict") if result else None,
                notes=result.get("notes") if result else None,
                result=r.result if full else None,
                artifacts=[RunArtifact(**a) for a in r.artifacts] if r.artifacts else None,
                result_attestation_id=r.result_attestation_id,
                plot_url=f"/v1/evals/{r.id}/plot" if succeeded and result else None,
            )
        )
    return out


# ---------------------------------------------------------------------------- cancel


def cancel_run(session: Session, caller: Caller, run_id: int) -> EvalRun:
    """Cancel a run; commits. A queued run is cancelled at once; a running one is asked to stop
    (its worker stops the eval at its next progress report, or ends it after a grace period).

    Raises:
        NotFoundError: no such run.
        PermissionDeniedError: the caller is not the requester, a reviewer or an admin.
        ConflictError: the run already finished otherwise.
    """
    begin_write(session)
    run = get_run(session, run_id)
    if run.requested_by != caller.id and caller.role not in (Role.ADMIN, Role.REVIEWER):
        raise PermissionDeniedError(
            f"eval run {run_id} was requested by someone else; only they, reviewers and admins "
            "may cancel it",
            field="id",
        )
    status = EvalStatus(run.status)
    if status is EvalStatus.CANCELLED:
        session.rollback()
        return run
    if status.final:
        raise ConflictError(f"eval run {run_id} already {status.value}", field="id")
    now = utcnow()
    stmt = update(_R).where(_R.c.id == run_id, _R.c.status == status.value)
    if status is EvalStatus.QUEUED:
        stmt = stmt.values(
            status=EvalStatus.CANCELLED.value, cancel_requested=True, finished_at=now
        )
    else:
        stmt = stmt.values(cancel_requested=True)
    if session.execute(stmt).rowcount != 1:  # a worker moved it meanwhile: decide again
        session.rollback()
        return cancel_run(session, caller, run_id)
    if status is EvalStatus.QUEUED:
        queue.cancel_job(session, run.job_id)
    session.commit()
    session.refresh(run)
    return run


# ---------------------------------------------------------------------------- liveness


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is alive (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill()
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def reap(session: Session, settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Fail the running runs whose worker is gone; commits. Returns their ids.

    A run fails at once when its worker ran on this host and that process no longer exists, and
    otherwise when its heartbeat is older than `eval_stale_after_s` (the worker or its host
    stopped, or it lost the database).
    """
    now = now or utcnow()
    host = socket.gethostname()
    limit = timedelta(seconds=settings.eval_stale_after_s)
    rows = session.execute(
        select(
            _R.c.id,
            _R.c.worker,
            _R.c.worker_host,
            _R.c.worker_pid,
            _R.c.heartbeat_at,
            _R.c.started_at,
            _R.c.job_id,
        ).where(_R.c.status == EvalStatus.RUNNING.value)
    ).all()
    session.rollback()
    dead: list[tuple[Any, str]] = []
    for r in rows:
        beat = _now_utc(r.heartbeat_at or r.started_at or now)
        if r.worker_host == host and r.worker_pid and not pid_alive(r.worker_pid):
            reason = (
                f"the worker {r.worker} stopped during the run: its process {r.worker_pid} is "
                "gone (killed, or crashed)"
            )
        elif now - beat > limit:
            reason = (
                f"the worker {r.worker} stopped sending heartbeats at {beat.isoformat()} "
                f"(more than {settings.eval_stale_after_s:g} s ago): it, or its host, died or "
                "lost the database"
            )
        else:
            continue
        dead.append((r, reason))
    if not dead:
        return []
    begin_write(session)
    failed = []
    for r, reason in dead:
        done = session.execute(
            update(_R)
            .where(_R.c.id == r.id, _R.c.status == EvalStatus.RUNNING.value)
            .where(_R.c.worker == r.worker)
            .values(status=EvalStatus.FAILED.value, error=reason, finished_at=now)
        ).rowcount
        if done == 1:
            queue.fail_job(session, r.job_id)
            failed.append(int(r.id))
    session.commit()
    return failed


# ---------------------------------------------------------------------------- eval results


def apply_eval_result(
    session: Session, attestation: Attestation, verified: VerifiedStatement
) -> dict[str, Any]:
    """Predicate handler for eval results: link the result to the run and models it reports
    (no commit).

    Raises:
        InvalidStatementError: malformed predicate.
        UnprocessableError: a subject is not registered (register the run's lineage first).
    """
    claim = parse_eval_result(verified.statement)
    digests = [s.digest for s in claim.subjects]
    ids = dict(session.execute(select(_A.c.digest, _A.c.id).where(_A.c.digest.in_(digests))).all())  # type: ignore[arg-type]
    for i, s in enumerate(claim.subjects):
        if s.digest not in ids:
            raise UnprocessableError(
                f"subject sha256:{s.digest} ({s.role}) is not registered: register the run's "
                "lineage before its result",
                field=f"predicate.subjects[{i}].digest",
                digest=s.digest,
            )
    metrics = {k: {"mean": m.mean, "ci95": list(m.ci95)} for k, m in claim.metrics.items()}
    session.execute(
        insert(_RES).values(
            attestation_id=attestation.id,
            run_id=claim.run_id,
            experiment=claim.experiment,
            preset=claim.preset,
            verdict=claim.verdict,
            metrics=metrics,
        )
    )
    session.execute(
        insert(_SUB),
        [
            {
                "attestation_id": attestation.id,
                "artifact_id": ids[s.digest],
                "role": s.role,
                "part": s.part.value,
            }
            for s in claim.subjects
        ],
    )
    return {"result": {"run_id": claim.run_id, "subjects": len(claim.subjects)}}


def results_for(session: Session, artifact: Artifact) -> EvalResultsPublic:
    """Eval results that concern an artifact (as student or teacher), newest first."""
    rows = session.execute(
        select(
            _RES.c.attestation_id,
            _RES.c.run_id,
            _RES.c.experiment,
            _RES.c.preset,
            _RES.c.verdict,
            _RES.c.metrics,
            _SUB.c.role,
            _SUB.c.part,
            _ATT.c.received_at,
            _P.c.name,
        )
        .join(_SUB, _SUB.c.attestation_id == _RES.c.attestation_id)
        .join(_ATT, _ATT.c.id == _RES.c.attestation_id)
        .join(_P, _P.c.id == _ATT.c.principal_id)
        .where(_SUB.c.artifact_id == artifact.id)
        .order_by(_RES.c.attestation_id.desc())
    ).all()
    data = [
        EvalResultPublic(
            attestation_id=r.attestation_id,
            run_id=r.run_id,
            experiment=r.experiment,
            preset=r.preset,
            verdict=r.verdict,
            role=r.role,
            part=r.part,
            signed_by=r.name,
            received_at=r.received_at,
            metrics=r.metrics,
        )
        for r in rows
    ]
    return EvalResultsPublic(
        artifact=artifact.digest,
        artifact_ref=f"{artifact.name}@{artifact.version}",
        data=data,
        count=len(data),
    )


def _results_rows(session: Session) -> Any:
    return {
        (r.attestation_id,): {
            "run_id": r.run_id,
            "experiment": r.experiment,
            "preset": r.preset,
            "verdict": r.verdict,
            "metrics": r.metrics,
        }
        for r in session.execute(select(_RES))
    }


def _subject_rows(session: Session) -> Any:
    rows = session.execute(
        select(_SUB.c.attestation_id, _A.c.digest, _SUB.c.role, _SUB.c.part).join(
            _A, _A.c.id == _SUB.c.artifact_id
        )
    )
    return {(r.attestation_id, r.digest): {"role": r.role, "part": r.part} for r in rows}


PREDICATES = (EVAL_RESULT_PREDICATE,)
DERIVED_TABLES = (
    DerivedTable("eval_results", ("attestation_id",), _results_rows),
    DerivedTable("eval_result_subjects", ("attestation_id", "digest"), _subject_rows),
)
