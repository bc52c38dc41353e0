"""DSSE signing: the spec's PAE vector, golden envelopes, refusals, and interop with
securesystemslib (the in-toto ecosystem's reference implementation) in both directions."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lineage import dsse
from lineage.errors import InvalidEnvelopeError, InvalidStatementError, UnverifiedSignatureError
from lineage.statements import (
    PAYLOAD_TYPE,
    parse_registration,
    registration_statement,
    sign_statement,
    verify_envelope,
)
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation

GOLDENS = Path(__file__).resolve().parent.parent / "goldens"
SEED = bytes(
    range(32)
)  # fixed key so that signed envelopes are reproducible (Ed25519 is deterministic)


def fixed_signer() -> dsse.Signer:
    return dsse.Signer(Ed25519PrivateKey.from_private_bytes(SEED))


def sample_registration() -> Registration:
    return Registration(
        ArtifactRef(ArtifactKind.MODEL, "acme/owl-student", "1", "ab" * 32),
        (
            ParentLink(Relation.FINE_TUNED_FROM, "cd" * 32),
            ParentLink(Relation.TRAINED_ON, "ef" * 32),
        ),
        {"framework": "transformers"},
    )


def test_pae_matches_the_dsse_spec_vector() -> None:
    # From the DSSE protocol specification (secure-systems-lab/dsse, protocol.md).
    assert (
        dsse.pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_keyid_is_sha256_of_raw_public_key() -> None:
    import hashlib

    signer = fixed_signer()
    raw = base64.b64decode(dsse.public_key_b64(signer.public_key))
    assert signer.keyid == hashlib.sha256(raw).hexdigest()


def test_golden_registration_envelope(update_goldens: bool) -> None:
    envelope = sign_statement(registration_statement(sample_registration()), fixed_signer())
    golden = GOLDENS / "registration_envelope.json"
    text = json.dumps(envelope.to_json(), indent=2, sort_keys=True) + "\n"
    if update_goldens:
        golden.write_text(text)
    assert golden.exists(), "golden missing: run pytest --update-goldens once and commit it"
    assert text == golden.read_text()
    # The golden still verifies and parses back to the same registration.
    parsed = dsse.Envelope.from_json(golden.read_text())
    verified = verify_envelope(
        parsed, dsse.Verifier({fixed_signer().keyid: fixed_signer().public_key})
    )
    assert parse_registration(verified.statement) == sample_registration()


def test_round_trip_and_tamper_detection() -> None:
    signer = fixed_signer()
    verifier = dsse.Verifier({signer.keyid: signer.public_key})
    env = sign_statement(registration_statement(sample_registration()), signer)
    assert verifier.verify(env, payload_type=PAYLOAD_TYPE) == signer.keyid
    tampered = dsse.Envelope(env.payload_type, env.payload.replace(b"owl", b"cat"), env.signatures)
    with pytest.raises(UnverifiedSignatureError):
        verifier.verify(tampered)
    retyped = dsse.Envelope("application/json", env.payload, env.signatures)
    with pytest.raises(UnverifiedSignatureError):
        verifier.verify(retyped)  # the type is signed too
    with pytest.raises(InvalidEnvelopeError):
        verifier.verify(retyped, payload_type=PAYLOAD_TYPE)


def test_unknown_key_is_unverified_not_an_internal_error() -> None:
    env = fixed_signer().sign(PAYLOAD_TYPE, b"{}")
    other = dsse.Signer(dsse.generate_private_key())
    with pytest.raises(UnverifiedSignatureError) as info:
        dsse.Verifier({other.keyid: other.public_key}).verify(env)
    assert "trusted key" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", "envelope"),
        ("[]", "envelope"),
        ('{"payload": "e30=", "signatures": [{"sig": "AA=="}]}', "payloadType"),
        ('{"payloadType": "x", "signatures": [{"sig": "AA=="}]}', "payload"),
        ('{"payloadType": "x", "payload": "***", "signatures": [{"sig": "AA=="}]}', "payload"),
        ('{"payloadType": "x", "payload": "e30=", "signatures": []}', "signatures"),
        ('{"payloadType": "x", "payload": "e30=", "signatures": ["a"]}', "signatures[0]"),
        (
            '{"payloadType": "x", "payload": "e30=", "signatures": [{"sig": 5}]}',
            "signatures[0].sig",
        ),
    ],
)
def test_malformed_envelopes_name_the_field(raw: str, field: str) -> None:
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.Envelope.from_json(raw)
    assert info.value.field == field


def test_url_safe_base64_is_accepted() -> None:
    env = fixed_signer().sign(PAYLOAD_TYPE, b"\xfb\xff" * 10)
    data = env.to_json()
    data["payload"] = base64.urlsafe_b64encode(env.payload).decode().rstrip("=")
    assert dsse.Envelope.from_json(data).payload == env.payload


def test_statement_shape_is_checked_after_signature() -> None:
    signer = fixed_signer()
    verifier = dsse.Verifier({signer.keyid: signer.public_key})
    with pytest.raises(InvalidStatementError):
        verify_envelope(signer.sign(PAYLOAD_TYPE, b'{"_type": "wrong"}'), verifier)


# ----------------------------------------------------------------------------- securesystemslib


def _sslib_key(signer: dsse.Signer):  # type: ignore[no-untyped-def]
    from securesystemslib.signer import SSlibKey

    raw = base64.b64decode(dsse.public_key_b64(signer.public_key))
    return SSlibKey(signer.keyid, "ed25519", "ed25519", {"public": raw.hex()})


def test_securesystemslib_verifies_studbook_envelopes_unchanged() -> None:
    from securesystemslib.dsse import Envelope as SslibEnvelope

    signer = fixed_signer()
    ours = sign_statement(registration_statement(sample_registration()), signer)
    theirs = SslibEnvelope.from_dict(json.loads(ours.to_bytes()))
    verified = theirs.verify([_sslib_key(signer)], 1)
    assert list(verified) == [signer.keyid]
    assert theirs.payload == ours.payload and theirs.payload_type == PAYLOAD_TYPE


def test_studbook_accepts_envelopes_signed_by_securesystemslib() -> None:
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import CryptoSigner

    key = Ed25519PrivateKey.from_private_bytes(SEED)
    ours = fixed_signer()
    sslib_signer = CryptoSigner(key, _sslib_key(ours))
    payload = json.dumps(registration_statement(sample_registration())).encode()
    env = SslibEnvelope(payload, PAYLOAD_TYPE, {})
    env.sign(sslib_signer)
    parsed = dsse.Envelope.from_json(json.dumps(env.to_dict()))
    verified = verify_envelope(parsed, dsse.Verifier({ours.keyid: ours.public_key}))
    assert parse_registration(verified.statement).artifact.name == "acme/owl-student"


# ----------------------------------------------------------------------------- envelopes as signed


def test_unknown_top_level_fields_are_refused_by_name() -> None:
    data = fixed_signer().sign(PAYLOAD_TYPE, b"{}").to_json()
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.Envelope.from_json({**data, "comment": "not signed"})
    assert info.value.field == "comment" and "not a DSSE field" in info.value.message


def test_unknown_signature_fields_are_refused_by_name() -> None:
    data = fixed_signer().sign(PAYLOAD_TYPE, b"{}").to_json()
    data["signatures"][0]["cert"] = "x"
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.Envelope.from_json(data)
    assert info.value.field == "signatures[0].cert"


def test_too_many_signatures_are_refused() -> None:
    sig = fixed_signer().sign(PAYLOAD_TYPE, b"{}").to_json()["signatures"][0]
    data = {"payloadType": PAYLOAD_TYPE, "payload": "e30=", "signatures": [sig] * 17}
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.Envelope.from_json(data)
    assert info.value.field == "signatures" and "16" in info.value.message


def _cosigned(*envelopes: dsse.Envelope) -> dsse.Envelope:
    first = envelopes[0]
    return dsse.Envelope(
        first.payload_type, first.payload, tuple(s for e in envelopes for s in e.signatures)
    )


def test_every_signature_must_verify() -> None:
    """A valid signature does not carry an invalid one: a fake co-signer is refused."""
    signer, stranger = fixed_signer(), dsse.Signer(dsse.generate_private_key())
    verifier = dsse.Verifier({signer.keyid: signer.public_key})
    env = signer.sign(PAYLOAD_TYPE, b"{}")
    fake = dsse.Envelope(
        env.payload_type, env.payload, (*env.signatures, dsse.Signature(stranger.keyid, b"x" * 64))
    )
    with pytest.raises(UnverifiedSignatureError) as info:
        verifier.verify(fake)
    assert info.value.index == 1 and info.value.keyid == stranger.keyid
    # a real signature by a key the verifier does not trust is refused as well
    with pytest.raises(UnverifiedSignatureError) as info:
        verifier.verify(_cosigned(env, stranger.sign(PAYLOAD_TYPE, b"{}")))
    assert info.value.index == 1


def test_two_trusted_keys_cosign() -> None:
    a, b = fixed_signer(), dsse.Signer(dsse.generate_private_key())
    verifier = dsse.Verifier({a.keyid: a.public_key, b.keyid: b.public_key})
    env = _cosigned(a.sign(PAYLOAD_TYPE, b"{}"), b.sign(PAYLOAD_TYPE, b"{}"))
    assert verifier.verify_all(env) == (a.keyid, b.keyid)
    assert verifier.verify(env) == a.keyid


def test_a_key_signs_once() -> None:
    """Duplicates are refused, not collapsed: the stored envelope is the one that was checked."""
    signer = fixed_signer()
    verifier = dsse.Verifier({signer.keyid: signer.public_key})
    env = signer.sign(PAYLOAD_TYPE, b"{}")
    with pytest.raises(InvalidEnvelopeError) as info:
        verifier.verify(_cosigned(env, env))
    assert info.value.field == "signatures[1]" and "second signature" in info.value.message
    # the same key under an empty keyid is still the same key
    anonymous = dsse.Envelope(
        env.payload_type, env.payload, (dsse.Signature("", env.signatures[0].sig),)
    )
    with pytest.raises(InvalidEnvelopeError):
        verifier.verify(_cosigned(env, anonymous))


def test_the_keyid_is_only_a_hint() -> None:
    a, b = fixed_signer(), dsse.Signer(dsse.generate_private_key())
    verifier = dsse.Verifier({a.keyid: a.public_key, b.keyid: b.public_key})
    sig = a.sign(PAYLOAD_TYPE, b"{}").signatures[0].sig
    for hint in ("", "securesystemslib-default", b.keyid):
        env = dsse.Envelope(PAYLOAD_TYPE, b"{}", (dsse.Signature(hint, sig),))
        assert verifier.verify(env) == a.keyid


def test_client_text_in_refusals_is_cut_short() -> None:
    data = fixed_signer().sign(PAYLOAD_TYPE, b"{}").to_json()
    with pytest.raises(InvalidEnvelopeError) as info:
        dsse.Envelope.from_json({**data, "x" * 10_000: 1})
    assert info.value.field is not None and len(info.value.field) <= 101
    assert len(info.value.message) < 400
