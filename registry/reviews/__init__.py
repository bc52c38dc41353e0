"""The review workspace's server side: risk acceptances, the reviewer's queue, browsing, and the
review report (see `service`). `install` is what `create_app` calls."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session


def install() -> None:
    """Accept risk-acceptance statements from reviewers, rebuild them on a replay, and serve
    `/v1/artifacts/<ref>/report` and `/v1/artifacts/<ref>/statements`."""
    from .. import replay
    from ..artifacts import controllers as artifacts
    from ..attestations import service as attestations
    from ..auth import Role
    from ..models import Artifact
    from . import acceptance, report

    attestations.register_predicate(
        acceptance.ACCEPTANCE_PREDICATE,
        attestations.PredicateHandler((Role.REVIEWER,), acceptance.apply_acceptance),
    )
    replay.register_derived(
        replay.DerivedTable("risk_acceptances", ("attestation_id",), acceptance.rows)
    )

    def report_view(session: Session, artifact: Artifact, params: dict[str, str]) -> Any:
        return report.build(session, artifact)

    def statements_view(session: Session, artifact: Artifact, params: dict[str, str]) -> Any:
        return report.statements_of(session, artifact)

    artifacts.register_view("report", report_view)
    artifacts.register_view("statements", statements_view)
