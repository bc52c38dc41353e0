"""Checking what reviewers cite, and showing it with the risk answers.

A clearance stops risk from propagating through a model, so the registry checks its evidence
before it is written (the rule is `lineage.evidence`; this module reads the database):

- `attestation:<id>` must be an accepted eval-result attestation, from a run that was not a
  `smoke` run (a smoke run tests the code path at a size where nothing transfers; "no transfer
  detected" there is no evidence), that concerns the cleared model: the model is one of its
  subjects or one of the artifacts its run registered, or the run tested one of the model's
  weights-lineage ancestors (its base) for the same trait;
- `external:<reference>` is accepted as what it says it is: evidence kept outside the registry,
  shown as such;
- anything else is refused.

A flag may cite free text, but an `attestation:<id>` it cites must exist.

Every refusal is a 422 naming `predicate.evidence` (the message names the reference and why),
raised inside the ingest transaction before anything is written. The risk answers show each
reference with what it points at (`describe`): kind, who signed it, and for an eval result its
experiment, preset and verdict, so a reader sees what a clearance rests on (and whether the
registry's eval worker or a person vouched for the run) without a second request. The registry
checks that cited evidence exists and concerns the model; it cannot check that a result posted
by a person reports an honest run: that is what the signature and the log make attributable.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from lineage.errors import InvalidStatementError
from lineage.evalresult import EVAL_RESULT_PREDICATE
from lineage.evidence import EvidenceKind, EvidenceRef, clearance_evidence, parse_evidence
from lineage.review import CLEARANCE_PREDICATE, FLAG_PREDICATE, ReviewClaim
from lineage.statements import REGISTRATION_PREDICATE
from lineage.types import WEIGHTS_RELATIONS

from ..errors import UnprocessableError
from ..models import Artifact, Attestation, LineageEdge, Principal
from ..models.evals import EvalResultRow, EvalResultSubject
from .schemas import EvidencePublic

__all__ = ["SMOKE_PRESETS", "check_evidence", "describe"]

SMOKE_PRESETS = frozenset({"smoke"})
"""Presets whose results are not evidence: they exercise the code path at a toy size."""
_MAX_ANCESTORS = 100_000  # a guard on the weights-ancestor walk, far above any real lineage

_A = Artifact.__table__  # type: ignore[attr-defined]
_ATT = Attestation.__table__  # type: ignore[attr-defined]
_P = Principal.__table__  # type: ignore[attr-defined]
_E = LineageEdge.__table__  # type: ignore[attr-defined]
_R = EvalResultRow.__table__  # type: ignore[attr-defined]
_RS = EvalResultSubject.__table__  # type: ignore[attr-defined]
_KINDS = {
    REGISTRATION_PREDICATE: "registration",
    FLAG_PREDICATE: "flag",
    CLEARANCE_PREDICATE: "clearance",
    EVAL_RESULT_PREDICATE: "eval_result",
}


def _refuse(message: str, **attrs: Any) -> UnprocessableError:
    return UnprocessableError(message, field="predicate.evidence", **attrs)


def _kind(predicate_type: str) -> str:
    """A short name for a statement's type: `eval_result`, or the type URI's name part."""
    if predicate_type in _KINDS:
        return _KINDS[predicate_type]
    parts = predicate_type.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else predicate_type


def _statement(envelope: Any) -> dict[str, Any]:
    """The statement inside a stored (accepted, hence well-formed) envelope."""
    try:
        payload = base64.b64decode(str(envelope["payload"]))
        statement = json.loads(payload)
    except (KeyError, TypeError, ValueError):
        return {}
    return statement if isinstance(statement, dict) else {}


def _weights_ancestors(session: Session, artifact_id: int) -> set[int]:
    """The model's weights-lineage ancestors (its bases), itself excluded."""
    relations = sorted(r.value for r in WEIGHTS_RELATIONS)
    seen: set[int] = set()
    frontier = {artifact_id}
    while frontier and len(seen) < _MAX_ANCESTORS:
        parents = set(
            session.execute(
                select(_E.c.parent_id).where(
                    _E.c.child_id.in_(sorted(frontier)), _E.c.relation.in_(relations)
                )
            ).scalars()
        )
        frontier = parents - seen - {artifact_id}
        seen |= frontier
    return seen


def _check_eval_result(
    session: Session, ref: EvidenceRef, claim: ReviewClaim, artifact_id: int
) -> None:
    aid = ref.attestation_id
    assert aid is not None
    row = session.execute(
        select(_ATT.c.predicate_type, _ATT.c.envelope).where(_ATT.c.id == aid)
    ).first()
    if row is None:
        raise _refuse(f"{ref.reference}: there is no attestation {aid}", attestation_id=aid)
    if row.predicate_type != EVAL_RESULT_PREDICATE:
        raise _refuse(
            f"{ref.reference} is a {_kind(row.predicate_type)} statement; a clearance cites an "
            f"eval result (or external:<reference>)",
            attestation_id=aid,
        )
    result = session.execute(
        select(_R.c.preset, _R.c.experiment).where(_R.c.attestation_id == aid)
    ).first()
    predicate = _statement(row.envelope).get("predicate") or {}
    preset = str(result.preset if result is not None else predicate.get("preset", ""))
    if preset in SMOKE_PRESETS:
        raise _refuse(
            f"{ref.reference} reports a {preset!r} run, which only tests the code path at a "
            f"size where nothing transfers; cite a run of another preset",
            attestation_id=aid,
        )
    subjects = set(
        session.execute(select(_RS.c.artifact_id).where(_RS.c.attestation_id == aid)).scalars()
    )
    if artifact_id in subjects:
        return
    digest = session.execute(select(_A.c.digest).where(_A.c.id == artifact_id)).scalar_one()
    run_digests = {
        str(a.get("digest"))
        for a in predicate.get("artifacts") or []
        if isinstance(a, dict) and a.get("digest")
    }
    if digest in run_digests:
        return
    config = predicate.get("config") or {}
    trait = config.get("trait") if isinstance(config, dict) else None
    if trait == claim.trait:
        bases = _weights_ancestors(session, artifact_id)
        base_ids = bases & subjects
        if bases and not base_ids and run_digests:
            base_ids = set(
                session.execute(
                    select(_A.c.id).where(_A.c.id.in_(sorted(bases)), _A.c.digest.in_(run_digests))
                ).scalars()
            )
        if base_ids:
            return
    raise _refuse(
        f"{ref.reference} does not concern the cleared model: it is neither one of the "
        f"result's subjects or its run's artifacts, nor a model derived from a base the run "
        f"tested for trait {claim.trait!r}",
        attestation_id=aid,
    )


def check_evidence(session: Session, claim: ReviewClaim, artifact_id: int) -> None:
    """Check what a flag or clearance of `artifact_id` cites (see the module docstring).

    Raises:
        UnprocessableError: naming `predicate.evidence`.
    """
    try:
        if claim.is_flag:
            refs = [parse_evidence(e, index=i) for i, e in enumerate(claim.evidence)]
        else:
            refs = list(clearance_evidence(claim.evidence))
    except InvalidStatementError as exc:
        raise _refuse(exc.message) from exc
    for ref in refs:
        if ref.kind is not EvidenceKind.ATTESTATION:
            continue
        if claim.is_flag:
            assert ref.attestation_id is not None
            found = session.execute(
                select(_ATT.c.id).where(_ATT.c.id == ref.attestation_id)
            ).first()
            if found is None:
                raise _refuse(
                    f"{ref.reference}: there is no attestation {ref.attestation_id}",
                    attestation_id=ref.attestation_id,
                )
        else:
            _check_eval_result(session, ref, claim, artifact_id)


def describe(session: Session, references: Iterable[Sequence[str]]) -> dict[str, EvidencePublic]:
    """What each reference points at, for the risk answers, in one query per kind.

    Returns:
        reference -> its description, for every reference of every list given.
    """
    parsed: dict[str, EvidenceRef] = {}
    for refs in references:
        for i, ref in enumerate(refs):
            if ref in parsed:
                continue
            try:
                parsed[ref] = parse_evidence(ref, index=i)
            except InvalidStatementError:  # a flag stored before the rule: shown as text
                parsed[ref] = EvidenceRef(ref, EvidenceKind.TEXT)
    ids = sorted({p.attestation_id for p in parsed.values() if p.attestation_id is not None})
    kinds: dict[int, tuple[str, str]] = {}
    results: dict[int, Any] = {}
    if ids:
        kinds = {
            int(i): (_kind(t), str(who))
            for i, t, who in session.execute(
                select(_ATT.c.id, _ATT.c.predicate_type, _P.c.name)
                .join(_P, _P.c.id == _ATT.c.principal_id)
                .where(_ATT.c.id.in_(ids))
            )
        }
        results = {
            int(r.attestation_id): r
            for r in session.execute(
                select(_R.c.attestation_id, _R.c.experiment, _R.c.preset, _R.c.verdict).where(
                    _R.c.attestation_id.in_(ids)
                )
            )
        }
    out: dict[str, EvidencePublic] = {}
    for ref, p in parsed.items():
        aid = p.attestation_id
        result = results.get(aid) if aid is not None else None
        kind, signer = kinds.get(aid, (None, None)) if aid is not None else (None, None)
        out[ref] = EvidencePublic(
            reference=ref,
            kind=p.kind,
            attestation_id=aid,
            attestation_kind=kind,
            signed_by=signer,
            experiment=result.experiment if result is not None else None,
            preset=result.preset if result is not None else None,
            verdict=result.verdict if result is not None else None,
        )
    return out
