"""Studbook's pure domain: artifacts, relations, signing, digests and graph rules.

Nothing here imports a web framework, a database layer or an ML library: the same semantics are
used by the service, the CLI, the offline verifier and the tests, and `lineage` must stay
importable on a machine that has none of those installed.
"""

from .digests import Manifest, artifact_digest, manifest, opaque_digest
from .dsse import Envelope, Signer, Verifier, keyid, pae
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
from .types import (
    ArtifactKind,
    ArtifactRef,
    Edge,
    ParentLink,
    Registration,
    Relation,
    RelationFamily,
)

__all__ = [
    "PAYLOAD_TYPE",
    "REGISTRATION_PREDICATE",
    "STATEMENT_TYPE",
    "ArtifactKind",
    "ArtifactRef",
    "CycleError",
    "DigestError",
    "Edge",
    "Envelope",
    "InvalidEnvelopeError",
    "InvalidStatementError",
    "LineageError",
    "Manifest",
    "ParentLink",
    "Registration",
    "Relation",
    "RelationError",
    "RelationFamily",
    "Signer",
    "UnverifiedSignatureError",
    "VerificationError",
    "VerifiedStatement",
    "artifact_digest",
    "keyid",
    "manifest",
    "opaque_digest",
    "pae",
    "parse_registration",
    "registration_statement",
    "sign_statement",
    "verify_envelope",
]
