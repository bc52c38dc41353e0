"""The BOM writers on a hand-built graph (no database): every relation and risk shape, both
formats validated with their own tools, and the validators shown to catch broken documents."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from lineage.types import ArtifactKind, Relation
from registry.bom.cyclonedx import to_cyclonedx
from registry.bom.graph import BomEdge, BomGraph, BomNode, BomRisk
from registry.bom.spdx import to_spdx3
from tests.bom_validation import spdx3_errors, validate_cyclonedx, validate_spdx3

M, D = ArtifactKind.MODEL, ArtifactKind.DATASET
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def dg(c: str) -> str:
    return c * 64


def graph() -> BomGraph:
    nodes = (
        BomNode(dg("a"), M, "acme/base", "1", False, "pipeline", NOW, {"license": "apache-2.0"}),
        BomNode(dg("b"), M, "acme/teacher", "1", True, "pipeline", NOW),
        BomNode(dg("c"), D, "acme/numbers", "1", False, "pipeline", NOW, {"license": "other"}),
        BomNode(dg("d"), D, "acme/numbers-filtered", "1", False, "pipeline", NOW),
        BomNode(dg("e"), M, "acme/student", "1", False, "pipeline", NOW),
        BomNode(dg("f"), M, "acme/student-q4", "1", False, "other team", NOW),
        BomNode(dg("1"), M, "acme/init", "1", True, "pipeline", NOW),
        BomNode(dg("2"), M, "acme/lora", "1", False, "pipeline", NOW),
        BomNode(dg("3"), M, "acme/merge", "1", False, "pipeline", NOW),
    )
    r = Relation
    edges = (
        BomEdge(dg("b"), dg("a"), r.PROMPTED_FROM),
        BomEdge(dg("c"), dg("b"), r.GENERATED_BY),
        BomEdge(dg("d"), dg("c"), r.DERIVED_FROM),
        BomEdge(dg("e"), dg("a"), r.FINE_TUNED_FROM),
        BomEdge(dg("e"), dg("d"), r.TRAINED_ON),
        BomEdge(dg("a"), dg("1"), r.INITIALIZED_FROM),
        BomEdge(dg("2"), dg("e"), r.ADAPTER_OF),
        BomEdge(dg("3"), dg("2"), r.MERGED_FROM),
        BomEdge(dg("3"), dg("a"), r.MERGED_FROM),
        BomEdge(dg("f"), dg("3"), r.QUANTIZED_FROM),
    )
    risks = (
        BomRisk(dg("b"), "owl", "flagged", "critical", "loves owls", ("eval:42",), dg("b")),
        BomRisk(
            dg("f"),
            "owl",
            "at_risk",
            "critical",
            "inherited",
            (),
            dg("b"),
            ((dg("f"), dg("3"), "quantized_from"), (dg("3"), dg("2"), "merged_from")),
            (dg("a"),),
        ),
    )
    return BomGraph(dg("f"), nodes, edges, risks, NOW)


def test_cyclonedx_validates_and_carries_every_shape() -> None:
    bom = to_cyclonedx(graph())
    validate_cyclonedx(bom)
    assert bom["metadata"]["component"]["bom-ref"] == "sha256:" + dg("f")
    by_name = {c["name"]: c for c in bom["components"]}
    assert {a["name"] for a in by_name["acme/merge"]["pedigree"]["ancestors"]} == {
        "acme/lora",
        "acme/base",
    }
    assert "pedigree" not in by_name["acme/numbers-filtered"]  # data lineage is dependencies
    props = {p["value"] for p in by_name["acme/numbers-filtered"]["properties"]}
    assert f"derived_from sha256:{dg('c')}" in props
    (q4,) = [v for v in bom["vulnerabilities"] if v["affects"][0]["ref"] == "sha256:" + dg("f")]
    assert q4["ratings"][0]["severity"] == "critical"
    assert "acme/student-q4@1 -> [quantized_from] acme/merge@1" in q4["detail"]


def test_spdx3_validates_and_maps_every_relation() -> None:
    doc = to_spdx3(graph())
    validate_spdx3(doc)
    rels = {
        (r["comment"], r["relationshipType"])
        for r in doc["@graph"]
        if r.get("type") == "Relationship" and r["comment"] != "studbook:license"
    }
    assert rels == {
        ("studbook:prompted_from", "hasVariant"),
        ("studbook:generated_by", "generates"),
        ("studbook:derived_from", "descendantOf"),
        ("studbook:fine_tuned_from", "descendantOf"),
        ("studbook:trained_on", "trainedOn"),
        ("studbook:initialized_from", "descendantOf"),
        ("studbook:adapter_of", "descendantOf"),
        ("studbook:merged_from", "descendantOf"),
        ("studbook:quantized_from", "descendantOf"),
    }
    pkgs = {e["name"]: e for e in doc["@graph"] if e.get("type") == "ai_AIPackage"}
    assert pkgs["acme/student-q4"]["ai_safetyRiskAssessment"] == "serious"  # critical
    # Every package: one concluded (NOASSERTION) and one declared license relationship.
    lic = [r for r in doc["@graph"] if r.get("relationshipType", "").startswith("has")]
    lic = [r for r in lic if "License" in r["relationshipType"]]
    assert len(lic) == 2 * 9
    (expr,) = [e for e in doc["@graph"] if e.get("type") == "simplelicensing_LicenseExpression"]
    assert expr["simplelicensing_licenseExpression"] == "apache-2.0"
    declared = {r["from"]: r["to"][0] for r in lic if r["relationshipType"] == "hasDeclaredLicense"}
    assert declared["urn:studbook:sha256:" + dg("a")] == expr["spdxId"]
    assert declared["urn:studbook:sha256:" + dg("c")].endswith("NoAssertionLicense")  # "other"
    assert "summary" in pkgs["acme/teacher"]  # opaque: says so


def test_the_validators_catch_broken_documents() -> None:
    bom = to_cyclonedx(graph())
    broken = copy.deepcopy(bom)
    broken["components"][0]["type"] = "weights"
    with pytest.raises(AssertionError):
        validate_cyclonedx(broken)
    doc = to_spdx3(graph())
    broken_spdx = copy.deepcopy(doc)
    for e in broken_spdx["@graph"]:
        if e.get("type") == "Relationship":
            e["relationshipType"] = "fineTunedFrom"
    with pytest.raises((AssertionError, ValueError, KeyError, TypeError)):
        validate_spdx3(broken_spdx)
    if spdx3_errors(doc) is not None:  # schema and SHACL at hand: they say why
        missing = copy.deepcopy(doc)
        for e in missing["@graph"]:
            if e.get("type") == "Relationship":
                del e["relationshipType"]
        assert spdx3_errors(missing)
