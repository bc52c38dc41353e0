"""Flags, clearances, derived at-risk marks and the fine-tune check (see `service`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session


def install() -> None:
    """Register the review predicates, the mark-refresh hook and the artifact views.

    Call after the transparency log is installed: the refresh must run once the log's append
    lock is held, so that concurrent writers recompute marks one after another.
    """
    from .. import replay
    from ..artifacts import controllers as artifacts
    from ..artifacts.schemas import LineagePublic
    from ..artifacts.service import ArtifactKey
    from ..attestations import service as attestations
    from ..auth import Role
    from ..deps import end_read
    from . import service

    for predicate in service.REVIEW_PREDICATES:
        attestations.register_predicate(
            predicate, attestations.PredicateHandler((Role.REVIEWER,), service.apply_review)
        )
    if service.after_accept not in attestations.AFTER_ACCEPT:
        attestations.AFTER_ACCEPT.append(service.after_accept)
    attestations.AFTER_ACCEPT_MANY[service.after_accept] = service.after_accept_many
    for table in service.derived_tables():
        replay.register_derived(table)

    def risk_view(session: Session, artifact: ArtifactKey, params: dict[str, str]) -> Any:
        answer = service.risk_of(session, artifact)
        end_read(session)
        return answer

    plain_lineage = artifacts.plain_lineage_view

    def lineage_view(session: Session, artifact: ArtifactKey, params: dict[str, str]) -> Any:
        answer: LineagePublic = plain_lineage(session, artifact, params)
        flags, marks = service.node_marks(session, [n.artifact.id for n in answer.nodes])
        for n in answer.nodes:
            n.flags = flags.get(n.artifact.id, [])
            n.at_risk = marks.get(n.artifact.id, [])
        return answer

    artifacts.register_key_view("risk", risk_view)
    artifacts.register_key_view("lineage", lineage_view)
