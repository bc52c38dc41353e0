"""Studbook's pure domain: artifacts, relations, signing, digests and graph rules.

Nothing here imports a web framework, a database layer or an ML library: the same semantics are
used by the service, the CLI, the offline verifier and the tests, and `lineage` must stay
importable on a machine that has none of those installed.
"""

from typing import TYPE_CHECKING, Any

from .digests import Manifest, artifact_digest, manifest, opaque_digest
from .errors import (
    CycleError,
    DigestError,
    InvalidEnvelopeError,
    InvalidStatementError,
    LineageError,
    RelationError,
    UnverifiedSignatureError,
    VerificationError,
)
from .graph import Direction, LineageGraph, Node, Reach
from .risk import (
    CheckReason,
    CheckResult,
    Clearance,
    Flag,
    MarkKind,
    ReasonKind,
    RiskMark,
    RiskState,
    Severity,
    Verdict,
    compute_risk,
    fine_tune_check,
)
from .types import (
    ArtifactKind,
    ArtifactRef,
    Edge,
    ParentLink,
    Registration,
    Relation,
    RelationFamily,
    check_name,
    check_version,
)

# Signing pulls in `cryptography`; the evals (which need only the types and digests) must import
# without it, so the signing names load on first use (PEP 562) instead of with the package.
_LAZY = {
    "Envelope": "dsse",
    "Signer": "dsse",
    "Verifier": "dsse",
    "keyid": "dsse",
    "pae": "dsse",
    "CLEARANCE_PREDICATE": "review",
    "FLAG_PREDICATE": "review",
    "ReviewClaim": "review",
    "parse_review": "review",
    "PAYLOAD_TYPE": "statements",
    "REGISTRATION_PREDICATE": "statements",
    "STATEMENT_TYPE": "statements",
    "VerifiedStatement": "statements",
    "parse_registration": "statements",
    "registration_statement": "statements",
    "sign_statement": "statements",
    "verify_envelope": "statements",
}

if TYPE_CHECKING:
    from .dsse import Envelope, Signer, Verifier, keyid, pae
    from .review import CLEARANCE_PREDICATE, FLAG_PREDICATE, ReviewClaim, parse_review
    from .statements import (
        PAYLOAD_TYPE,
        REGISTRATION_PREDICATE,
        STATEMENT_TYPE,
        VerifiedStatement,
        parse_registration,
        registration_statement,
        sign_statement,
        verify_envelope,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lineage' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CLEARANCE_PREDICATE",
    "FLAG_PREDICATE",
    "PAYLOAD_TYPE",
    "REGISTRATION_PREDICATE",
    "STATEMENT_TYPE",
    "ArtifactKind",
    "ArtifactRef",
    "CheckReason",
    "CheckResult",
    "Clearance",
    "CycleError",
    "DigestError",
    "Direction",
    "Edge",
    "Envelope",
    "Flag",
    "InvalidEnvelopeError",
    "InvalidStatementError",
    "LineageError",
    "LineageGraph",
    "Manifest",
    "MarkKind",
    "Node",
    "ParentLink",
    "Reach",
    "ReasonKind",
    "Registration",
    "Relation",
    "RelationError",
    "RelationFamily",
    "ReviewClaim",
    "RiskMark",
    "RiskState",
    "Severity",
    "Signer",
    "UnverifiedSignatureError",
    "Verdict",
    "VerificationError",
    "VerifiedStatement",
    "Verifier",
    "artifact_digest",
    "check_name",
    "check_version",
    "compute_risk",
    "fine_tune_check",
    "keyid",
    "manifest",
    "opaque_digest",
    "pae",
    "parse_registration",
    "parse_review",
    "registration_statement",
    "sign_statement",
    "verify_envelope",
]
