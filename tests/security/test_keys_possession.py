"""Keys are registered only with proof of possession (both databases).

The attack: a principal registers a public key it does not hold (someone else's, copied from a
listing or a model-signing bundle); the real holder then gets 409 and cannot use their own key.
Each refusal below is a 400 naming `proof` (or the field at fault), and nothing is written.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import dsse
from registry.auth import Caller, Role
from registry.errors import ConflictError
from registry.keys.service import register_key
from registry.principals.service import create_principal, get_principal
from tests.support import (
    Actor,
    key_registration,
    make_actor,
    registration_envelope,
    row_counts,
)

Client = TestClient[Any]


def _refused(
    client: Client, engine: Engine, actor: Actor, body: Any, status: int, field: str, needle: str
) -> dict[str, Any]:
    before = row_counts(engine)
    r = client.post("/v1/keys", json=body, headers=actor.headers)
    assert r.status_code == status, r.text
    assert r.json().get("field") == field, r.text
    assert needle.lower() in r.json()["detail"].lower(), r.text
    assert row_counts(engine) == before, "a refused key registration wrote something"
    return r.json()


def _new() -> dsse.Signer:
    return dsse.Signer(dsse.generate_private_key())


def test_a_registration_without_proof_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    body = {"public_key": _new().public_key_text}
    _refused(client, engine, registrar, body, 400, "proof", "proof")
    for proof in (None, "a string", [1, 2], {}):
        _refused(client, engine, registrar, {**body, "proof": proof}, 400, "proof", "proof")


def test_a_proof_signed_by_another_key_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    victim, squatter = _new(), registrar.signer
    proof = squatter.sign(
        dsse.KEY_POSSESSION_PAYLOAD_TYPE,
        dsse.key_possession_payload(victim.keyid, registrar.name),
    ).to_json()
    proof["signatures"][0]["keyid"] = victim.keyid
    body = {"public_key": victim.public_key_text, "proof": proof}
    _refused(client, engine, registrar, body, 400, "proof", "does not verify")
    # and a valid proof for some other key, sent with the victim's public key
    other = key_registration(_new(), registrar.name)
    body = {"public_key": victim.public_key_text, "proof": other["proof"]}
    _refused(client, engine, registrar, body, 400, "proof", "names key")


def test_a_proof_naming_another_principal_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    signer = _new()
    body = key_registration(signer, "somebody-else")
    _refused(client, engine, registrar, body, 400, "proof", "principal 'somebody-else'")


def test_a_proof_of_another_payload_type_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    signer = _new()
    payload = dsse.key_possession_payload(signer.keyid, registrar.name)
    proof = signer.sign("application/vnd.in-toto+json", payload).to_json()
    body = {"public_key": signer.public_key_text, "proof": proof}
    _refused(client, engine, registrar, body, 400, "proof", "payloadType")
    # nor does an attestation signed by the key stand in for a proof
    env = registration_envelope(signer, "model", "acme/base@1")
    body = {"public_key": signer.public_key_text, "proof": env}
    _refused(client, engine, registrar, body, 400, "proof", "payloadType")


def test_a_proof_with_extra_fields_is_refused(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    signer = _new()
    body = key_registration(signer, registrar.name)
    body["proof"]["note"] = "unsigned"
    _refused(client, engine, registrar, body, 400, "proof", "'note'")
    body = key_registration(signer, registrar.name)
    body["proof"]["signatures"] = body["proof"]["signatures"] * 2
    _refused(client, engine, registrar, body, 400, "proof", "exactly one")


def test_squatting_is_impossible(client: Client, engine: Engine) -> None:
    """Mallory knows Alice's public key but not her private key: every registration attempt is
    refused, and Alice registers her key afterwards without a 409."""
    alice = make_actor(client, engine, "alice", Role.REGISTRAR)
    mallory = make_actor(client, engine, "mallory", Role.REGISTRAR)
    alices_key = _new()
    attempts: list[dict[str, Any]] = [
        {"public_key": alices_key.public_key_text},
        # a proof by mallory's key, naming alice's key
        {
            "public_key": alices_key.public_key_text,
            "proof": mallory.signer.sign(
                dsse.KEY_POSSESSION_PAYLOAD_TYPE,
                dsse.key_possession_payload(alices_key.keyid, "mallory"),
            ).to_json(),
        },
        # alice's own proof, observed in transit, replayed by mallory
        key_registration(alices_key, "alice"),
    ]
    for body in attempts:
        before = row_counts(engine)
        r = client.post("/v1/keys", json=body, headers=mallory.headers)
        assert r.status_code == 400 and r.json()["field"] == "proof", r.text
        assert row_counts(engine) == before
    r = client.post("/v1/keys", json=key_registration(alices_key, "alice"), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["principal"] == "alice" and r.json()["keyid"] == alices_key.keyid
    # the proof is kept: anyone can check that the holder, not the registry, bound key and name
    listed = client.get("/v1/keys", params={"principal": "alice"}, headers=mallory.headers).json()
    (entry,) = [k for k in listed["data"] if k["keyid"] == alices_key.keyid]
    dsse.verify_key_possession(entry["proof"], dsse.load_public_key(entry["public_key"]), "alice")
    # the key is alice's: she can sign with it
    env = registration_envelope(alices_key, "model", "alice/m@1")
    assert client.post("/v1/attestations", json=env, headers=alice.headers).status_code == 201
    # a second registration by the holder is the only 409
    again = client.post(
        "/v1/keys", json=key_registration(alices_key, "alice"), headers=alice.headers
    )
    assert again.status_code == 409


def test_admins_register_keys_for_the_principal_the_proof_names(
    client: Client, engine: Engine, admin_token: str
) -> None:
    admin = {"Authorization": f"Bearer {admin_token}"}
    bob = make_actor(client, engine, "bob", Role.REGISTRAR)
    key = _new()
    # a proof made for the admin does not register the key for bob
    body = {**key_registration(key, "admin"), "principal": "bob"}
    before = row_counts(engine)
    r = client.post("/v1/keys", json=body, headers=admin)
    assert r.status_code == 400 and r.json()["field"] == "proof", r.text
    assert row_counts(engine) == before
    r = client.post(
        "/v1/keys", json=key_registration(key, "bob", for_principal=True), headers=admin
    )
    assert r.status_code == 201 and r.json()["principal"] == "bob", r.text
    env = registration_envelope(key, "model", "bob/m@1")
    assert client.post("/v1/attestations", json=env, headers=bob.headers).status_code == 201
    # unknown principal: 404, nothing written
    ghost = _new()
    before = row_counts(engine)
    r = client.post(
        "/v1/keys", json=key_registration(ghost, "ghost", for_principal=True), headers=admin
    )
    assert r.status_code == 404 and row_counts(engine) == before


def test_only_admins_register_keys_for_others_even_with_a_valid_proof(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    make_actor(client, engine, "carol", Role.REGISTRAR)
    body = key_registration(_new(), "carol", for_principal=True)
    _refused(client, engine, registrar, body, 403, "principal", "admins")


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ecdsa-p384"])
def test_ecdsa_keys_register_with_proof_and_sign_envelopes(
    client: Client, engine: Engine, registrar: Actor, algorithm: str
) -> None:
    signer = dsse.Signer(dsse.generate_private_key(algorithm))
    r = client.post(
        "/v1/keys", json=key_registration(signer, registrar.name), headers=registrar.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["keyid"] == signer.keyid and r.json()["algorithm"] == algorithm
    assert r.json()["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    listed = client.get("/v1/keys", params={"principal": registrar.name}, headers=registrar.headers)
    assert {k["algorithm"] for k in listed.json()["data"]} == {"ed25519", algorithm}
    env = registration_envelope(signer, "model", f"acme/{algorithm}@1")
    r = client.post("/v1/attestations", json=env, headers=registrar.headers)
    assert r.status_code == 201 and r.json()["signer_keyid"] == signer.keyid, r.text
    # a listed key verifies the stored envelope offline
    stored = client.get(f"/v1/attestations/{r.json()['attestation_id']}", headers=registrar.headers)
    keys = {k["keyid"]: dsse.load_public_key(k["public_key"]) for k in listed.json()["data"]}
    dsse.Verifier(keys).verify(dsse.Envelope.from_json(stored.json()["envelope"]))
    # a P-256 proof made with a P-384 key's id, or any mismatch, is refused like Ed25519's
    wrong = {**key_registration(signer, registrar.name), "public_key": _new().public_key_text}
    _refused(client, engine, registrar, wrong, 400, "proof", "names key")


def test_keys_on_other_curves_are_refused(client: Client, engine: Engine, registrar: Actor) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP521R1())
    body = {"public_key": dsse.public_key_pem(key.public_key()), "proof": {}}
    _refused(client, engine, registrar, body, 400, "public_key", "P-256 or P-384")


@pytest.mark.parametrize(
    "value",
    [
        "-----BEGIN PUBLIC KEY-----\n" + "A" * 300 + "\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\né" + "A" * 60 + "\n-----END PUBLIC KEY-----\n",
        "A" * 401,
    ],
)
def test_odd_public_keys_are_refused(
    client: Client, engine: Engine, registrar: Actor, value: str
) -> None:
    body = {"public_key": value, "proof": key_registration(_new(), registrar.name)["proof"]}
    _refused(client, engine, registrar, body, 400, "public_key", "public_key")


def _nested(depth: int) -> Any:
    value: Any = "e30="
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "proof",
    [
        {"payloadType": dsse.KEY_POSSESSION_PAYLOAD_TYPE, "payload": _nested(40), "signatures": []},
        {"payloadType": 7, "payload": "e30=", "signatures": [{"sig": "AA=="}]},
        {"payloadType": "x", "payload": "e30=", "signatures": [{"sig": "AA=="}] * 17},
        {"payloadType": "x", "payload": "e30=", "signatures": [{"keyid": ["k"], "sig": "AA=="}]},
        {
            "payloadType": "x",
            "payload": "\u00e9\u00e9\u00e9\u00e9",
            "signatures": [{"sig": "AA=="}],
        },
    ],
)
def test_malformed_proofs_are_400_naming_proof(
    client: Client, engine: Engine, registrar: Actor, proof: dict[str, Any]
) -> None:
    body = {"public_key": _new().public_key_text, "proof": proof}
    _refused(client, engine, registrar, body, 400, "proof", "proof")


def _race(engine: Engine, caller: Caller, signer: dsse.Signer) -> list[str]:
    """Two registrations of `signer`'s key, released together; what each one got."""
    proof = dsse.key_possession_proof(signer, caller.name).to_json()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                register_key(session, caller, signer.public_key_text, None, proof)
                outcomes.append("created")
            except ConflictError:
                outcomes.append("conflict")
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_registrations_of_one_key_give_one_201_and_one_409(engine: Engine) -> None:
    """Both requests read "not registered" unless the database serialises them; the loser must
    get the same 409 as the sequential path, never a 500 (run on both databases)."""
    from tests.integration.conftest import _truncate

    _truncate(engine)
    try:
        with Session(engine) as session:
            create_principal(session, "racer", Role.REGISTRAR)
        with Session(engine) as session:
            pid = get_principal(session, "racer").id
        caller = Caller(pid, "racer", Role.REGISTRAR)  # type: ignore[arg-type]
        for _ in range(5):
            assert sorted(_race(engine, caller, _new())) == ["conflict", "created"]
    finally:
        _truncate(engine)


def test_the_eval_workers_own_key_is_registered_with_its_proof(
    client: Client, engine: Engine, settings: Any
) -> None:
    """The worker writes its key row itself (no HTTP), through the same proof check."""
    from registry.evals.worker import ensure_identity
    from registry.models import SigningKey

    identity = ensure_identity(engine, settings)
    with Session(engine) as session:
        row = session.get(SigningKey, identity.signer.keyid)
        assert row is not None and row.proof is not None
        dsse.verify_key_possession(
            row.proof, dsse.load_public_key(row.public_key), identity.caller.name
        )
