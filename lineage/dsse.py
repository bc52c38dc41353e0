"""DSSE envelopes signed with Ed25519 or ECDSA (P-256, P-384), and proof of key possession.

Why DSSE: it signs the exact payload bytes together with their type (the pre-authentication
encoding, PAE), so a verifier never has to canonicalise JSON and a payload of one type cannot be
replayed as another. It is the envelope of in-toto attestations and of Sigstore bundles, so
Studbook's records can be checked by the ecosystem's own tools (securesystemslib verifies ours and
we verify theirs).

Why these algorithms: Ed25519 is the default (small deterministic signatures, no parameter choices
to get wrong). ECDSA P-256 and P-384 are accepted because they are what OpenSSF model-signing's
key signers and most hardware tokens make, so a team can sign its models and its Studbook records
with one key. Other curves are refused: every accepted algorithm is one more thing a verifier
must get right.

Key ids: Ed25519, the sha256 of the raw 32-byte public key (hex); ECDSA, the sha256 of the DER
SubjectPublicKeyInfo (hex). ECDSA signatures are DER, hashed with SHA-256 (P-256) or SHA-384
(P-384), as securesystemslib's `ecdsa-sha2-nistp256/384` schemes make them.

What verification promises: the envelope holds only DSSE's fields (`payload`, `payloadType`,
`signatures`, and per signature `keyid` and `sig`); anything else is refused, because a stored
envelope must hold nothing that was not signed. Every signature present must verify under a
trusted key, and no key may sign twice (a duplicate is refused rather than collapsed, so the
stored envelope is exactly the one that was checked). The `keyid` is, as DSSE says, an
unauthenticated hint: it decides which key is tried first, and a signature whose keyid is empty or
unknown is tried against every trusted key, so envelopes made by tools with other keyid schemes
(securesystemslib's default) verify when their key is trusted.

`Verifier.verify` returns what was verified or raises; there is no boolean answer to a trust
question. A bad or missing signature is `UnverifiedSignatureError` (the client's fault); key
material we cannot use is `VerificationError` (ours).

Proof of possession (`key_possession_proof`): a key is registered only with an envelope, signed by
that key, whose payload names the key and the principal it is registered for, so nobody can
register (squat) a public key they do not hold, and a proof made for one principal cannot be
replayed for another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, assert_never

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import InvalidEnvelopeError, UnverifiedSignatureError, VerificationError

__all__ = [
    "ENVELOPE_FIELDS",
    "KEY_POSSESSION_PAYLOAD_TYPE",
    "KEY_POSSESSION_TYPE",
    "MAX_SIGNATURES",
    "SIGNATURE_FIELDS",
    "Envelope",
    "KeyAlgorithm",
    "PrivateKey",
    "PublicKey",
    "Signature",
    "Signer",
    "Verifier",
    "algorithm_of",
    "b64decode",
    "generate_private_key",
    "key_possession_payload",
    "key_possession_proof",
    "keyid",
    "load_private_key",
    "load_public_key",
    "pae",
    "private_key_pem",
    "public_key_b64",
    "public_key_pem",
    "public_key_text",
    "verify_key_possession",
]

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey

# The DSSE JSON envelope's fields; nothing else is accepted.
ENVELOPE_FIELDS = frozenset({"payload", "payloadType", "signatures"})
SIGNATURE_FIELDS = frozenset({"keyid", "sig"})
# More signatures than any real envelope carries; each is tried against the trusted keys, so the
# bound also bounds the work one request can cause.
MAX_SIGNATURES = 16

KEY_POSSESSION_PAYLOAD_TYPE = "application/vnd.studbook.key-possession+json"
KEY_POSSESSION_TYPE = "https://studbook.dev/KeyPossession/v1"


class KeyAlgorithm(StrEnum):
    """The signing algorithms Studbook accepts, by the names the CLI and API use."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"


def _ecdsa_hash(algorithm: KeyAlgorithm) -> hashes.HashAlgorithm:
    match algorithm:
        case KeyAlgorithm.ECDSA_P256:
            return hashes.SHA256()
        case KeyAlgorithm.ECDSA_P384:
            return hashes.SHA384()
        case KeyAlgorithm.ED25519:
            raise VerificationError("Ed25519 signs without a separate hash")
        case _:
            assert_never(algorithm)


def _curve_algorithm(curve: ec.EllipticCurve) -> KeyAlgorithm | None:
    if isinstance(curve, ec.SECP256R1):
        return KeyAlgorithm.ECDSA_P256
    if isinstance(curve, ec.SECP384R1):
        return KeyAlgorithm.ECDSA_P384
    return None


def algorithm_of(key: PublicKey | PrivateKey) -> KeyAlgorithm:
    """The algorithm of a key object.

    Raises:
        InvalidEnvelopeError: an elliptic-curve key on a curve other than P-256 or P-384
            (field `public_key`).
    """
    if isinstance(key, Ed25519PublicKey | Ed25519PrivateKey):
        return KeyAlgorithm.ED25519
    algorithm = _curve_algorithm(key.curve)
    if algorithm is None:
        raise InvalidEnvelopeError(
            f"ECDSA keys must be on P-256 or P-384, not {key.curve.name}", field="public_key"
        )
    return algorithm


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes that are actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode(value: object, *, field: str) -> bytes:
    """Decode standard or URL-safe base64, as DSSE allows, naming `field` on failure."""
    if not isinstance(value, str):
        raise InvalidEnvelopeError(f"{field} must be a base64 string", field=field)
    padded = value + "=" * (-len(value) % 4)
    try:
        if "-" in value or "_" in value:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise InvalidEnvelopeError(f"{field} is not valid base64: {exc}", field=field) from exc


def _shown(value: object, limit: int = 100) -> str:
    """`value` as text for an error message, cut to `limit` characters (it came from a client)."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def keyid(public_key: PublicKey) -> str:
    """The key's id, hex: sha256 of the raw key (Ed25519) or of the DER SubjectPublicKeyInfo
    (ECDSA)."""
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(_spki_der(public_key)).hexdigest()


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    """The raw 32-byte Ed25519 public key in base64, the form Ed25519 keys are registered in."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


def public_key_pem(public_key: PublicKey) -> str:
    """PEM SubjectPublicKeyInfo, for either algorithm (what other tools read)."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_text(public_key: PublicKey) -> str:
    """The form a key is registered and listed in: base64 of the raw bytes for Ed25519 (short,
    and what Studbook always used), PEM SubjectPublicKeyInfo for ECDSA."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key_b64(public_key)
    return public_key_pem(public_key)


def load_public_key(value: str) -> PublicKey:
    """Parse a public key: base64 of the raw 32 Ed25519 bytes, or PEM SubjectPublicKeyInfo of an
    Ed25519, ECDSA P-256 or ECDSA P-384 key.

    Raises:
        InvalidEnvelopeError: the value is none of these (field `public_key`).
    """
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if isinstance(key, Ed25519PublicKey):
                return key
            if isinstance(key, ec.EllipticCurvePublicKey):
                algorithm_of(key)  # refuses other curves
                return key
            raise InvalidEnvelopeError(
                "public_key must be an Ed25519, ECDSA P-256 or ECDSA P-384 key",
                field="public_key",
            )
        raw = b64decode(text, field="public_key")
        if len(raw) != 32:
            raise InvalidEnvelopeError(
                f"public_key must be 32 raw bytes in base64 (Ed25519) or PEM, got {len(raw)} bytes",
                field="public_key",
            )
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise InvalidEnvelopeError(f"public_key is not usable: {exc}", field="public_key") from exc


def generate_private_key(algorithm: KeyAlgorithm | str = KeyAlgorithm.ED25519) -> PrivateKey:
    """A fresh private key of `algorithm` (`ed25519`, `ecdsa-p256` or `ecdsa-p384`).

    Raises:
        InvalidEnvelopeError: an unknown algorithm name (field `algorithm`).
    """
    try:
        algo = KeyAlgorithm(algorithm)
    except ValueError as exc:
        known = ", ".join(a.value for a in KeyAlgorithm)
        raise InvalidEnvelopeError(
            f"algorithm must be one of {known}, not {algorithm!r}", field="algorithm"
        ) from exc
    match algo:
        case KeyAlgorithm.ED25519:
            return Ed25519PrivateKey.generate()
        case KeyAlgorithm.ECDSA_P256:
            return ec.generate_private_key(ec.SECP256R1())
        case KeyAlgorithm.ECDSA_P384:
            return ec.generate_private_key(ec.SECP384R1())
        case _:
            assert_never(algo)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the caller decides where it lives (mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8, or SEC1 for ECDSA): Ed25519, ECDSA P-256 or
    ECDSA P-384.

    Raises:
        VerificationError: the bytes are not such a key.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise VerificationError(f"cannot load private key: {exc}") from exc
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and _curve_algorithm(key.curve) is not None:
        return key
    raise VerificationError("private key is not Ed25519, ECDSA P-256 or ECDSA P-384")


@dataclass(frozen=True, slots=True)
class Signature:
    """One DSSE signature."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope. `payload` holds the decoded bytes."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the DSSE spec."""
        return {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": _b64(s.sig)} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """Compact JSON bytes of `to_json()`."""
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: object) -> Envelope:
        """Parse the DSSE JSON form (a dict, or bytes/str of JSON), refusing any field DSSE does
        not define (at the top level and in each signature).

        Raises:
            InvalidEnvelopeError: naming the field that is missing, malformed or unknown.
        """
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise InvalidEnvelopeError(
                    f"envelope is not JSON: {exc}", field="envelope"
                ) from exc
        if not isinstance(data, dict):
            raise InvalidEnvelopeError("envelope must be a JSON object", field="envelope")
        unknown = sorted(_shown(k) for k in data if k not in ENVELOPE_FIELDS)
        if unknown:
            raise InvalidEnvelopeError(
                f"envelope field {unknown[0]!r} is not a DSSE field (allowed: payload, "
                "payloadType, signatures); nothing outside the signed payload is stored",
                field=unknown[0],
            )
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise InvalidEnvelopeError(
                "payloadType must be a non-empty string", field="payloadType"
            )
        if "payload" not in data:
            raise InvalidEnvelopeError("payload is missing", field="payload")
        payload = b64decode(data["payload"], field="payload")
        raw_sigs = data.get("signatures")
        if not isinstance(raw_sigs, list) or not raw_sigs:
            raise InvalidEnvelopeError("signatures must be a non-empty list", field="signatures")
        if len(raw_sigs) > MAX_SIGNATURES:
            raise InvalidEnvelopeError(
                f"signatures holds {len(raw_sigs)} entries; at most {MAX_SIGNATURES} are accepted",
                field="signatures",
            )
        sigs = []
        for i, item in enumerate(raw_sigs):
            where = f"signatures[{i}]"
            if not isinstance(item, dict):
                raise InvalidEnvelopeError(f"{where} must be an object", field=where)
            extra = sorted(_shown(k) for k in item if k not in SIGNATURE_FIELDS)
            if extra:
                raise InvalidEnvelopeError(
                    f"{where}.{extra[0]} is not a DSSE signature field (allowed: keyid, sig)",
                    field=f"{where}.{extra[0]}",
                )
            kid = item.get("keyid", "")
            if not isinstance(kid, str):
                raise InvalidEnvelopeError(
                    f"{where}.keyid must be a string", field=f"{where}.keyid"
                )
            sig = b64decode(item.get("sig"), field=f"{where}.sig")
            sigs.append(Signature(kid, sig))
        return cls(payload_type, payload, tuple(sigs))


def _sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(_ecdsa_hash(algorithm_of(key))))


def _verify_one(key: PublicKey, sig: bytes, message: bytes) -> bool:
    """Whether `sig` is `key`'s signature over `message`.

    Raises:
        VerificationError: the key object cannot verify at all (ours to fix).
    """
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(sig, message)
        else:
            key.verify(sig, message, ec.ECDSA(_ecdsa_hash(algorithm_of(key))))
    except InvalidSignature:
        return False
    except (TypeError, ValueError, InvalidEnvelopeError) as exc:  # unusable key object
        raise VerificationError(f"key {keyid(key)} cannot verify: {exc}") from exc
    return True


class Signer:
    """Signs payloads with one Ed25519 or ECDSA (P-256, P-384) private key."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = private_key
        try:
            self.algorithm = algorithm_of(private_key)
        except InvalidEnvelopeError as exc:
            raise VerificationError(f"cannot sign with this key: {exc.message}") from exc
        self.keyid = keyid(private_key.public_key())

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self._key.public_key()

    @property
    def public_key_text(self) -> str:
        """The public key in the form `POST /v1/keys` takes (see `public_key_text`)."""
        return public_key_text(self.public_key)

    def sign(self, payload_type: str, payload: bytes) -> Envelope:
        """Wrap `payload` in a DSSE envelope with one signature."""
        sig = _sign(self._key, pae(payload_type, payload))
        return Envelope(payload_type, payload, (Signature(self.keyid, sig),))

    def sign_raw(self, message: bytes) -> bytes:
        """Sign arbitrary bytes (checkpoints and other non-DSSE formats)."""
        return _sign(self._key, message)


class Verifier:
    """Verifies envelopes against a set of trusted public keys, indexed by keyid."""

    def __init__(self, keys: Mapping[str, PublicKey]) -> None:
        self._keys = dict(keys)

    def verify(self, envelope: Envelope, *, payload_type: str | None = None) -> str:
        """Check every signature; return the keyid of the key that made the first one.

        Raises:
            InvalidEnvelopeError: the payload type is not `payload_type`, or one key signed
                twice (field `signatures[i]`).
            UnverifiedSignatureError: a signature does not verify under any trusted key; its
                `index` and `keyid` say which.
            VerificationError: a trusted key could not be used.
        """
        return self.verify_all(envelope, payload_type=payload_type)[0]

    def verify_all(self, envelope: Envelope, *, payload_type: str | None = None) -> tuple[str, ...]:
        """Check every signature; return the keyids of the keys that made them, in order.

        A signature's keyid only decides which trusted key is tried first: when it does not
        verify under that key (or names none), every other trusted key is tried.

        Raises:
            InvalidEnvelopeError, UnverifiedSignatureError, VerificationError: as `verify`.
        """
        if payload_type is not None and envelope.payload_type != payload_type:
            raise InvalidEnvelopeError(
                f"payloadType must be {payload_type!r}, got {envelope.payload_type!r}",
                field="payloadType",
            )
        if not envelope.signatures:
            raise UnverifiedSignatureError("the envelope has no signature", keyid=None)
        message = pae(envelope.payload_type, envelope.payload)
        signers: list[str] = []
        for i, sig in enumerate(envelope.signatures):
            order = [sig.keyid] if sig.keyid in self._keys else []
            order += [k for k in self._keys if k != sig.keyid]
            found = next((k for k in order if _verify_one(self._keys[k], sig.sig, message)), None)
            if found is None:
                raise UnverifiedSignatureError(
                    f"signatures[{i}] (keyid {sig.keyid or '<none>'}) does not verify under any "
                    "trusted key: the payload or signature was altered, or it was signed by "
                    "another key",
                    keyid=sig.keyid or None,
                    index=i,
                )
            if found in signers:
                raise InvalidEnvelopeError(
                    f"signatures[{i}] is a second signature by key {found}; each key signs once",
                    field=f"signatures[{i}]",
                )
            signers.append(found)
        return tuple(signers)


# ----------------------------------------------------------------------------- key possession


def key_possession_payload(kid: str, principal: str) -> bytes:
    """The exact payload a possession proof signs: compact, key-sorted UTF-8 JSON naming the
    key and the principal (the bytes of `lineage.statements.canonical_json`)."""
    statement = {"_type": KEY_POSSESSION_TYPE, "keyid": kid, "principal": principal}
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_possession_proof(signer: Signer, principal: str) -> Envelope:
    """The proof `POST /v1/keys` requires: `signer`'s key signs that it is registered for
    `principal` (the caller, or the principal an admin registers it for)."""
    return signer.sign(KEY_POSSESSION_PAYLOAD_TYPE, key_possession_payload(signer.keyid, principal))


def _proof_error(message: str) -> InvalidEnvelopeError:
    return InvalidEnvelopeError(f"proof: {message}", field="proof")


def verify_key_possession(proof: object, public_key: PublicKey, principal: str) -> Envelope:
    """Check that `proof` (a DSSE envelope, as JSON or parsed) was signed by `public_key` and names
    that key and `principal`; return it.

    Every refusal says why; all are `InvalidEnvelopeError` with field `proof`, because the proof
    is one request field, whatever part of it is wrong.

    Raises:
        InvalidEnvelopeError: the proof is missing, malformed, names another key or principal,
            is not exactly the canonical payload, or its signature does not verify.
    """
    if proof is None:
        raise _proof_error(
            "required: a DSSE envelope signed by the new key "
            "(see lineage.dsse.key_possession_proof)"
        )
    try:
        envelope = proof if isinstance(proof, Envelope) else Envelope.from_json(proof)
    except InvalidEnvelopeError as exc:
        raise _proof_error(exc.message) from exc
    if envelope.payload_type != KEY_POSSESSION_PAYLOAD_TYPE:
        raise _proof_error(
            f"payloadType must be {KEY_POSSESSION_PAYLOAD_TYPE!r}, got {envelope.payload_type!r}"
        )
    kid = keyid(public_key)
    try:
        claim = json.loads(envelope.payload)
    except (ValueError, RecursionError) as exc:
        raise _proof_error("payload is not JSON") from exc
    if not isinstance(claim, dict) or claim.get("_type") != KEY_POSSESSION_TYPE:
        raise _proof_error(f"payload must be a JSON object with _type {KEY_POSSESSION_TYPE!r}")
    if claim.get("keyid") != kid:
        raise _proof_error(
            f"payload names key {_shown(repr(claim.get('keyid')))}, not the key registered ({kid})"
        )
    if claim.get("principal") != principal:
        raise _proof_error(
            f"payload names principal {_shown(repr(claim.get('principal')))}, but the key is being "
            f"registered for {principal!r}"
        )
    if envelope.payload != key_possession_payload(kid, principal):
        raise _proof_error(
            "payload must be exactly the compact, key-sorted JSON of _type, keyid and principal"
        )
    if len(envelope.signatures) != 1:
        raise _proof_error(f"must hold exactly one signature, not {len(envelope.signatures)}")
    sig = envelope.signatures[0]
    if sig.keyid != kid:
        raise _proof_error(
            f"signature keyid must be the registered key's ({kid}), not {_shown(repr(sig.keyid))}"
        )
    if not _verify_one(public_key, sig.sig, pae(envelope.payload_type, envelope.payload)):
        raise _proof_error(
            "signature does not verify under the key being registered: it was made by another "
            "key, or the proof was altered"
        )
    return envelope
