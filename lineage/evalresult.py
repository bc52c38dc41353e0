"""Eval-result statements: what a trait-transfer eval measured, bound to the models it measured.

An eval's figures are evidence only when they are tied to the exact artifacts they concern and to
the configuration and code versions that produced them. So a result is an in-toto statement like
every other Studbook record: its subjects are the digests of the students and teachers the
figures are about, and its predicate carries everything needed to judge or rerun the eval (the
experiment, preset and resolved config, seeds, package versions, every metric with its 95%
interval, the plain-language verdict, and the digest of every artifact the run produced). Signed
by whoever ran it (the registry's eval worker, or a person posting a local run), accepted like any
statement, it can then be cited by a reviewer as `attestation:<id>` in a flag or a clearance.

The subjects are listed twice on purpose: in `subject` for in-toto tooling, and in
`predicate.subjects` with the part each played (`student` or `teacher`) and its role in the run
(`student_same/seed0`), which in-toto's subject has no place for. The parser requires the two to
name the same digests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import DigestError, InvalidStatementError
from .statements import STATEMENT_TYPE
from .types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation, check_digest

__all__ = [
    "EVAL_RESULT_PREDICATE",
    "EvalResultClaim",
    "EvalSubject",
    "Metric",
    "SubjectPart",
    "default_subjects",
    "eval_result_statement",
    "parse_eval_result",
    "run_registrations",
]

EVAL_RESULT_PREDICATE = "https://studbook.dev/attestations/eval-result/v1"

MAX_RUN_ID = 100
MAX_ROLE = 100
MAX_SUBJECTS = 1000
MAX_METRICS = 200
MAX_VERDICT = 4000
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")


class SubjectPart(StrEnum):
    """The part a subject played in the eval."""

    STUDENT = "student"
    TEACHER = "teacher"


@dataclass(frozen=True, slots=True)
class EvalSubject:
    """A model the figures are about: its digest, its role in the run and its part."""

    digest: str
    role: str
    part: SubjectPart


@dataclass(frozen=True, slots=True)
class Metric:
    """A mean over seeds with its Student t 95% interval (None bounds: too few seeds)."""

    mean: float
    ci95: tuple[float | None, float | None]


@dataclass(frozen=True, slots=True)
class EvalResultClaim:
    """What an eval-result statement says, checked."""

    run_id: str
    experiment: str
    preset: str
    subjects: tuple[EvalSubject, ...]
    metrics: dict[str, Metric] = field(hash=False, compare=False)
    verdict: str
    artifacts: tuple[tuple[str, str], ...]
    """(role, digest) of every artifact the run produced or used."""


def _part_of(role: str) -> SubjectPart | None:
    head = role.split("/", 1)[0]
    if head.startswith("teacher"):
        return SubjectPart.TEACHER
    if head.startswith("student"):
        return SubjectPart.STUDENT
    return None


def default_subjects(lineage: Mapping[str, Any]) -> list[EvalSubject]:
    """The students and teachers among a run's lineage artifacts (by role: `teacher/seed0`,
    `student_same/seed0`, ...), which is what an eval's figures are about.

    Raises:
        InvalidStatementError: the run declares no teacher or student model.
    """
    out = []
    for art in lineage.get("artifacts", []):
        part = _part_of(str(art.get("role", "")))
        if part is not None and art.get("kind") == ArtifactKind.MODEL.value:
            out.append(EvalSubject(check_digest(str(art["digest"])), str(art["role"]), part))
    if not out:
        raise InvalidStatementError(
            "the run's lineage names no teacher or student model", field="lineage.artifacts"
        )
    return out


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidStatementError(f"{where} must be a finite number", field=where)
    return float(value)


def _metric(raw: Any, where: str) -> Metric:
    if not isinstance(raw, Mapping):
        raise InvalidStatementError(f"{where} must be an object with mean and ci95", field=where)
    mean = _finite(raw.get("mean"), f"{where}.mean")
    ci = raw.get("ci95")
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2:
        raise InvalidStatementError(f"{where}.ci95 must be [low, high]", field=f"{where}.ci95")
    lo, hi = (None if b is None else _finite(b, f"{where}.ci95") for b in ci)
    return Metric(mean, (lo, hi))


def eval_result_statement(
    result: Mapping[str, Any],
    run_id: str,
    *,
    subjects: Iterable[EvalSubject] | None = None,
    files: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The statement for one eval run's result.

    Args:
        result: the run's result as `evals.run_experiment` returns it (and writes to
            `result.json`): experiment, preset, config, seeds, versions, metrics, verdict, notes,
            lineage.
        run_id: the run's identifier where it ran (the registry's run id, or a local name).
        subjects: the models the figures are about; default: the run's students and teachers.
        files: extra files worth pinning, e.g. `{"plot": {"path": "digits.png", "sha256": ...}}`.

    Raises:
        InvalidStatementError: the result lacks what a statement needs, or a figure is not finite.
    """
    lineage = result.get("lineage") or {}
    chosen = list(subjects) if subjects is not None else default_subjects(lineage)
    metrics = {
        str(name): _metric(raw, f"metrics.{name}")
        for name, raw in dict(result.get("metrics") or {}).items()
    }
    predicate = {
        "run_id": run_id,
        "experiment": result.get("experiment"),
        "preset": result.get("preset"),
        "config": dict(result.get("config") or {}),
        "seeds": list(result.get("seeds") or []),
        "versions": dict(result.get("versions") or {}),
        "started_at": result.get("started_at"),
        "duration_s": result.get("duration_s"),
        "metrics": {k: {"mean": m.mean, "ci95": list(m.ci95)} for k, m in metrics.items()},
        "verdict": str(result.get("verdict", "")),
        "notes": [str(n) for n in result.get("notes") or []],
        "per_seed": dict(result.get("per_seed") or {}),
        "subjects": [{"digest": s.digest, "role": s.role, "as": s.part.value} for s in chosen],
        "artifacts": [
            {
                "role": a.get("role"),
                "kind": a.get("kind"),
                "name": a.get("name"),
                "digest": a.get("digest"),
            }
            for a in lineage.get("artifacts", [])
        ],
        "relations": [dict(r) for r in lineage.get("relations", [])],
        "files": {k: dict(v) for k, v in (files or {}).items()},
    }
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": s.role, "digest": {"sha256": s.digest}} for s in chosen],
        "predicateType": EVAL_RESULT_PREDICATE,
        "predicate": predicate,
    }
    parse_eval_result(statement)  # never sign what the registry would refuse
    return statement


def _text(pred: Mapping[str, Any], key: str, max_len: int, pattern: re.Pattern[str] | None) -> str:
    value = pred.get(key)
    where = f"predicate.{key}"
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidStatementError(
            f"{where} must be a non-empty string of at most {max_len} characters", field=where
        )
    if pattern is not None and not pattern.match(value):
        raise InvalidStatementError(
            f"{where} must be lowercase letters, digits, '-', '_' or '.'", field=where
        )
    return value


def _digest(value: Any, where: str) -> str:
    try:
        return check_digest(str(value), field_name=where)
    except DigestError as exc:
        raise InvalidStatementError(exc.message, field=exc.field) from exc


def parse_eval_result(statement: Mapping[str, Any]) -> EvalResultClaim:
    """Read an eval-result predicate.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    if statement.get("predicateType") != EVAL_RESULT_PREDICATE:
        raise InvalidStatementError(
            f"predicateType must be {EVAL_RESULT_PREDICATE!r}", field="predicateType"
        )
    pred = statement.get("predicate")
    if not isinstance(pred, Mapping):
        raise InvalidStatementError("predicate must be an object", field="predicate")
    run_id = _text(pred, "run_id", MAX_RUN_ID, None)
    experiment = _text(pred, "experiment", 40, _NAME)
    preset = _text(pred, "preset", 40, _NAME)
    verdict = pred.get("verdict", "")
    if not isinstance(verdict, str) or len(verdict) > MAX_VERDICT:
        raise InvalidStatementError(
            f"predicate.verdict must be text of at most {MAX_VERDICT} characters",
            field="predicate.verdict",
        )
    raw_metrics = pred.get("metrics")
    if not isinstance(raw_metrics, Mapping) or len(raw_metrics) > MAX_METRICS:
        raise InvalidStatementError(
            f"predicate.metrics must be an object of at most {MAX_METRICS} metrics",
            field="predicate.metrics",
        )
    metrics = {str(k): _metric(v, f"predicate.metrics.{k}") for k, v in raw_metrics.items()}

    raw_subjects = pred.get("subjects")
    if not isinstance(raw_subjects, list) or not 0 < len(raw_subjects) <= MAX_SUBJECTS:
        raise InvalidStatementError(
            f"predicate.subjects must list 1 to {MAX_SUBJECTS} models", field="predicate.subjects"
        )
    subjects: list[EvalSubject] = []
    for i, s in enumerate(raw_subjects):
        where = f"predicate.subjects[{i}]"
        if not isinstance(s, Mapping):
            raise InvalidStatementError(f"{where} must be an object", field=where)
        role = s.get("role")
        if not isinstance(role, str) or not role or len(role) > MAX_ROLE:
            raise InvalidStatementError(
                f"{where}.role must be 1-{MAX_ROLE} characters", field=f"{where}.role"
            )
        try:
            part = SubjectPart(str(s.get("as")))
        except ValueError as exc:
            raise InvalidStatementError(
                f"{where}.as must be 'student' or 'teacher'", field=f"{where}.as"
            ) from exc
        subjects.append(EvalSubject(_digest(s.get("digest"), f"{where}.digest"), role, part))
    if len({s.digest for s in subjects}) != len(subjects):
        raise InvalidStatementError(
            "predicate.subjects repeats a model", field="predicate.subjects"
        )
    named: set[str] = set()
    for i, s in enumerate(statement.get("subject") or []):
        digest_map = s.get("digest") if isinstance(s, Mapping) else None
        if not isinstance(digest_map, Mapping) or "sha256" not in digest_map:
            raise InvalidStatementError(
                f"subject[{i}].digest must have a sha256 entry", field=f"subject[{i}].digest"
            )
        named.add(_digest(digest_map["sha256"], f"subject[{i}].digest.sha256"))
    if named != {s.digest for s in subjects}:
        raise InvalidStatementError(
            "subject and predicate.subjects must name the same digests", field="subject"
        )

    raw_artifacts = pred.get("artifacts", [])
    if not isinstance(raw_artifacts, list):
        raise InvalidStatementError(
            "predicate.artifacts must be a list", field="predicate.artifacts"
        )
    artifacts = []
    for i, a in enumerate(raw_artifacts):
        where = f"predicate.artifacts[{i}]"
        if not isinstance(a, Mapping) or not isinstance(a.get("role"), str):
            raise InvalidStatementError(f"{where} must be an object with a role", field=where)
        artifacts.append((str(a["role"]), _digest(a.get("digest"), f"{where}.digest")))
    return EvalResultClaim(
        run_id, experiment, preset, tuple(subjects), metrics, verdict, tuple(artifacts)
    )


def run_registrations(
    result: Mapping[str, Any],
    *,
    run_id: str,
    version: str,
    prefix: str = "studbook-eval",
    known: Mapping[str, tuple[str, str]] | None = None,
) -> list[Registration]:
    """Registrations for every artifact a run declares, parents before children.

    A new artifact is named `<prefix>/<its name in the run>@<version>`. One the registry already
    holds (the base model a run was asked to test, or weights a deterministic rerun reproduced
    bit for bit) keeps its registered name and version, since a digest has one name; it is left
    out altogether when the run declares no parents for it, as there is nothing to add.

    Args:
        result: the run's result, with its `lineage` section.
        run_id: recorded in each registration's metadata, with the artifact's role in the run.
        version: the version of new artifacts, unique to the run (`run-12`).
        prefix: the namespace of new artifacts' names.
        known: digest -> (name, version) of artifacts already registered.

    Raises:
        InvalidStatementError: the lineage names an unknown role or repeats one, a name is not
            usable, or the relations form a cycle.
    """
    lineage = result.get("lineage") or {}
    known = known or {}
    entries: dict[str, Mapping[str, Any]] = {}
    for art in lineage.get("artifacts", []):
        role = str(art.get("role", ""))
        if not role or role in entries:
            raise InvalidStatementError(
                f"lineage role {role!r} is empty or repeated", field="lineage.artifacts"
            )
        entries[role] = art
    parents: dict[str, list[tuple[Relation, str]]] = {role: [] for role in entries}
    for i, rel in enumerate(lineage.get("relations", [])):
        child, parent = str(rel.get("child")), str(rel.get("parent"))
        if child not in entries or parent not in entries:
            raise InvalidStatementError(
                f"lineage.relations[{i}] names an unknown role", field=f"lineage.relations[{i}]"
            )
        try:
            relation = Relation(str(rel.get("relation")))
        except ValueError as exc:
            raise InvalidStatementError(
                f"lineage.relations[{i}].relation is not a relation",
                field=f"lineage.relations[{i}].relation",
            ) from exc
        parents[child].append((relation, parent))
    out: list[Registration] = []
    for role in _parents_first(parents):
        art = entries[role]
        digest = _digest(art.get("digest"), f"lineage artifact {role}")
        links = tuple(
            ParentLink(rel, _digest(entries[p].get("digest"), f"lineage artifact {p}"))
            for rel, p in parents[role]
        )
        if digest in known and not links:
            continue
        name, ver = known.get(digest) or (f"{prefix}/{art.get('name')}", version)
        opaque = bool(art.get("opaque", False))
        metadata: dict[str, object] = {"eval_run": run_id, "role": role}
        metadata.update(dict(art.get("metadata") or {}))
        if opaque:
            metadata["identifier"] = art.get("identifier")
        ref = ArtifactRef(ArtifactKind(str(art.get("kind"))), name, ver, digest, opaque)
        out.append(Registration(ref, links, metadata))
    return out


def _parents_first(parents: Mapping[str, list[tuple[Relation, str]]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: placed

    def visit(role: str) -> None:
        if state.get(role) == 2:
            return
        if state.get(role) == 1:
            raise InvalidStatementError(
                f"lineage relations form a cycle through {role!r}", field="lineage.relations"
            )
        state[role] = 1
        for _, parent in parents[role]:
            visit(parent)
        state[role] = 2
        order.append(role)

    for role in parents:
        visit(role)
    return order
