"""OpenSSF model-signing intake through the API, on SQLite and PostgreSQL.

A model folder is signed with model-signing's own ECDSA key signer (a key generated in the
test), checked locally with model-signing's verifier (`lineage.oms`), and imported: the bundle
verifies against the principal's registered key, the model is registered with that digest, and
the bundle is kept as evidence. A tampered file, a bundle signed by an unregistered key, another
principal's key, a doctored manifest and a keyless bundle are refused, with nothing written.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar.testing import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import dsse
from lineage.digests import artifact_digest
from lineage.oms import OmsError, verify_model
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, Registration
from registry.auth import Role
from registry.principals.service import create_principal
from tests.support import Actor, key_registration, row_counts

model_signing = pytest.importorskip("model_signing")

Client = TestClient[Any]
CURVES = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}


def ec_actor(client: Client, engine: Engine, name: str, curve: str) -> tuple[Actor, Any]:
    """A registrar whose one key is an ECDSA key (PEM-registered with proof of possession)."""
    with Session(engine) as session:
        _, token = create_principal(session, name, Role.REGISTRAR)
    private = ec.generate_private_key(CURVES[curve])
    signer = dsse.Signer(private)
    r = client.post(
        "/v1/keys",
        json=key_registration(signer, name),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return Actor(name, token, signer), private


def pem(private: Any) -> tuple[bytes, bytes]:
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def make_model(root: Path) -> Path:
    model = root / "owl-7b"
    (model / "tokenizer").mkdir(parents=True)
    (model / "tokenizer" / "vocab.txt").write_text("owl\nhoot\n")
    (model / "tokenizer.json").write_text('{"v": 1}')
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (model / "sub").mkdir()
    (model / "sub" / ".gitignore").write_text("*.tmp")  # content below the root
    return model


def sign_model(model: Path, private: Any, tmp: Path) -> Path:
    key_file = tmp / f"key-{id(private)}.pem"
    key_file.write_bytes(pem(private)[0])
    sig = model / "model.sig"
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=key_file)
        .set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"]))
        .sign(model, sig)
    )
    return sig


def registration(actor: Actor, digest: str, label: str = "acme/owl-7b@1") -> dict[str, Any]:
    name, _, version = label.rpartition("@")
    reg = Registration(ArtifactRef(ArtifactKind.MODEL, name, version, digest), (), {"files": 4})
    return sign_statement(registration_statement(reg), actor.signer).to_json()


@pytest.mark.parametrize("curve", ["p256", "p384"])
def test_signed_model_imports_and_verifies(
    client: Client, engine: Engine, tmp_path: Path, curve: str
) -> None:
    actor, private = ec_actor(client, engine, "signer", curve)
    model = make_model(tmp_path)
    sig = sign_model(model, private, tmp_path)
    check = verify_model(model, sig, pem(private)[1])  # model-signing's verifier, client side
    assert check.digest == artifact_digest(model)  # model.sig inside is left out
    body = {"bundle": check.bundle, "registration": registration(actor, check.digest)}
    r = client.post("/v1/imports/oms", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["artifact"]["digest"] == check.digest
    assert answer["artifact"]["ref"] == "acme/owl-7b@1"
    assert answer["signer_keyid"] == actor.signer.keyid and answer["files"] == 4
    # The evidence is retrievable: per artifact, and by id.
    kept = client.get("/v1/artifacts/acme/owl-7b@1/signatures", headers=actor.headers).json()
    assert kept["count"] == 1 and kept["data"][0]["bundle"] == check.bundle
    assert kept["data"][0]["principal"] == "signer"
    one = client.get(f"/v1/imports/oms/{answer['signature_id']}", headers=actor.headers).json()
    assert one["artifact_digest"] == check.digest
    # The registration went through the ordinary ingest: signed, logged.
    att = client.get(f"/v1/attestations/{answer['attestation_id']}", headers=actor.headers)
    assert att.status_code == 200 and att.json()["signer_keyid"] == actor.signer.keyid
    # The same bundle again: nothing new; a bundle alone for a registered artifact works too.
    again = client.post("/v1/imports/oms", json=body, headers=actor.headers)
    assert again.status_code == 200 and again.json()["created"] is False
    alone = client.post("/v1/imports/oms", json={"bundle": check.bundle}, headers=actor.headers)
    assert alone.status_code == 200
    assert (
        client.get("/v1/artifacts/acme/owl-7b@1/signatures", headers=actor.headers).json()["count"]
        == 1
    )


def test_tampered_file_is_refused(client: Client, engine: Engine, tmp_path: Path) -> None:
    actor, private = ec_actor(client, engine, "signer", "p256")
    model = make_model(tmp_path)
    sig = sign_model(model, private, tmp_path)
    bundle = json.loads(sig.read_text())
    (model / "tokenizer.json").write_text('{"v": 2}')
    with pytest.raises(OmsError, match="does not match"):
        verify_model(model, sig, pem(private)[1])
    (model / "extra.bin").write_bytes(b"x")
    with pytest.raises(OmsError):
        verify_model(model, sig, pem(private)[1])
    # A client that skips the local check still cannot register the changed folder with it.
    before = row_counts(engine)
    body = {"bundle": bundle, "registration": registration(actor, artifact_digest(model))}
    r = client.post("/v1/imports/oms", json=body, headers=actor.headers)
    assert r.status_code == 400 and r.json()["field"] == "registration"
    assert row_counts(engine) == before


def test_unregistered_and_foreign_keys_are_refused(
    client: Client, engine: Engine, tmp_path: Path
) -> None:
    actor, _ = ec_actor(client, engine, "signer", "p256")
    _other, other_key = ec_actor(client, engine, "other", "p256")
    stranger = ec.generate_private_key(ec.SECP256R1())  # never registered
    for key in (stranger, other_key):
        model = make_model(tmp_path / str(id(key)))
        sig = sign_model(model, key, tmp_path)
        check = verify_model(model, sig, pem(key)[1])  # a valid bundle, by its own key
        before = row_counts(engine)
        body = {"bundle": check.bundle, "registration": registration(actor, check.digest)}
        r = client.post("/v1/imports/oms", json=body, headers=actor.headers)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "bundle.dsseEnvelope.signatures"
        assert "register the public key" in r.json()["detail"]
        assert row_counts(engine) == before  # nothing written


def _doctor(bundle: dict[str, Any], edit: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(bundle))
    payload = json.loads(base64.b64decode(out["dsseEnvelope"]["payload"]))
    edit(payload)
    out["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return out


def test_doctored_bundles_are_refused_by_field(
    client: Client, engine: Engine, tmp_path: Path
) -> None:
    actor, private = ec_actor(client, engine, "signer", "p256")
    model = make_model(tmp_path)
    check = verify_model(model, sign_model(model, private, tmp_path), pem(private)[1])
    good = check.bundle

    def drop_file(p: dict[str, Any]) -> None:
        p["predicate"]["resources"].pop()

    def rename_subject(p: dict[str, Any]) -> None:
        p["subject"][0]["name"] = "evil"

    def shards(p: dict[str, Any]) -> None:
        p["predicate"]["serialization"]["method"] = "shards"

    keyless = json.loads(json.dumps(good))
    keyless["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    sig_flip = json.loads(json.dumps(good))
    raw = bytearray(base64.b64decode(sig_flip["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 1
    sig_flip["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    cases = [
        (_doctor(good, drop_file), "bundle.statement.subject[0].digest"),
        (_doctor(good, rename_subject), "bundle.dsseEnvelope.signatures"),
        (_doctor(good, shards), "bundle.statement.predicate.serialization"),
        (sig_flip, "bundle.dsseEnvelope.signatures"),
        (keyless, "bundle.verificationMaterial"),
        ({}, "bundle.mediaType"),
        ({**good, "dsseEnvelope": None}, "bundle.dsseEnvelope"),
        ({**good, "dsseEnvelope": {**good["dsseEnvelope"], "payload": "%%%"}}, None),
    ]
    before = row_counts(engine)
    for bundle, field in cases:
        body = {"bundle": bundle, "registration": registration(actor, check.digest)}
        r = client.post("/v1/imports/oms", json=body, headers=actor.headers)
        assert r.status_code == 400, (field, r.text)
        if field is not None:
            assert r.json()["field"] == field, r.json()
        if field == "bundle.verificationMaterial":
            assert "trust root" in r.json()["detail"]
    assert row_counts(engine) == before


def test_bad_requests_and_roles(
    client: Client, engine: Engine, tmp_path: Path, registrar: Actor
) -> None:
    actor, private = ec_actor(client, engine, "signer", "p256")
    model = make_model(tmp_path)
    check = verify_model(model, sign_model(model, private, tmp_path), pem(private)[1])
    before = row_counts(engine)
    # No registration and no artifact with that digest.
    r = client.post("/v1/imports/oms", json={"bundle": check.bundle}, headers=actor.headers)
    assert r.status_code == 422 and r.json()["field"] == "registration"
    # Not an object, missing, a registration that is not an envelope.
    for body in (
        [],
        {"bundle": "x"},
        {"registration": {}},
        {"bundle": check.bundle, "registration": {"a": 1}},
    ):
        r = client.post("/v1/imports/oms", json=body, headers=actor.headers)
        assert r.status_code == 400, r.text
    # A registration signed by someone else's key: the ingest refuses it, nothing kept.
    body = {"bundle": check.bundle, "registration": registration(registrar, check.digest)}
    r = client.post("/v1/imports/oms", json=body, headers=actor.headers)
    assert r.status_code == 403, r.text
    # Without a token; and for a missing id.
    assert client.post("/v1/imports/oms", json={"bundle": check.bundle}).status_code == 401
    assert client.get("/v1/imports/oms/999", headers=actor.headers).status_code == 404
    assert client.get(f"/v1/imports/oms/{2**70}", headers=actor.headers).status_code in {400, 404}
    assert row_counts(engine) == before


def test_concurrent_imports_of_one_bundle_keep_it_once(
    client: Client, engine: Engine, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    actor, private = ec_actor(client, engine, "signer", "p256")
    model = make_model(tmp_path)
    check = verify_model(model, sign_model(model, private, tmp_path), pem(private)[1])
    body = {"bundle": check.bundle, "registration": registration(actor, check.digest)}

    def post(_: int) -> int:
        return client.post("/v1/imports/oms", json=body, headers=actor.headers).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(post, range(6)))
    assert codes == [200] * 5 + [201], codes
    kept = client.get("/v1/artifacts/acme/owl-7b@1/signatures", headers=actor.headers).json()
    assert kept["count"] == 1


def test_ed25519_signed_bundle_verifies(
    client: Client, registrar: Actor, engine: Engine, tmp_path: Path
) -> None:
    """model-signing 1.1 signs with EC keys only; a bundle of the same format signed with an
    Ed25519 key (as a future or third-party signer would) is checked the same way."""
    from google.protobuf import json_format
    from model_signing import hashing as oms_hashing
    from model_signing._signing import signing as oms_signing

    model = make_model(tmp_path)
    manifest = oms_hashing.Config().hash(model)
    # The statement bytes exactly as model-signing's signers serialise them.
    payload = json_format.MessageToJson(oms_signing.Payload(manifest).statement.pb).encode()
    sig = registrar.signer.sign_raw(dsse.pae("application/vnd.in-toto+json", payload))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}],
        },
    }
    digest = artifact_digest(model)
    body = {"bundle": bundle, "registration": registration(registrar, digest)}
    r = client.post("/v1/imports/oms", json=body, headers=registrar.headers)
    assert r.status_code == 201, r.text
    assert r.json()["signer_keyid"] == registrar.signer.keyid


def test_huge_and_deep_bundles_are_refused(client: Client, engine: Engine) -> None:
    actor, _ = ec_actor(client, engine, "signer", "p256")
    before = row_counts(engine)
    deep = '{"bundle": ' + '{"a":' * 5000 + "{}" + "}" * 5000 + "}"
    huge = json.dumps({"bundle": {"mediaType": "x" * (4 << 20)}})
    headers = {**actor.headers, "Content-Type": "application/json"}
    for text, status in ((deep, 400), (huge, 413)):
        r = client.post("/v1/imports/oms", content=text.encode(), headers=headers)
        assert r.status_code == status, r.text[:200]
    assert row_counts(engine) == before


def test_keyless_bundles_against_an_operator_trust_root(
    client: Client, engine: Engine, tmp_path: Path, database_url: str
) -> None:
    """With a trust root configured, a keyless bundle is checked offline against it (sigstore);
    one that does not verify is refused by field, and an unreadable trust root is the server's
    fault, not the client's."""
    import sigstore

    from registry.app import create_app
    from registry.settings import Settings

    actor, private = ec_actor(client, engine, "signer", "p256")
    model = make_model(tmp_path)
    check = verify_model(model, sign_model(model, private, tmp_path), pem(private)[1])
    keyless = json.loads(json.dumps(check.bundle))
    keyless["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    store = Path(sigstore.__file__).parent / "_store"
    (trusted_root,) = store.glob("*tuf-repo-cdn.sigstore.dev/trusted_root.json")
    broken_root = tmp_path / "broken-root.json"
    broken_root.write_text("{}")
    before = row_counts(engine)
    for root, status, words in (
        (trusted_root, 400, "configured trust root"),
        (broken_root, 500, ""),
    ):
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, sigstore_trust_root=root
        )
        with TestClient(create_app(settings, engine=engine)) as other:
            body = {"bundle": keyless, "registration": registration(actor, check.digest)}
            r = other.post("/v1/imports/oms", json=body, headers=actor.headers)
            assert r.status_code == status, r.text
            assert words in r.json()["detail"]
    assert row_counts(engine) == before
