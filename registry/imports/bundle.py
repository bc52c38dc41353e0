"""OpenSSF model-signing bundles: parse, check the signed manifest, verify against known keys.

A model-signing signature (`model.sig`) is a Sigstore bundle (JSON, media type
`application/vnd.dev.sigstore.bundle.v0.3+json` or an earlier 0.x) holding a DSSE envelope whose
payload is an in-toto Statement v1 with predicate type `https://model_signing/signature/v1.0`: one
subject (the model's name and the sha256 over its files' digests, in model-signing's order), and
a predicate listing every file (`resources`: name, algorithm, digest) and how the model was
serialised (`serialization`: method, hash type, ignored paths).

What the server checks, before anything is written:
- the bundle's shape, naming the field that is wrong;
- the signature, over DSSE's PAE of the payload, against the submitting principal's own active
  keys (model-signing's key signer makes ECDSA P-256/P-384/P-521 signatures hashed with
  SHA-256/384/512; an Ed25519 key is tried as Ed25519): which key signed is found by trying them,
  because model-signing's key hint (sha256 of the PEM) is not Studbook's key id;
- the statement: the predicate type, file serialisation with sha256 (Studbook's artifact digest
  is that digest; a sharded manifest names another digest and is refused), and that the subject
  digest is the sha256 over the listed file digests in model-signing's order, so the listed files
  are exactly what the subject digest commits to.

The files themselves are on the client: `studbook import oms` verifies them with model-signing's
own verifier before it submits (and its digest is Studbook's, see `lineage.digests`).

Keyless bundles (a Fulcio certificate and a Rekor entry instead of a key hint) need Sigstore's
trust root; they verify only where the operator configured one (`sigstore_trust_root`) and the
`sigstore` library can check the bundle offline against it, and are refused with a message
saying so otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lineage.digests import digest_of_file_digests, sort_key
from lineage.dsse import pae
from lineage.errors import VerificationError
from lineage.types import check_digest

from ..errors import BadRequestError

__all__ = [
    "BUNDLE_MEDIA_PREFIX",
    "OMS_PREDICATE",
    "ParsedBundle",
    "parse_bundle",
    "verify_with_keys",
]

BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
OMS_PREDICATE = "https://model_signing/signature/v1.0"
IN_TOTO_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
MAX_RESOURCES = 100_000


@dataclass(frozen=True)
class ParsedBundle:
    """A shape-checked model-signing bundle; nothing in it is trusted yet."""

    payload: bytes
    payload_type: str
    signature: bytes
    key_hint: str | None
    keyless: bool
    statement: dict[str, Any]
    subject_name: str
    subject_digest: str
    resources: tuple[tuple[str, str], ...]
    ignore_paths: tuple[str, ...]

    @property
    def payload_digest(self) -> str:
        """sha256 of the signed payload (identifies the signature's statement)."""
        return hashlib.sha256(self.payload).hexdigest()


def _bad(message: str, field: str) -> BadRequestError:
    return BadRequestError(message, field=f"bundle.{field}")


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _bad(f"{field} must be a base64 string", field)
    try:
        padded = value + "=" * (-len(value) % 4)
        if "-" in value or "_" in value:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"{field} is not valid base64", field) from exc


def parse_bundle(bundle: object) -> ParsedBundle:
    """Check the shape of a model-signing bundle and of the statement it carries.

    Raises:
        BadRequestError: naming the field (`bundle.<path>`) that is wrong.
    """
    if not isinstance(bundle, dict):
        raise BadRequestError("bundle must be a JSON object (the model.sig file)", field="bundle")
    media = bundle.get("mediaType")
    if not isinstance(media, str) or not media.startswith(BUNDLE_MEDIA_PREFIX):
        raise _bad(f"mediaType must be a Sigstore bundle ({BUNDLE_MEDIA_PREFIX}...)", "mediaType")
    env = bundle.get("dsseEnvelope")
    if not isinstance(env, dict):
        raise _bad("dsseEnvelope is required: model-signing signs a DSSE envelope", "dsseEnvelope")
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise _bad("verificationMaterial must be an object", "verificationMaterial")
    public_key = material.get("publicKey")
    keyless = any(k in material for k in ("certificate", "x509CertificateChain"))
    hint: str | None = None
    if isinstance(public_key, dict):
        raw_hint = public_key.get("hint")
        hint = raw_hint if isinstance(raw_hint, str) and raw_hint else None
    elif not keyless:
        raise _bad(
            "verificationMaterial needs a publicKey (key signing) or a certificate (keyless)",
            "verificationMaterial",
        )
    payload_type = env.get("payloadType")
    if payload_type != IN_TOTO_TYPE:
        raise _bad(f"dsseEnvelope.payloadType must be {IN_TOTO_TYPE}", "dsseEnvelope.payloadType")
    payload = _b64(env.get("payload"), "dsseEnvelope.payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise _bad(
            "dsseEnvelope.signatures must hold exactly one signature", "dsseEnvelope.signatures"
        )
    signature = _b64(sigs[0].get("sig"), "dsseEnvelope.signatures[0].sig")
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad("the signed payload is not JSON", "dsseEnvelope.payload") from exc
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise _bad(
            f"the payload must be an in-toto statement ({STATEMENT_TYPE})", "statement._type"
        )
    if statement.get("predicateType") != OMS_PREDICATE:
        raise _bad(
            f"predicateType must be {OMS_PREDICATE} (model-signing v1.x); "
            f"got {statement.get('predicateType')!r}",
            "statement.predicateType",
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise _bad("the statement must have exactly one subject", "statement.subject")
    digest_map = subjects[0].get("digest")
    if not isinstance(digest_map, dict) or not isinstance(digest_map.get("sha256"), str):
        raise _bad("subject[0].digest.sha256 is required", "statement.subject[0].digest")
    try:
        subject_digest = check_digest(digest_map["sha256"], field_name="sha256")
    except Exception as exc:
        raise _bad(
            "subject digest must be 64 hex characters", "statement.subject[0].digest"
        ) from exc
    name = subjects[0].get("name")
    pred = statement.get("predicate")
    if not isinstance(pred, dict):
        raise _bad("predicate must be an object", "statement.predicate")
    ser = pred.get("serialization")
    if (
        not isinstance(ser, dict)
        or ser.get("method") != "files"
        or ser.get("hash_type") != "sha256"
    ):
        raise _bad(
            "only file serialisation with sha256 is accepted (Studbook identifies a model by "
            "that digest); re-sign without sharding or another hash",
            "statement.predicate.serialization",
        )
    ignore = ser.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise _bad("ignore_paths must be a list of strings", "statement.predicate.serialization")
    raw_resources = pred.get("resources")
    if not isinstance(raw_resources, list) or not raw_resources:
        raise _bad("resources must be a non-empty list", "statement.predicate.resources")
    if len(raw_resources) > MAX_RESOURCES:
        raise _bad(f"at most {MAX_RESOURCES} resources", "statement.predicate.resources")
    resources: list[tuple[str, str]] = []
    for i, r in enumerate(raw_resources):
        where = f"statement.predicate.resources[{i}]"
        if not isinstance(r, dict) or r.get("algorithm") != "sha256":
            raise _bad("each resource needs algorithm sha256", where)
        if not isinstance(r.get("name"), str) or not isinstance(r.get("digest"), str):
            raise _bad("each resource needs a name and a digest", where)
        try:
            resources.append((r["name"], check_digest(r["digest"], field_name="digest")))
        except Exception as exc:
            raise _bad("resource digest must be 64 hex characters", where) from exc
    names = [n for n, _ in resources]
    if names != sorted(names, key=sort_key) or len(set(names)) != len(names):
        raise _bad(
            "resources must be unique and in model-signing's order", "statement.predicate.resources"
        )
    if digest_of_file_digests(d for _, d in resources) != subject_digest:
        raise _bad(
            "the subject digest is not the digest of the listed files",
            "statement.subject[0].digest",
        )
    return ParsedBundle(
        payload=payload,
        payload_type=payload_type,
        signature=signature,
        key_hint=hint,
        keyless=keyless,
        statement=statement,
        subject_name=name if isinstance(name, str) else "",
        subject_digest=subject_digest,
        resources=tuple(resources),
        ignore_paths=tuple(ignore),
    )


def _ec_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    size = key.curve.key_size
    if size == 256:
        return hashes.SHA256()
    if size == 384:
        return hashes.SHA384()
    return hashes.SHA512()


def pem_hint(key: Any) -> str:
    """model-signing's key hint: sha256 of the PEM SubjectPublicKeyInfo, hex."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def verify_with_keys(parsed: ParsedBundle, keys: dict[str, Any]) -> str:
    """The keyid of the key (among `keys`, keyid -> public key) that made the bundle's signature.

    Returns:
        The Studbook keyid of the signing key.

    Raises:
        BadRequestError: no key verifies it (field `bundle.dsseEnvelope.signatures`).
    """
    message = pae(parsed.payload_type, parsed.payload)
    # Keys matching the hint first; any other key after (older bundles carry no hint).
    ordered = sorted(keys.items(), key=lambda kv: pem_hint(kv[1]) != parsed.key_hint)
    for kid, key in ordered:
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(parsed.signature, message, ec.ECDSA(_ec_hash(key)))
            elif isinstance(key, Ed25519PublicKey):
                key.verify(parsed.signature, message)
            else:
                continue
        except InvalidSignature:
            continue
        return kid
    raise BadRequestError(
        "the bundle's signature does not verify under any of your registered, active keys: "
        "register the public key that signed it with POST /v1/keys first",
        field="bundle.dsseEnvelope.signatures",
    )


def verify_keyless(bundle: dict[str, Any], trust_root: Path | None) -> str:
    """Verify a keyless (Fulcio/Rekor) bundle offline against the operator's trust root.

    Returns:
        The certificate's identity (subject alternative name) that signed.

    Raises:
        BadRequestError: no trust root is configured, or the bundle does not verify against it.
    """
    if trust_root is None:
        raise BadRequestError(
            "keyless Sigstore bundles are verified only against a trust root the operator "
            "provides (STUDBOOK_SIGSTORE_TRUST_ROOT); this server has none, so sign the model "
            "with a key (model_signing sign key) and register its public key",
            field="bundle.verificationMaterial",
        )
    try:
        from sigstore.models import Bundle, ClientTrustConfig, TrustedRoot
        from sigstore.verify import Verifier
        from sigstore.verify.policy import UnsafeNoOp
    except ImportError as exc:  # the library is optional on servers
        raise BadRequestError(
            "keyless bundles need the `sigstore` library on the server",
            field="bundle.verificationMaterial",
        ) from exc
    try:  # a client trust configuration, or a bare trusted_root.json
        root = ClientTrustConfig.from_json(trust_root.read_text()).trusted_root
    except Exception:
        try:
            root = TrustedRoot.from_file(str(trust_root))
        except Exception as exc:  # the operator's file is unusable: the server's fault
            raise VerificationError(
                f"the configured Sigstore trust root {trust_root} cannot be read: {exc}"
            ) from exc
    try:
        parsed = Bundle.from_json(json.dumps(bundle))
        # Any identity the trust root's Fulcio certified is accepted and recorded with the
        # evidence (`signer_identity`): the bundle is evidence for the principal's own signed
        # registration, not a substitute for it.
        Verifier(trusted_root=root).verify_dsse(parsed, UnsafeNoOp())
    except Exception as exc:  # every sigstore failure is a refusal of this bundle
        raise BadRequestError(
            f"the keyless bundle does not verify against the configured trust root: {exc}",
            field="bundle.verificationMaterial",
        ) from exc
    cert = parsed.signing_certificate
    try:
        from cryptography.x509 import SubjectAlternativeName

        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        return ",".join(str(v.value) for v in san)
    except Exception:
        return cert.subject.rfc4514_string()
