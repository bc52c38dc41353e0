"""What is stored is exactly what was signed (both databases).

The attack: an envelope with one valid signature, a fake second signature under another
principal's keyid and an extra top-level field was accepted, and both rode along into the stored
and logged record, so the attestation showed a co-signer who never signed. Now every signature
must verify under an active key of the submitter, only DSSE's fields are accepted, and the keyid
is treated as the unauthenticated hint DSSE says it is.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage import dsse
from registry.auth import Role
from tests.support import (
    Actor,
    key_registration,
    make_actor,
    registration_envelope,
    row_counts,
)

Client = TestClient[Any]


def _refused(
    client: Client, engine: Engine, actor: Actor, body: Any, status: int, needle: str
) -> dict[str, Any]:
    before = row_counts(engine)
    r = client.post("/v1/attestations", json=body, headers=actor.headers)
    assert r.status_code == status, r.text
    assert needle.lower() in r.text.lower(), r.text
    assert row_counts(engine) == before, "a refused envelope wrote something"
    return r.json()


def _accepted(client: Client, actor: Actor, body: Any) -> dict[str, Any]:
    r = client.post("/v1/attestations", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    stored = client.get(f"/v1/attestations/{r.json()['attestation_id']}", headers=actor.headers)
    assert stored.json()["envelope"] == body, "the stored envelope differs from what was signed"
    return r.json()


def _sig(signer: dsse.Signer, env: dict[str, Any]) -> dict[str, str]:
    """`signer`'s signature over the same payload, as a JSON signature entry."""
    payload = base64.b64decode(env["payload"])
    return signer.sign(env["payloadType"], payload).to_json()["signatures"][0]


def _add_key(client: Client, actor: Actor, algorithm: str = "ed25519") -> dsse.Signer:
    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    r = client.post("/v1/keys", json=key_registration(signer, actor.name), headers=actor.headers)
    assert r.status_code == 201, r.text
    return signer


def test_the_reported_envelope_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    """The exact shape from the report: valid signature, fake co-signature under another
    principal's keyid, extra top-level field."""
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    fake = {"keyid": other.signer.keyid, "sig": base64.b64encode(b"\x01" * 64).decode()}
    body = {**env, "signatures": [*env["signatures"], fake], "approvedBy": "other"}
    _refused(client, engine, registrar, body, 400, "approvedBy")
    # without the extra field, the fake co-signature alone is refused
    body = {**env, "signatures": [*env["signatures"], fake]}
    reply = _refused(client, engine, registrar, body, 403, "another principal")
    assert reply["field"] == "signatures" and "signatures[1]" in reply["detail"]


@pytest.mark.parametrize("field", ["comment", "signed_by", "payload_type", "_type"])
def test_unknown_top_level_fields_are_refused_by_name(
    client: Client, engine: Engine, registrar: Actor, field: str
) -> None:
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    reply = _refused(client, engine, registrar, {**env, field: "x"}, 400, field)
    assert reply["field"] == field


def test_unknown_signature_fields_are_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    env["signatures"][0]["cert"] = "-----BEGIN CERTIFICATE-----"
    reply = _refused(client, engine, registrar, env, 400, "cert")
    assert reply["field"] == "signatures[0].cert"


def test_a_real_cosignature_by_another_principal_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    """Even a genuine signature by someone else's key cannot be carried by this submitter."""
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    body = {**env, "signatures": [*env["signatures"], _sig(other.signer, env)]}
    _refused(client, engine, registrar, body, 403, "another principal")


@pytest.mark.parametrize("keyid", ["", "f" * 64, "not-a-keyid"])
def test_a_fake_cosignature_under_any_keyid_is_refused(
    client: Client, engine: Engine, registrar: Actor, keyid: str
) -> None:
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    fake = {"keyid": keyid, "sig": base64.b64encode(b"\x02" * 64).decode()}
    status, needle = (400, "does not verify") if not keyid else (403, "unknown key")
    _refused(
        client, engine, registrar, {**env, "signatures": [*env["signatures"], fake]}, status, needle
    )


def test_a_duplicate_signature_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    sig = env["signatures"][0]
    for second in (sig, {**sig, "keyid": ""}, {"sig": sig["sig"]}):
        body = {**env, "signatures": [sig, second]}
        reply = _refused(client, engine, registrar, body, 400, "second signature")
        assert reply["field"] == "signatures[1]"


def test_two_keys_of_the_submitter_cosign_and_the_record_is_exactly_what_was_signed(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    second = _add_key(client, registrar, "ecdsa-p256")
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    body = {**env, "signatures": [*env["signatures"], _sig(second, env)]}
    accepted = _accepted(client, registrar, body)
    assert accepted["signer_keyid"] == registrar.signer.keyid
    # the audit re-verifies every signature of the stored record as ingest did
    from registry.log.audit import audit

    report = audit(engine, rebuild=True)
    assert report.ok, [str(f) for f in report.findings]


def test_a_cosignature_by_the_submitters_revoked_key_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    old = _add_key(client, registrar)
    client.post(f"/v1/keys/{old.keyid}/revoke", headers=registrar.headers)
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    body = {**env, "signatures": [*env["signatures"], _sig(old, env)]}
    _refused(client, engine, registrar, body, 403, "revoked")


def test_a_revoked_key_is_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    client.post(f"/v1/keys/{registrar.signer.keyid}/revoke", headers=registrar.headers)
    env = registration_envelope(registrar.signer, "model", "acme/base@1")
    reply = _refused(client, engine, registrar, env, 403, "revoked")
    assert reply["field"] == "signatures"
    # with no keyid the key is not even named; the submitter has no active key left
    env["signatures"][0]["keyid"] = ""
    _refused(client, engine, registrar, env, 403, "no active signing key")


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256", "ecdsa-p384"])
def test_securesystemslib_envelopes_with_their_default_keyid_are_accepted(
    client: Client, engine: Engine, registrar: Actor, algorithm: str
) -> None:
    """securesystemslib names keys by a hash of its own key encoding, which is not Studbook's
    keyid: the keyid is a hint, so the envelope verifies under the registered key."""
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import CryptoSigner

    private = dsse.generate_private_key(algorithm)
    ours = dsse.Signer(private)
    r = client.post(
        "/v1/keys", json=key_registration(ours, registrar.name), headers=registrar.headers
    )
    assert r.status_code == 201, r.text
    template = registration_envelope(ours, "model", f"sslib/{algorithm}@1")
    sslib_env = SslibEnvelope(base64.b64decode(template["payload"]), template["payloadType"], {})
    sslib_env.sign(CryptoSigner(private))  # securesystemslib's default keyid and scheme
    body = json.loads(json.dumps(sslib_env.to_dict()))
    assert body["signatures"][0]["keyid"] != ours.keyid
    accepted = _accepted(client, registrar, body)
    assert accepted["signer_keyid"] == ours.keyid


def test_someone_elses_key_under_a_hint_of_ones_own_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    """The hint cannot launder a signature: naming one's own key does not make another
    principal's signature verify."""
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    env = registration_envelope(other.signer, "model", "acme/base@1")
    env["signatures"][0]["keyid"] = registrar.signer.keyid
    _refused(client, engine, registrar, env, 400, "does not verify")
