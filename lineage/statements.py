"""in-toto Statement v1 payloads that Studbook signs and accepts.

Every write to the registry is one DSSE envelope of payload type `application/vnd.in-toto+json`
holding an in-toto Statement v1. The statement's subjects are the digests of the artifacts it is
about; the predicate type says what kind of claim it is. Keeping to this standard shape means
in-toto tooling can read our records, and we can accept statements produced elsewhere.

Predicate types are URIs owned by Studbook, versioned in the path, so that a v2 can coexist.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dsse import Envelope, Signer, Verifier
from .errors import DigestError, InvalidStatementError
from .types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation, check_digest

__all__ = [
    "PAYLOAD_TYPE",
    "REGISTRATION_PREDICATE",
    "STATEMENT_TYPE",
    "VerifiedStatement",
    "canonical_json",
    "parse_registration",
    "parse_statement",
    "registration_statement",
    "sign_statement",
    "verify_envelope",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
REGISTRATION_PREDICATE = "https://studbook.dev/attestations/registration/v1"

MAX_NAME = 200
MAX_VERSION = 100
MAX_PARENTS = 256


def canonical_json(obj: object) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the bytes Studbook signs."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class VerifiedStatement:
    """A statement whose envelope verified, and who signed it."""

    statement: dict[str, Any]
    keyid: str
    payload_digest: str

    @property
    def predicate_type(self) -> str:
        """The statement's predicate type URI."""
        return str(self.statement["predicateType"])


def sign_statement(statement: Mapping[str, Any], signer: Signer) -> Envelope:
    """Serialize and sign a statement."""
    return signer.sign(PAYLOAD_TYPE, canonical_json(statement))


def parse_statement(payload: bytes) -> dict[str, Any]:
    """Parse and shape-check an in-toto Statement v1.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidStatementError(f"payload is not JSON: {exc}", field="payload") from exc
    if not isinstance(data, dict):
        raise InvalidStatementError("statement must be a JSON object", field="payload")
    if data.get("_type") != STATEMENT_TYPE:
        raise InvalidStatementError(
            f"statement _type must be {STATEMENT_TYPE!r}, got {data.get('_type')!r}",
            field="_type",
        )
    subjects = data.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InvalidStatementError("subject must be a non-empty list", field="subject")
    for i, s in enumerate(subjects):
        if not isinstance(s, dict) or not isinstance(s.get("digest"), dict):
            raise InvalidStatementError(
                f"subject[{i}] must be an object with a digest map", field=f"subject[{i}]"
            )
    if not isinstance(data.get("predicateType"), str):
        raise InvalidStatementError("predicateType must be a string", field="predicateType")
    if not isinstance(data.get("predicate", {}), dict):
        raise InvalidStatementError("predicate must be an object", field="predicate")
    return data


def verify_envelope(envelope: Envelope, verifier: Verifier) -> VerifiedStatement:
    """Verify the envelope's signature, then parse its statement.

    The signature is checked before the payload is parsed: nothing unsigned is interpreted.

    Raises:
        UnverifiedSignatureError, InvalidEnvelopeError, InvalidStatementError, VerificationError.
    """
    kid = verifier.verify(envelope, payload_type=PAYLOAD_TYPE)
    statement = parse_statement(envelope.payload)
    return VerifiedStatement(statement, kid, hashlib.sha256(envelope.payload).hexdigest())


def registration_statement(reg: Registration) -> dict[str, Any]:
    """The statement that registers `reg.artifact` with its parents."""
    a = reg.artifact
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": a.label, "digest": {"sha256": a.digest}}],
        "predicateType": REGISTRATION_PREDICATE,
        "predicate": {
            "artifact": {
                "kind": a.kind.value,
                "name": a.name,
                "version": a.version,
                "opaque": a.opaque,
                "metadata": dict(reg.metadata),
            },
            "parents": [{"relation": p.relation.value, "digest": p.digest} for p in reg.parents],
        },
    }


def _str_field(
    obj: Mapping[str, Any], key: str, where: str, max_len: int, forbidden: str = "@"
) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidStatementError(
            f"{where}.{key} must be a non-empty string", field=f"{where}.{key}"
        )
    if len(value) > max_len or any(c in forbidden or c.isspace() for c in value):
        shown = " ".join(repr(c) for c in forbidden)
        raise InvalidStatementError(
            f"{where}.{key} must be at most {max_len} characters with no whitespace or {shown}",
            field=f"{where}.{key}",
        )
    return value


def parse_registration(statement: Mapping[str, Any]) -> Registration:
    """Read a registration predicate into a `Registration`.

    The single subject's digest is the artifact's; the predicate gives kind, name, version and
    parents. Parents are referenced by digest only: names are for people.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    if statement.get("predicateType") != REGISTRATION_PREDICATE:
        raise InvalidStatementError(
            f"predicateType must be {REGISTRATION_PREDICATE!r}", field="predicateType"
        )
    subjects = statement["subject"]
    if len(subjects) != 1:
        raise InvalidStatementError("a registration has exactly one subject", field="subject")
    digest_map = subjects[0]["digest"]
    if "sha256" not in digest_map:
        raise InvalidStatementError(
            "subject[0].digest must have a sha256 entry", field="subject[0].digest"
        )
    try:
        digest = check_digest(str(digest_map["sha256"]), field_name="subject[0].digest.sha256")
    except DigestError as exc:
        raise InvalidStatementError(exc.message, field=exc.field) from exc
    pred = statement.get("predicate")
    if not isinstance(pred, dict) or not isinstance(pred.get("artifact"), dict):
        raise InvalidStatementError(
            "predicate.artifact must be an object", field="predicate.artifact"
        )
    art = pred["artifact"]
    try:
        kind = ArtifactKind(str(art.get("kind")))
    except ValueError as exc:
        raise InvalidStatementError(
            "predicate.artifact.kind must be 'model' or 'dataset'", field="predicate.artifact.kind"
        ) from exc
    name = _str_field(art, "name", "predicate.artifact", MAX_NAME)
    # A version never holds '/', so `<name>@<version>/lineage` in a URL is unambiguous.
    version = _str_field(art, "version", "predicate.artifact", MAX_VERSION, forbidden="@/")
    opaque = art.get("opaque", False)
    if not isinstance(opaque, bool):
        raise InvalidStatementError(
            "predicate.artifact.opaque must be a boolean", field="predicate.artifact.opaque"
        )
    if opaque and kind is not ArtifactKind.MODEL:
        raise InvalidStatementError("only models can be opaque", field="predicate.artifact.opaque")
    metadata = art.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidStatementError(
            "predicate.artifact.metadata must be an object", field="predicate.artifact.metadata"
        )
    raw_parents = pred.get("parents", [])
    if not isinstance(raw_parents, list):
        raise InvalidStatementError("predicate.parents must be a list", field="predicate.parents")
    if len(raw_parents) > MAX_PARENTS:
        raise InvalidStatementError(f"at most {MAX_PARENTS} parents", field="predicate.parents")
    parents: list[ParentLink] = []
    seen: set[tuple[Relation, str]] = set()
    for i, p in enumerate(raw_parents):
        where = f"predicate.parents[{i}]"
        if not isinstance(p, dict):
            raise InvalidStatementError(f"{where} must be an object", field=where)
        try:
            relation = Relation(str(p.get("relation")))
        except ValueError as exc:
            names = ", ".join(r.value for r in Relation)
            raise InvalidStatementError(
                f"{where}.relation must be one of: {names}; got {p.get('relation')!r}",
                field=f"{where}.relation",
            ) from exc
        try:
            pdigest = check_digest(str(p.get("digest", "")), field_name=f"{where}.digest")
        except DigestError as exc:
            raise InvalidStatementError(exc.message, field=exc.field) from exc
        if pdigest == digest:
            raise InvalidStatementError(
                f"{where}: an artifact cannot be its own parent", field=where
            )
        if (relation, pdigest) in seen:
            raise InvalidStatementError(f"{where} repeats a parent", field=where)
        seen.add((relation, pdigest))
        parents.append(ParentLink(relation, pdigest))
    artifact = ArtifactRef(kind, name, version, digest, opaque)
    return Registration(artifact, tuple(parents), metadata)
