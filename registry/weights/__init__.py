"""Weights as evidence: fingerprints signed at registration, the shared-base check, findings and
reviewers' decisions on them (see `service`). `install` is what `create_app` calls."""

from __future__ import annotations


def install() -> None:
    """Accept the registry's finding statements and reviewers' decisions, index fingerprints on
    every accepted registration, test new models before their transaction commits, and rebuild
    both tables on a replay. Call after the log and the risk engine are installed: a confirmed
    finding's new edge is indexed by the risk hook first."""
    from .. import replay
    from ..attestations import service as attestations
    from ..auth import Role
    from . import service

    attestations.register_predicate(
        service.FINDING_PREDICATE,
        # Admin only passes the role check; the handler then accepts the registry's own
        # principal alone (a viewer), so no API caller can submit a finding.
        attestations.PredicateHandler((Role.ADMIN,), service.apply_finding),
    )
    for predicate in service.DECISION_PREDICATES:
        attestations.register_predicate(
            predicate, attestations.PredicateHandler((Role.REVIEWER,), service.apply_decision)
        )
    for hook in (service.index_registration, service.test_registration):
        if hook not in attestations.AFTER_ACCEPT:
            attestations.AFTER_ACCEPT.append(hook)
    replay.exempt_hook(service.test_registration)  # findings are replayed from their statements
    replay.register_derived(
        replay.DerivedTable("findings", ("attestation_id",), service.finding_rows)
    )
    replay.register_derived(
        replay.DerivedTable("model_fingerprints", ("digest",), service.fingerprint_rows)
    )
