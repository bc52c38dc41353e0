"""Client side of the OpenSSF model-signing intake: check a signed model folder locally.

Before `studbook import oms` sends a bundle to the registry, the files are checked where they
are, with model-signing's own verifier (imported inside the function: it is an optional, heavy
dependency): the bundle's signature against the public key, and every file's digest against the
signed manifest, extra and missing files included. The server repeats the signature check
against the principal's registered keys and checks the manifest's internal consistency; only the
client can see the files.

The digest registered is Studbook's `lineage.digests` digest of the folder, which is identical
to model-signing's subject digest for every layout; the check below also holds the two equal, so
a disagreement is an error here and never a wrong registration.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .digests import SIGNATURE_NAME, manifest
from .errors import LineageError

__all__ = ["OmsCheck", "OmsError", "verify_model"]


class OmsError(LineageError):
    """The model folder does not match its model-signing signature (or cannot be checked)."""


@dataclass(frozen=True, slots=True)
class OmsCheck:
    """A signed folder that verified: its digest, file count and the bundle to submit."""

    digest: str
    files: int
    size: int
    bundle: dict[str, Any]


def _signed_ignore_paths(bundle: dict[str, Any]) -> list[str]:
    try:
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        paths = payload["predicate"]["serialization"].get("ignore_paths", [])
    except (KeyError, TypeError, ValueError) as exc:
        raise OmsError(f"not a model-signing bundle: {exc}", field="signature") from exc
    return [p for p in paths if isinstance(p, str)]


def verify_model(
    model_dir: str | os.PathLike[str],
    signature: str | os.PathLike[str] | None = None,
    public_key_pem: bytes | None = None,
) -> OmsCheck:
    """Verify `model_dir` against its model-signing `signature` (default `model_dir/model.sig`).

    Args:
        model_dir: the signed model folder.
        signature: the bundle file; inside the folder it is left out of the digest.
        public_key_pem: the signer's public key (PEM); required for key-signed bundles.

    Raises:
        OmsError: the bundle is unreadable, a file differs, is extra or missing, the signature
            does not verify, or model-signing is not installed.
    """
    root = Path(model_dir)
    sig = Path(signature) if signature is not None else root / SIGNATURE_NAME
    try:
        bundle = json.loads(sig.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OmsError(f"cannot read the signature {sig}: {exc}", field="signature") from exc
    if not isinstance(bundle, dict):
        raise OmsError(f"{sig} is not a model-signing bundle", field="signature")
    if public_key_pem is None:
        raise OmsError("a public key (PEM) is needed to verify a key-signed bundle", field="key")
    try:
        import model_signing
    except ImportError as exc:
        raise OmsError(
            "model-signing is not installed (pip install model-signing)", field="signature"
        ) from exc
    try:
        inside = sig.resolve().relative_to(root.resolve())
    except ValueError:
        inside = None
    signed_ignores = _signed_ignore_paths(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key.pub"
        key_file.write_bytes(public_key_pem)
        hashing = model_signing.hashing.Config().set_ignored_paths(  # type: ignore[no-untyped-call]  # untyped upstream
            paths=[*signed_ignores, *([str(inside)] if inside is not None else [])]
        )
        try:
            (
                model_signing.verifying.Config()  # type: ignore[no-untyped-call]  # untyped upstream
                .use_elliptic_key_verifier(public_key=key_file)
                .set_hashing_config(hashing)
                .verify(root, sig)
            )
        except Exception as exc:  # model-signing raises ValueError and library errors alike
            raise OmsError(f"{root} does not match its signature: {exc}", field="model") from exc
    ignores = [
        p for p in signed_ignores if p not in {".git", ".gitattributes", ".github", ".gitignore"}
    ]
    m = manifest(root, ignore_paths=ignores, signature=str(inside) if inside is not None else None)
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    subject = payload["subject"][0]["digest"]["sha256"]
    if m.digest != subject:
        raise OmsError(
            f"Studbook's digest {m.digest} differs from the signed {subject}", field="model"
        )
    return OmsCheck(m.digest, len(m.files), m.total_size, bundle)
