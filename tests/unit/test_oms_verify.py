"""The client-side check of a model-signing signed folder (`lineage.oms.verify_model`) against
model-signing's own signer: the signature inside or beside the folder, P-256 and P-384 keys,
tampered, extra and missing files, wrong keys and unreadable bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lineage.digests import artifact_digest
from lineage.oms import OmsError, verify_model

model_signing = pytest.importorskip("model_signing")


def keypair(tmp: Path, curve: Any) -> tuple[Path, bytes]:
    key = ec.generate_private_key(curve)
    path = tmp / f"key-{curve.name}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


def model(tmp: Path) -> Path:
    root = tmp / "m"
    (root / "tokenizer").mkdir(parents=True)
    (root / "tokenizer" / "v.txt").write_text("a")
    (root / "tokenizer.json").write_text("{}")
    (root / "w.bin").write_bytes(b"\x00" * 1000)
    return root


def sign(root: Path, key: Path, sig: Path) -> None:
    cfg = model_signing.signing.Config().use_elliptic_key_signer(private_key=key)
    if sig.parent == root:
        cfg.set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=[sig.name]))
    cfg.sign(root, sig)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
@pytest.mark.parametrize("inside", [True, False])
def test_signed_folder_verifies(tmp_path: Path, curve: Any, inside: bool) -> None:
    key, public = keypair(tmp_path, curve)
    root = model(tmp_path)
    sig = root / "model.sig" if inside else tmp_path / "elsewhere.sig"
    sign(root, key, sig)
    check = verify_model(root, sig, public)
    assert check.digest == artifact_digest(root) and check.files == 3
    assert check.bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_changes_and_wrong_keys_are_refused(tmp_path: Path) -> None:
    key, public = keypair(tmp_path, ec.SECP256R1())
    (tmp_path / "other").mkdir()
    _, other_public = keypair(tmp_path / "other", ec.SECP384R1())
    root = model(tmp_path)
    sign(root, key, root / "model.sig")
    with pytest.raises(OmsError):
        verify_model(root, None, other_public)
    with pytest.raises(OmsError, match="public key"):
        verify_model(root, None, None)
    (root / "extra").write_text("x")
    with pytest.raises(OmsError, match="does not match"):
        verify_model(root, None, public)
    (root / "extra").unlink()
    (root / "w.bin").unlink()
    with pytest.raises(OmsError, match="does not match"):
        verify_model(root, None, public)
    (root / "model.sig").write_text("not json")
    with pytest.raises(OmsError, match="cannot read"):
        verify_model(root, None, public)
