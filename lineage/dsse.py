"""DSSE envelopes signed with Ed25519.

Why DSSE: it signs the exact payload bytes together with their type (the pre-authentication
encoding, PAE), so a verifier never has to canonicalise JSON and a payload of one type cannot be
replayed as another. It is the envelope of in-toto attestations and of Sigstore bundles, so
Studbook's records can be checked by the ecosystem's own tools (securesystemslib verifies ours and
we verify theirs).

Why Ed25519: small deterministic signatures, no parameter choices to get wrong, and it is in the
`cryptography` package. A key's id is the sha256 of its raw 32-byte public key, in hex.

`Verifier.verify` returns what was verified or raises; there is no boolean answer to a trust
question. A bad or missing signature is `UnverifiedSignatureError` (the client's fault); key
material we cannot use is `VerificationError` (ours).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import InvalidEnvelopeError, UnverifiedSignatureError, VerificationError

__all__ = [
    "Envelope",
    "Signature",
    "Signer",
    "Verifier",
    "b64decode",
    "generate_private_key",
    "keyid",
    "load_private_key",
    "load_public_key",
    "pae",
    "private_key_pem",
    "public_key_b64",
]


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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def keyid(public_key: Ed25519PublicKey) -> str:
    """sha256 of the raw public key, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in base64, the form keys are registered in."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


def load_public_key(value: str) -> Ed25519PublicKey:
    """Parse a public key given as base64 of the raw 32 bytes, or as PEM.

    Raises:
        InvalidEnvelopeError: the value is neither (field `public_key`).
    """
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise InvalidEnvelopeError("public_key must be an Ed25519 key", field="public_key")
            return key
        raw = b64decode(text, field="public_key")
        if len(raw) != 32:
            raise InvalidEnvelopeError(
                f"public_key must be 32 raw bytes in base64, got {len(raw)} bytes",
                field="public_key",
            )
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidEnvelopeError(f"public_key is not usable: {exc}", field="public_key") from exc


def generate_private_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the caller decides where it lives (mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """Parse a PKCS#8 PEM Ed25519 private key.

    Raises:
        VerificationError: the bytes are not an Ed25519 private key.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise VerificationError(f"cannot load private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise VerificationError("private key is not Ed25519")
    return key


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
        """Parse the DSSE JSON form (a dict, or bytes/str of JSON).

        Raises:
            InvalidEnvelopeError: naming the field that is missing or malformed.
        """
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidEnvelopeError(
                    f"envelope is not JSON: {exc}", field="envelope"
                ) from exc
        if not isinstance(data, dict):
            raise InvalidEnvelopeError("envelope must be a JSON object", field="envelope")
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
        sigs = []
        for i, item in enumerate(raw_sigs):
            if not isinstance(item, dict):
                raise InvalidEnvelopeError(
                    f"signatures[{i}] must be an object", field=f"signatures[{i}]"
                )
            kid = item.get("keyid", "")
            if not isinstance(kid, str):
                raise InvalidEnvelopeError(
                    f"signatures[{i}].keyid must be a string", field=f"signatures[{i}].keyid"
                )
            sig = b64decode(item.get("sig"), field=f"signatures[{i}].sig")
            sigs.append(Signature(kid, sig))
        return cls(payload_type, payload, tuple(sigs))


class Signer:
    """Signs payloads with one Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.keyid = keyid(private_key.public_key())

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self._key.public_key()

    def sign(self, payload_type: str, payload: bytes) -> Envelope:
        """Wrap `payload` in a DSSE envelope with one signature."""
        sig = self._key.sign(pae(payload_type, payload))
        return Envelope(payload_type, payload, (Signature(self.keyid, sig),))

    def sign_raw(self, message: bytes) -> bytes:
        """Sign arbitrary bytes (checkpoints and other non-DSSE formats)."""
        return self._key.sign(message)


class Verifier:
    """Verifies envelopes against a set of trusted public keys, indexed by keyid."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def verify(self, envelope: Envelope, *, payload_type: str | None = None) -> str:
        """Return the keyid of a trusted key whose signature over the envelope is valid.

        Signatures whose keyid is unknown are skipped; an empty keyid is tried against every
        trusted key, as DSSE allows keyid to be omitted.

        Raises:
            InvalidEnvelopeError: the payload type is not `payload_type`.
            UnverifiedSignatureError: no signature verifies with a trusted key.
            VerificationError: a trusted key could not be used.
        """
        if payload_type is not None and envelope.payload_type != payload_type:
            raise InvalidEnvelopeError(
                f"payloadType must be {payload_type!r}, got {envelope.payload_type!r}",
                field="payloadType",
            )
        message = pae(envelope.payload_type, envelope.payload)
        tried: list[str] = []
        for sig in envelope.signatures:
            candidates = [sig.keyid] if sig.keyid else list(self._keys)
            for kid in candidates:
                key = self._keys.get(kid)
                if key is None:
                    continue
                tried.append(kid)
                try:
                    key.verify(sig.sig, message)
                except InvalidSignature:
                    continue
                except (TypeError, ValueError) as exc:  # unusable key object
                    raise VerificationError(f"key {kid} cannot verify: {exc}") from exc
                return kid
        if tried:
            raise UnverifiedSignatureError(
                "signature does not verify: the payload or signature was altered, or it was "
                "signed by another key",
                keyid=tried[0],
            )
        named = ", ".join(s.keyid or "<none>" for s in envelope.signatures)
        raise UnverifiedSignatureError(
            f"no signature is by a trusted key (signature keyids: {named})",
            keyid=envelope.signatures[0].keyid if envelope.signatures else None,
        )
