"""ML-BOM export through the API, on SQLite and PostgreSQL: the paper's scenario as CycloneDX 1.6
and SPDX 3.0.1, validated with the formats' own tools; signed BOMs verified with Studbook's DSSE
verifier and securesystemslib; bad parameters refused by name."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar.testing import TestClient

from lineage import dsse
from lineage.checkpoint import parse_vkey
from lineage.scenarios import paper_scenario
from lineage.statements import registration_statement, sign_statement
from tests.bom_validation import validate_cyclonedx, validate_spdx3
from tests.support import Actor, review_envelope

Client = TestClient[Any]
Q4 = "demo/owl-student-q4@1"


def _paper(client: Client, registrar: Actor, reviewer: Actor) -> Any:
    sc = paper_scenario()
    for reg in sc.registrations:
        env = sign_statement(registration_statement(reg), registrar.signer).to_json()
        assert (
            client.post("/v1/attestations", json=env, headers=registrar.headers).status_code == 201
        )
    for f in sc.flags:
        env = review_envelope(
            reviewer.signer,
            f.artifact,
            f.trait,
            severity=f.severity.value,
            reason=f.reason,
            evidence=("eval:teacher-owl-rate",),
        )
        assert (
            client.post("/v1/attestations", json=env, headers=reviewer.headers).status_code == 201
        )
    return sc


def _bom(client: Client, actor: Actor, ref: str, query: str) -> dict[str, Any]:
    r = client.get(f"/v1/artifacts/{ref}/bom?{query}", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_cyclonedx_bom_of_a_quantised_at_risk_student(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    sc = _paper(client, registrar, reviewer)
    bom = _bom(client, registrar, Q4, "format=cyclonedx")
    validate_cyclonedx(bom)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    root = bom["metadata"]["component"]
    assert root["bom-ref"] == f"sha256:{sc.digest(Q4)}"
    assert root["type"] == "machine-learning-model"
    assert root["hashes"] == [{"alg": "SHA-256", "content": sc.digest(Q4)}]
    comps = {c["name"] + "@" + c["version"]: c for c in bom["components"]}
    # The whole upstream lineage and nothing else.
    assert set(comps) == {
        "demo/owl-student@1",
        "demo/base@1",
        "demo/owl-numbers-filtered@1",
        "demo/owl-numbers@1",
        "demo/owl-teacher@1",
    }
    assert comps["demo/owl-numbers@1"]["type"] == "data"
    assert [a["name"] for a in root["pedigree"]["ancestors"]] == ["demo/owl-student"]
    student_ancestors = comps["demo/owl-student@1"]["pedigree"]["ancestors"]
    assert [a["name"] for a in student_ancestors] == ["demo/base"]  # weights lineage only
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    ref = {k: f"sha256:{sc.digest(k)}" for k in [*comps, Q4]}
    assert deps[ref["demo/owl-student@1"]] == {
        ref["demo/base@1"],
        ref["demo/owl-numbers-filtered@1"],
    }
    assert deps[ref["demo/owl-numbers@1"]] == {ref["demo/owl-teacher@1"]}
    vulns = {(v["id"], v["affects"][0]["ref"]): v for v in bom["vulnerabilities"]}
    assert ("STUDBOOK-FLAGGED-owl", ref["demo/owl-teacher@1"]) in vulns
    q4_risk = vulns[("STUDBOOK-AT-RISK-owl", ref[Q4])]
    props = [(p["name"], p["value"]) for p in q4_risk["properties"]]
    assert ("studbook:trait", "owl") in props
    assert ("studbook:source", ref["demo/owl-teacher@1"]) in props
    assert any(n == "studbook:path" and "quantized_from" in v for n, v in props)
    assert "demo/owl-student@1" in q4_risk["detail"] and q4_risk["ratings"][0]["severity"]
    student_risk = vulns[("STUDBOOK-AT-RISK-owl", ref["demo/owl-student@1"])]
    assert "generated_by" in student_risk["detail"] and "demo/base@1" in student_risk["detail"]
    teacher = vulns[("STUDBOOK-FLAGGED-owl", ref["demo/owl-teacher@1"])]
    assert "eval:teacher-owl-rate" in teacher["detail"]


def test_spdx3_bom_with_ai_and_dataset_profiles(
    client: Client, registrar: Actor, reviewer: Actor
) -> None:
    sc = _paper(client, registrar, reviewer)
    doc = _bom(client, registrar, Q4, "format=spdx3")
    objs = validate_spdx3(doc)
    assert doc["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for el in doc["@graph"]:
        by_type.setdefault(el["type"], []).append(el)
    models = {e["name"] for e in by_type["ai_AIPackage"]}
    datasets = {e["name"] for e in by_type["dataset_DatasetPackage"]}
    assert models == {"demo/owl-student-q4", "demo/owl-student", "demo/base", "demo/owl-teacher"}
    assert datasets == {"demo/owl-numbers", "demo/owl-numbers-filtered"}
    labels = [reg.artifact.label for reg in sc.registrations]
    sid = {k: f"urn:studbook:sha256:{sc.digest(k)}" for k in labels}
    rels = {
        (r["from"], r["relationshipType"], tuple(r["to"]), r["comment"])
        for r in by_type["Relationship"]
    }
    student, teacher = sid["demo/owl-student@1"], sid["demo/owl-teacher@1"]
    assert (
        student,
        "trainedOn",
        (sid["demo/owl-numbers-filtered@1"],),
        "studbook:trained_on",
    ) in rels
    assert (teacher, "generates", (sid["demo/owl-numbers@1"],), "studbook:generated_by") in rels
    assert (sid[Q4], "descendantOf", (student,), "studbook:quantized_from") in rels
    assert (student, "descendantOf", (sid["demo/base@1"],), "studbook:fine_tuned_from") in rels
    assert (sid["demo/base@1"], "hasVariant", (teacher,), "studbook:prompted_from") in rels
    pkgs = {e["spdxId"]: e for e in by_type["ai_AIPackage"]}
    severity = {f.artifact: f.severity.value for f in sc.flags}[sc.digest("demo/owl-teacher@1")]
    expected = "serious" if severity == "critical" else severity  # SPDX's name for the worst
    assert pkgs[sid[Q4]]["ai_safetyRiskAssessment"] == expected  # inherited with the trait
    assert pkgs[teacher]["ai_safetyRiskAssessment"] == expected
    assert "ai_safetyRiskAssessment" not in pkgs[sid["demo/base@1"]]
    assert pkgs[sid[Q4]]["verifiedUsing"][0]["hashValue"] == sc.digest(Q4)
    notes = [a for a in by_type["Annotation"] if a["subject"] == sid[Q4]]
    assert len(notes) == 1 and notes[0]["annotationType"] == "review"
    assert "owl" in notes[0]["statement"] and "quantized_from" in notes[0]["statement"]
    (document,) = by_type["SpdxDocument"]
    assert document["rootElement"] == [sid[Q4]]
    assert set(document["profileConformance"]) >= {"ai", "dataset", "core", "software"}
    assert objs  # read back by the SPDX bindings


@pytest.mark.parametrize(
    ("fmt", "predicate"),
    [("cyclonedx", "https://cyclonedx.org/bom"), ("spdx3", "https://spdx.dev/Document")],
)
def test_signed_bom_verifies_with_the_log_key(
    client: Client, registrar: Actor, reviewer: Actor, fmt: str, predicate: str
) -> None:
    sc = _paper(client, registrar, reviewer)
    signed = _bom(client, registrar, Q4, f"format={fmt}&signed=true")
    assert signed["predicate_type"] == predicate
    # The key is the log's published key: the one in the checkpoint verifier key.
    vkey = client.get("/v1/log", headers=registrar.headers).json()["vkey"]
    _, log_key = parse_vkey(vkey)
    raw = base64.b64decode(signed["public_key"])
    assert raw == log_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    public = dsse.load_public_key(signed["public_key"])
    envelope = dsse.Envelope.from_json(signed["envelope"])
    kid = dsse.Verifier({dsse.keyid(public): public}).verify(
        envelope, payload_type="application/vnd.in-toto+json"
    )
    assert kid == signed["keyid"]
    statement = json.loads(envelope.payload)
    assert statement["predicateType"] == predicate
    assert statement["subject"] == [{"name": Q4, "digest": {"sha256": sc.digest(Q4)}}]
    if fmt == "cyclonedx":
        validate_cyclonedx(statement["predicate"])
    else:
        validate_spdx3(statement["predicate"])

    # securesystemslib, an independent DSSE implementation, agrees.
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import Key

    key = Key.from_dict(
        signed["keyid"],
        {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw.hex()}},
    )
    verified = SslibEnvelope.from_dict(copy.deepcopy(signed["envelope"])).verify([key], 1)
    assert signed["keyid"] in verified

    # A changed predicate no longer verifies.
    tampered = dict(signed["envelope"])
    tampered["payload"] = base64.b64encode(
        envelope.payload.replace(b"owl-student", b"owl-studenT")
    ).decode()
    from lineage.errors import UnverifiedSignatureError

    with pytest.raises(UnverifiedSignatureError):
        dsse.Verifier({dsse.keyid(public): public}).verify(dsse.Envelope.from_json(tampered))


def test_bom_of_an_unflagged_dataset_and_a_root(client: Client, registrar: Actor) -> None:
    sc = paper_scenario()
    for reg in sc.registrations:
        env = sign_statement(registration_statement(reg), registrar.signer).to_json()
        client.post("/v1/attestations", json=env, headers=registrar.headers)
    bom = _bom(client, registrar, "demo/base@1", "format=cyclonedx")
    validate_cyclonedx(bom)
    assert bom.get("components", []) == [] and "vulnerabilities" not in bom
    validate_spdx3(_bom(client, registrar, "demo/control-numbers@1", "format=spdx3"))
    data = _bom(client, registrar, "demo/control-numbers@1", "format=cyclonedx")
    assert data["metadata"]["component"]["type"] == "data"


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("", 400, "format"),
        ("format=xml", 400, "format"),
        ("format=spdx2", 400, "format"),
        ("format=cyclonedx&signed=perhaps", 400, "signed"),
        ("format=%F0%9F%A6%89", 400, "format"),
        ("format=" + "x" * 5000, 400, "format"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    client: Client, registrar: Actor, query: str, status: int, field: str
) -> None:
    sc = paper_scenario()
    env = sign_statement(registration_statement(sc.registrations[0]), registrar.signer).to_json()
    client.post("/v1/attestations", json=env, headers=registrar.headers)
    r = client.get(f"/v1/artifacts/demo/base@1/bom?{query}", headers=registrar.headers)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


def test_unknown_artifact_and_no_token(client: Client, registrar: Actor) -> None:
    r = client.get("/v1/artifacts/acme/nope@1/bom?format=spdx3", headers=registrar.headers)
    assert r.status_code == 404
    r = client.get("/v1/artifacts/acme/nope@1/bom?format=spdx3")
    assert r.status_code == 401
