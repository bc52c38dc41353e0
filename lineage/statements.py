"""in-toto Statement v1 payloads that Studbook signs and accepts.

Every write to the registry is one DSSE envelope of payload type `application/vnd.in-toto+json`
holding an in-toto Statement v1. The statement's subjects are the digests of the artifacts it is
about; the predicate type says what kind of claim it is. Keeping to this standard shape means
in-toto tooling can read our records, and we can accept statements produced elsewhere.

Predicate types are URIs owned by Studbook, versioned in the path, so that a v2 can coexist.

Validated before written, servable forever. Whatever the registry accepts it stores and serves
back (the statement in `GET /v1/attestations/<id>`, metadata and names in every artifact and
lineage answer), so a statement that could not be served again must never be accepted. The limits,
all module constants:

- every statement (`parse_statement`, all predicate types): UTF-8 JSON of at most
  `MAX_STATEMENT_BYTES`, nested at most `MAX_STATEMENT_DEPTH` levels, no duplicate object keys
  (two parsers could read two different statements), every string and key Unicode scalar values
  without NUL, every integer within a signed 64-bit range, no NaN or infinite numbers; at most
  `MAX_SUBJECTS` subjects, each DigestSet value lowercase hex (`sha256`: exactly 64 characters,
  never `sha256:<hex>`), each subject name a string of at most `MAX_SUBJECT_NAME` characters;
- registrations (`parse_registration`): the artifact's name and version follow the grammar of
  `lineage.types.check_name` / `check_version` (NFC, printable, no bidi or zero-width characters,
  no absolute paths or `.`/`..` segments, at most `MAX_NAME` / `MAX_VERSION` characters); the
  subject's name is the predicate's `name@version`; at most `MAX_PARENTS` parents (each parent's
  `digest` is a Studbook field, not a DigestSet: 64 lowercase hex, a `sha256:` prefix allowed
  there, as every digest reference in the API allows it); metadata is an
  object nested at most `MAX_METADATA_DEPTH` levels (the object itself is level 1), at most
  `MAX_METADATA_BYTES` of canonical JSON, keys of at most `MAX_METADATA_KEY` characters and
  strings of at most `MAX_METADATA_STRING`.

Each refusal is an `InvalidStatementError` (or `DigestError`) naming the field by its JSON path
(`predicate.artifact.metadata.a.b[3]`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dsse import Envelope, Signer, Verifier
from .errors import DigestError, InvalidStatementError
from .types import (
    MAX_NAME,
    MAX_VERSION,
    ArtifactKind,
    ArtifactRef,
    ParentLink,
    Registration,
    Relation,
    check_digest,
    check_hex_digest,
    check_name,
    check_scalar_text,
    check_version,
)

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_KEY",
    "MAX_METADATA_STRING",
    "MAX_NAME",
    "MAX_PARENTS",
    "MAX_STATEMENT_BYTES",
    "MAX_STATEMENT_DEPTH",
    "MAX_SUBJECTS",
    "MAX_SUBJECT_NAME",
    "MAX_VERSION",
    "PAYLOAD_TYPE",
    "REGISTRATION_PREDICATE",
    "STATEMENT_TYPE",
    "VerifiedStatement",
    "canonical_json",
    "check_json_tree",
    "check_metadata",
    "parse_registration",
    "parse_statement",
    "registration_statement",
    "sign_statement",
    "verify_envelope",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
REGISTRATION_PREDICATE = "https://studbook.dev/attestations/registration/v1"

MAX_PARENTS = 256
# Every statement. The HTTP body limit (1 MiB by default) is lower; this one holds however an
# operator configures that, and for statements checked offline.
MAX_STATEMENT_BYTES = 4 << 20
MAX_STATEMENT_DEPTH = 32
MAX_SUBJECTS = 1024
MAX_SUBJECT_NAME = 512
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
# Registration metadata: free-form, but bounded, so that every answer that carries it (artifact,
# lineage, search, the attestation) stays small and encodable.
MAX_METADATA_DEPTH = 16
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_KEY = 256
MAX_METADATA_STRING = 16 * 1024
# in-toto DigestSet: algorithm names such as sha256, sha512, gitCommit; values lowercase hex.
_DIGEST_ALGORITHM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HEX = re.compile(r"[0-9a-f]{1,128}")


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


class _StrictJSONError(ValueError):
    """Raised from inside `json.loads` hooks; carries the field to name."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
            raise _StrictJSONError(
                f"payload repeats the key {shown!r} in one object; a signed statement must have "
                "one reading",
                "payload",
            )
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _StrictJSONError(f"payload holds {name}, which is not a JSON number", "payload")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _StrictJSONError(f"payload holds the number {text}, beyond a double", "payload")
    return value


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    shown = key.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{parent}.{shown}" if parent else shown


def check_json_tree(value: object, *, root: str, max_depth: int) -> int:
    """Walk a decoded JSON value iteratively and return its depth (a scalar is 0, `{}` is 1).

    Every statement goes through this on ingest, so a value that passes is walked once without
    naming anything (`_clean_depth`); only a value with an offence is walked again, by the walk
    that names the first one.

    Raises:
        InvalidStatementError: naming the JSON path of the first value nested deeper than
            `max_depth`, a string or key that is not Unicode scalar values or holds NUL, an
            integer outside a signed 64-bit range, or a non-finite number.
    """
    depth = _clean_depth(value, max_depth)
    if depth is not None:
        return depth
    return _named_check(value, root=root, max_depth=max_depth)


def _clean_depth(value: object, max_depth: int) -> int | None:
    """The depth of `value` if `_named_check` finds nothing wrong with it, else None.

    The same rules as `_named_check` without building a path per value; every string and key
    is checked at once at the end (a NUL or a lone surrogate in one is one in their join).
    """
    deepest = 0
    texts: list[str] = []
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            if depth > max_depth:
                return None
            deepest = max(deepest, depth)
            for k, v in item.items():
                texts.append(k if type(k) is str else str(k))
                stack.append((v, depth))
        elif isinstance(item, list):
            depth += 1
            if depth > max_depth:
                return None
            deepest = max(deepest, depth)
            stack.extend((v, depth) for v in item)
        elif isinstance(item, str):
            texts.append(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                return None
        elif isinstance(item, float):
            if not math.isfinite(item):
                return None
        else:
            return None
    joined = "".join(texts)
    if "\x00" in joined:
        return None
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return deepest


def _named_check(value: object, *, root: str, max_depth: int) -> int:
    """`check_json_tree`'s walk that names the first offence by its JSON path."""
    deepest = 0
    stack: list[tuple[object, str, int]] = [(value, root, 0)]
    while stack:
        item, where, depth = stack.pop()
        shown = where or "payload"
        if isinstance(item, dict | list):
            depth += 1
            if depth > max_depth:
                raise InvalidStatementError(
                    f"{shown} nests objects/arrays deeper than {max_depth} levels", field=shown
                )
            deepest = max(deepest, depth)
            children: list[tuple[object, str, int]] = []
            if isinstance(item, dict):
                for k, v in item.items():
                    child = _path(where, str(k))
                    check_scalar_text(str(k), field_name=child)
                    children.append((v, child, depth))
                if not where:
                    # The subject repeats what the predicate says (a registration's subject
                    # name is its name@version): report an offence where it is declared.
                    children.sort(key=lambda c: c[1] == "subject")
            else:
                children = [(v, _path(where, i), depth) for i, v in enumerate(item)]
            stack.extend(reversed(children))  # visited in document order
        elif isinstance(item, str):
            check_scalar_text(item, field_name=shown)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise InvalidStatementError(
                    f"{shown} is an integer outside the signed 64-bit range", field=shown
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidStatementError(f"{shown} is not a finite number", field=shown)
        else:  # pragma: no cover - json.loads makes nothing else
            raise InvalidStatementError(f"{shown} is not a JSON value", field=shown)
    return deepest


def _decode_payload(payload: bytes) -> Any:
    """JSON with one reading: UTF-8, no duplicate keys, no NaN/Infinity, bounded size and depth."""
    if len(payload) > MAX_STATEMENT_BYTES:
        raise InvalidStatementError(
            f"payload is {len(payload)} bytes; a statement is at most {MAX_STATEMENT_BYTES}",
            field="payload",
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidStatementError(
            f"payload is not UTF-8 (byte {exc.start})", field="payload"
        ) from None
    try:
        data = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except _StrictJSONError as exc:
        raise InvalidStatementError(str(exc), field=exc.field) from None
    except RecursionError:
        raise InvalidStatementError(
            f"payload nests objects/arrays deeper than {MAX_STATEMENT_DEPTH} levels",
            field="payload",
        ) from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise InvalidStatementError(f"payload is not JSON: {exc}", field="payload") from None
    check_json_tree(data, root="", max_depth=MAX_STATEMENT_DEPTH)
    return data


def _check_subject(s: object, i: int) -> None:
    where = f"subject[{i}]"
    if not isinstance(s, dict) or not isinstance(s.get("digest"), dict) or not s["digest"]:
        raise InvalidStatementError(
            f"{where} must be an object with a non-empty digest map", field=where
        )
    name = s.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_SUBJECT_NAME:
        raise InvalidStatementError(
            f"{where}.name must be a string of at most {MAX_SUBJECT_NAME} characters",
            field=f"{where}.name",
        )
    for algorithm, value in s["digest"].items():
        field = f"{where}.digest.{algorithm}"
        if not _DIGEST_ALGORITHM.fullmatch(algorithm):
            raise InvalidStatementError(
                f"{where}.digest: {algorithm!r} is not a digest algorithm name",
                field=f"{where}.digest",
            )
        try:
            if algorithm == "sha256":
                check_hex_digest(value, field_name=field)
            elif not isinstance(value, str) or not _HEX.fullmatch(value):
                raise DigestError(
                    f"{field} must be lowercase hex (at most 128 characters), got {value!r}",
                    field=field,
                )
        except DigestError as exc:
            raise InvalidStatementError(exc.message, field=exc.field) from exc


def parse_statement(payload: bytes) -> dict[str, Any]:
    """Parse and shape-check an in-toto Statement v1, under the limits in the module docstring.

    Raises:
        InvalidStatementError: naming the field that is wrong.
    """
    data = _decode_payload(payload)
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
    if len(subjects) > MAX_SUBJECTS:
        raise InvalidStatementError(f"at most {MAX_SUBJECTS} subjects", field="subject")
    for i, s in enumerate(subjects):
        _check_subject(s, i)
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


def check_metadata(metadata: object, *, field: str = "predicate.artifact.metadata") -> None:
    """Refuse registration metadata beyond the limits in the module docstring.

    Raises:
        InvalidStatementError: naming the JSON path of the first offence.
    """
    if not isinstance(metadata, dict):
        raise InvalidStatementError(f"{field} must be an object", field=field)
    check_json_tree(metadata, root=field, max_depth=MAX_METADATA_DEPTH)
    stack: list[tuple[object, str]] = [(metadata, field)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                child = _path(where, k)
                if len(k) > MAX_METADATA_KEY:
                    raise InvalidStatementError(
                        f"{child}: keys are at most {MAX_METADATA_KEY} characters", field=child
                    )
                stack.append((v, child))
        elif isinstance(item, list):
            stack.extend((v, _path(where, i)) for i, v in enumerate(item))
        elif isinstance(item, str) and len(item) > MAX_METADATA_STRING:
            raise InvalidStatementError(
                f"{where}: strings are at most {MAX_METADATA_STRING} characters, got {len(item)}",
                field=where,
            )
    size = len(canonical_json(metadata))
    if size > MAX_METADATA_BYTES:
        raise InvalidStatementError(
            f"{field} is {size} bytes of canonical JSON; at most {MAX_METADATA_BYTES}",
            field=field,
        )


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
        digest = check_hex_digest(digest_map["sha256"], field_name="subject[0].digest.sha256")
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
    name = check_name(art.get("name"), field_name="predicate.artifact.name")
    # A version never holds '/', so `<name>@<version>/lineage` in a URL is unambiguous.
    version = check_version(art.get("version"), field_name="predicate.artifact.version")
    label = f"{name}@{version}"
    if subjects[0].get("name") != label:
        raise InvalidStatementError(
            f"subject[0].name must be the artifact's name@version {label!r}, got "
            f"{subjects[0].get('name')!r}",
            field="subject[0].name",
        )
    opaque = art.get("opaque", False)
    if not isinstance(opaque, bool):
        raise InvalidStatementError(
            "predicate.artifact.opaque must be a boolean", field="predicate.artifact.opaque"
        )
    if opaque and kind is not ArtifactKind.MODEL:
        raise InvalidStatementError("only models can be opaque", field="predicate.artifact.opaque")
    metadata = art.get("metadata", {})
    check_metadata(metadata)
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
