"""Proof of key possession (the contract `POST /v1/keys`, the CLI and the web app share): the
exact bytes signed, a golden proof, and every way a proof can be wrong."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lineage import dsse
from lineage.errors import InvalidEnvelopeError
from lineage.statements import canonical_json

GOLDENS = Path(__file__).resolve().parent.parent / "goldens"
SEED = bytes(range(32))


def fixed_signer() -> dsse.Signer:
    return dsse.Signer(Ed25519PrivateKey.from_private_bytes(SEED))


def refused(proof: object, key: dsse.PublicKey, principal: str) -> str:
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.verify_key_possession(proof, key, principal)
    assert info.value.field == "proof"
    return info.value.message


def test_payload_bytes_are_exactly_the_contract() -> None:
    kid = fixed_signer().keyid
    assert dsse.key_possession_payload(kid, "alice") == (
        b'{"_type":"https://studbook.dev/KeyPossession/v1","keyid":"'
        + kid.encode()
        + b'","principal":"alice"}'
    )
    # Non-ASCII names are raw UTF-8, not \u escapes, as canonical_json writes them.
    statement = {"_type": dsse.KEY_POSSESSION_TYPE, "keyid": kid, "principal": "zoë/ci"}
    assert dsse.key_possession_payload(kid, "zoë/ci") == canonical_json(statement)
    assert "zoë".encode() in dsse.key_possession_payload(kid, "zoë/ci")


def test_golden_proof(update_goldens: bool) -> None:
    proof = dsse.key_possession_proof(fixed_signer(), "alice")
    golden = GOLDENS / "key_possession_proof.json"
    text = json.dumps(proof.to_json(), indent=2, sort_keys=True) + "\n"
    if update_goldens:
        golden.write_text(text)
    assert golden.exists(), "golden missing: run pytest --update-goldens once and commit it"
    assert text == golden.read_text()
    data = json.loads(golden.read_text())
    assert data["payloadType"] == "application/vnd.studbook.key-possession+json"
    assert [s["keyid"] for s in data["signatures"]] == [fixed_signer().keyid]
    verified = dsse.verify_key_possession(data, fixed_signer().public_key, "alice")
    assert verified.payload == dsse.key_possession_payload(fixed_signer().keyid, "alice")


@pytest.mark.parametrize("algorithm", list(dsse.KeyAlgorithm))
def test_a_proof_verifies_for_every_algorithm(algorithm: dsse.KeyAlgorithm) -> None:
    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    proof = dsse.key_possession_proof(signer, "pipeline")
    assert dsse.verify_key_possession(proof.to_json(), signer.public_key, "pipeline") == proof
    # a proof parsed from its JSON text verifies too (the web app sends JSON)
    dsse.verify_key_possession(json.dumps(proof.to_json()), signer.public_key, "pipeline")


def test_a_proof_built_by_hand_verifies() -> None:
    """What the browser does with WebCrypto: the same bytes, signed over PAE, in standard base64."""
    key = Ed25519PrivateKey.generate()
    raw = base64.b64encode(
        key.public_key().public_bytes_raw()  # the 32 bytes WebCrypto exports as "raw"
    ).decode()
    kid = hashlib.sha256(base64.b64decode(raw)).hexdigest()
    payload = json.dumps(
        {
            "principal": "web-reviewer",
            "keyid": kid,
            "_type": "https://studbook.dev/KeyPossession/v1",
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    ptype = "application/vnd.studbook.key-possession+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(payload), payload)
    proof = {
        "payloadType": ptype,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": kid, "sig": base64.b64encode(key.sign(pae)).decode()}],
    }
    dsse.verify_key_possession(proof, dsse.load_public_key(raw), "web-reviewer")


def _resigned(signer: dsse.Signer, payload_type: str, payload: bytes) -> dict[str, Any]:
    return signer.sign(payload_type, payload).to_json()


def test_refusals_say_why() -> None:
    signer, other = fixed_signer(), dsse.Signer(dsse.generate_private_key())
    key, kid = signer.public_key, signer.keyid
    good = dsse.key_possession_proof(signer, "alice").to_json()
    ptype, payload = dsse.KEY_POSSESSION_PAYLOAD_TYPE, dsse.key_possession_payload(kid, "alice")

    assert "required" in refused(None, key, "alice")
    assert "not JSON" in refused("{", key, "alice")
    assert "'note'" in refused({**good, "note": "unsigned"}, key, "alice")
    # signed, but for another principal: a proof cannot be replayed for someone else
    assert "principal 'alice'" in refused(good, key, "mallory")
    # signed by the key, but naming another key
    other_kid = dsse.key_possession_payload(other.keyid, "alice")
    assert "names key" in refused(_resigned(signer, ptype, other_kid), key, "alice")
    # naming the key, but signed by another key (a squatter holding only the public key)
    forged = _resigned(other, ptype, payload)
    forged["signatures"][0]["keyid"] = kid
    assert "does not verify" in refused(forged, key, "alice")
    # the right signature, but under another keyid
    renamed = json.loads(json.dumps(good))
    renamed["signatures"][0]["keyid"] = other.keyid
    assert "keyid" in refused(renamed, key, "alice")
    # another payload type, even correctly signed: a proof is not an attestation
    assert "payloadType" in refused(
        _resigned(signer, "application/vnd.in-toto+json", payload), key, "alice"
    )
    # the same claims in other bytes (spaces): the contract is one byte string
    loose = json.dumps(json.loads(payload)).encode()
    assert "exactly" in refused(_resigned(signer, ptype, loose), key, "alice")
    extra = canonical_json({**json.loads(payload), "expires": "never"})
    assert "exactly" in refused(_resigned(signer, ptype, extra), key, "alice")
    assert "_type" in refused(_resigned(signer, ptype, b"[1]"), key, "alice")
    # one signature, no more
    two = {
        **good,
        "signatures": good["signatures"] + _resigned(other, ptype, payload)["signatures"],
    }
    assert "exactly one" in refused(two, key, "alice")
    # altered signature bytes
    bad = json.loads(json.dumps(good))
    sig = bytearray(base64.b64decode(bad["signatures"][0]["sig"]))
    sig[0] ^= 1
    bad["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    assert "does not verify" in refused(bad, key, "alice")


def test_a_proof_for_one_ecdsa_curve_does_not_pass_for_a_key_on_another() -> None:
    p256 = dsse.Signer(dsse.generate_private_key("ecdsa-p256"))
    p384 = dsse.Signer(dsse.generate_private_key("ecdsa-p384"))
    proof = dsse.key_possession_proof(p256, "alice")
    assert "names key" in refused(proof, p384.public_key, "alice")
