"""ECDSA P-256 / P-384 keys for Studbook's envelopes: key ids, PEM forms, signatures as
securesystemslib makes and checks them (both directions), and the curves that are refused."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lineage import dsse
from lineage.errors import InvalidEnvelopeError, UnverifiedSignatureError, VerificationError
from lineage.statements import PAYLOAD_TYPE

ECDSA = [dsse.KeyAlgorithm.ECDSA_P256, dsse.KeyAlgorithm.ECDSA_P384]
HASHES = {dsse.KeyAlgorithm.ECDSA_P256: hashes.SHA256, dsse.KeyAlgorithm.ECDSA_P384: hashes.SHA384}
SCHEMES = {
    dsse.KeyAlgorithm.ECDSA_P256: "ecdsa-sha2-nistp256",
    dsse.KeyAlgorithm.ECDSA_P384: "ecdsa-sha2-nistp384",
}


@pytest.mark.parametrize("algorithm", ECDSA)
def test_keyid_is_sha256_of_the_der_spki(algorithm: dsse.KeyAlgorithm) -> None:
    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    der = signer.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.keyid == hashlib.sha256(der).hexdigest()
    assert signer.algorithm is algorithm


@pytest.mark.parametrize("algorithm", ECDSA)
def test_signatures_are_der_ecdsa_with_the_curves_hash(algorithm: dsse.KeyAlgorithm) -> None:
    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    env = signer.sign(PAYLOAD_TYPE, b'{"hello": "world"}')
    # checked here with cryptography directly, not through our verifier
    pub = signer.public_key
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(
        env.signatures[0].sig, dsse.pae(PAYLOAD_TYPE, env.payload), ec.ECDSA(HASHES[algorithm]())
    )
    assert dsse.Verifier({signer.keyid: pub}).verify(env, payload_type=PAYLOAD_TYPE) == signer.keyid


@pytest.mark.parametrize("algorithm", ECDSA)
def test_tampering_is_detected(algorithm: dsse.KeyAlgorithm) -> None:
    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    env = signer.sign(PAYLOAD_TYPE, b'{"name": "owl"}')
    verifier = dsse.Verifier({signer.keyid: signer.public_key})
    with pytest.raises(UnverifiedSignatureError):
        verifier.verify(dsse.Envelope(env.payload_type, b'{"name": "cat"}', env.signatures))
    garbage = (dsse.Signature(signer.keyid, b"\x30\x02\x00\x00"),)
    with pytest.raises(UnverifiedSignatureError):
        verifier.verify(dsse.Envelope(env.payload_type, env.payload, garbage))


@pytest.mark.parametrize("algorithm", list(dsse.KeyAlgorithm))
def test_pem_round_trips(algorithm: dsse.KeyAlgorithm) -> None:
    key = dsse.generate_private_key(algorithm)
    loaded = dsse.load_private_key(dsse.private_key_pem(key))
    assert dsse.keyid(loaded.public_key()) == dsse.keyid(key.public_key())
    text = dsse.public_key_text(key.public_key())
    assert dsse.keyid(dsse.load_public_key(text)) == dsse.keyid(key.public_key())
    pem = dsse.public_key_pem(key.public_key())
    assert dsse.keyid(dsse.load_public_key(pem)) == dsse.keyid(key.public_key())
    if algorithm is dsse.KeyAlgorithm.ED25519:
        assert len(base64.b64decode(text)) == 32  # the short form Ed25519 keys always had
    else:
        assert text.startswith("-----BEGIN PUBLIC KEY-----") and len(text) <= 400


def test_sec1_ecdsa_private_keys_load() -> None:
    """`openssl ecparam -genkey` writes SEC1 ("EC PRIVATE KEY"), not PKCS#8."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert dsse.Signer(dsse.load_private_key(pem)).algorithm is dsse.KeyAlgorithm.ECDSA_P256


@pytest.mark.parametrize("curve", [ec.SECP521R1(), ec.SECP256K1(), ec.SECP224R1()])
def test_other_curves_are_refused(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.load_public_key(dsse.public_key_pem(key.public_key()))
    assert info.value.field == "public_key" and "P-256 or P-384" in info.value.message
    with pytest.raises(VerificationError):
        dsse.load_private_key(dsse.private_key_pem(key))
    with pytest.raises(VerificationError):
        dsse.Signer(key)


def test_other_key_types_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.load_public_key(dsse.public_key_pem(rsa_key.public_key()))  # type: ignore[arg-type]
    assert info.value.field == "public_key"
    with pytest.raises(InvalidEnvelopeError):
        dsse.load_public_key("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")


def test_unknown_algorithm_names_are_refused() -> None:
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.generate_private_key("rsa-2048")
    assert info.value.field == "algorithm" and "ecdsa-p384" in info.value.message


def test_an_ecdsa_and_an_ed25519_key_cosign() -> None:
    ed, p384 = (
        dsse.Signer(Ed25519PrivateKey.generate()),
        dsse.Signer(dsse.generate_private_key("ecdsa-p384")),
    )
    one = ed.sign(PAYLOAD_TYPE, b"{}")
    both = dsse.Envelope(
        one.payload_type, one.payload, one.signatures + p384.sign(PAYLOAD_TYPE, b"{}").signatures
    )
    verifier = dsse.Verifier({ed.keyid: ed.public_key, p384.keyid: p384.public_key})
    assert verifier.verify_all(both) == (ed.keyid, p384.keyid)


# ----------------------------------------------------------------------------- securesystemslib


@pytest.mark.parametrize("algorithm", ECDSA)
def test_securesystemslib_verifies_our_ecdsa_envelopes(algorithm: dsse.KeyAlgorithm) -> None:
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import SSlibKey

    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    ours = signer.sign(PAYLOAD_TYPE, b'{"_type": "x"}')
    key = SSlibKey.from_crypto(signer.public_key, keyid=signer.keyid)
    assert key.scheme == SCHEMES[algorithm]
    theirs = SslibEnvelope.from_dict(json.loads(ours.to_bytes()))
    assert list(theirs.verify([key], 1)) == [signer.keyid]


@pytest.mark.parametrize("algorithm", list(dsse.KeyAlgorithm))
def test_we_verify_securesystemslib_envelopes_with_its_default_keyid(
    algorithm: dsse.KeyAlgorithm,
) -> None:
    """securesystemslib names keys by a hash of its own key dict; the keyid is only a hint, so
    the envelope verifies under the registered key all the same."""
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import CryptoSigner

    private = dsse.generate_private_key(algorithm)
    sslib_signer = CryptoSigner(private)  # default keyid and scheme
    env = SslibEnvelope(b'{"_type": "x"}', PAYLOAD_TYPE, {})
    env.sign(sslib_signer)
    data = env.to_dict()
    ours = dsse.keyid(private.public_key())
    assert data["signatures"][0]["keyid"] != ours
    parsed = dsse.Envelope.from_json(json.dumps(data))
    assert (
        dsse.Verifier({ours: private.public_key()}).verify(parsed, payload_type=PAYLOAD_TYPE)
        == ours
    )
