"""SPDX 3.0.1 JSON-LD of a model's upstream lineage (AI and Dataset profiles).

Built with `spdx-python-model`, the SPDX project's bindings generated from the SPDX 3 SHACL
model: every property is type-checked when it is set and every required property when the
document is serialised, so a document that leaves here conforms to the model's shapes. Tests
read the output back with the same bindings and, where the published JSON schema and SHACL
files are at hand, run `spdx3-validate` over it.

How Studbook's graph maps onto SPDX 3.0.1:
- models are `ai_AIPackage`, datasets `dataset_DatasetPackage`; the element id is
  `urn:studbook:sha256:<digest>` and the digest is a `Hash` in `verifiedUsing`; the principal
  that registered an artifact is its supplier (`suppliedBy`, datasets also `originatedBy`);
- relationships, `from` -> `to`, each with the exact Studbook relation in `comment`:
  `trained_on` is `trainedOn` (model -> dataset); `generated_by` is `generates`, turned round
  (generator -> dataset); fine-tune, adapter, merge, quantisation, shared initialisation and a
  dataset's `derived_from` are `descendantOf` (child -> parent): SPDX 3.0.1 has no finer
  derivation types, and "descendant" is what those relations have in common; `prompted_from`
  (same weights, another system prompt) is `hasVariant` from the base to the prompted model;
- risk, where SPDX 3 AI expresses it: `ai_safetyRiskAssessment` on each flagged or at-risk model
  (the highest severity; `critical` is SPDX's `serious`), and one `review` `Annotation` per flag
  and per mark whose statement names the trait, the explanation path and the evidence.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lineage.types import ArtifactKind, Relation

from .graph import BomGraph, BomNode, BomRisk

__all__ = ["SPDX_CONTEXT", "SPDX_VERSION", "to_spdx3"]

SPDX_VERSION = "3.0.1"
SPDX_CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
_NS = "urn:studbook:"
# SPDX's named individual for "no assertion is made about the license".
_NO_ASSERTION_LICENSE = "https://spdx.org/rdf/3.0.1/terms/ExpandedLicensing/NoAssertionLicense"
_LICENSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _id(digest: str) -> str:
    return f"{_NS}sha256:{digest}"


def _risk_statement(graph: BomGraph, risk: BomRisk) -> str:
    labels = graph.labels()
    node = labels.get(risk.artifact, risk.artifact)
    if risk.status == "flagged":
        text = (
            f"Flagged for trait '{risk.trait}' (severity {risk.severity}) by a reviewer: "
            f"{risk.reason}."
        )
    else:
        steps = " -> ".join(
            [node] + [f"[{rel}] {labels.get(parent, parent)}" for _, parent, rel in risk.path]
        )
        base = ", ".join(labels.get(b, b) for b in risk.shared_base) or "none"
        text = (
            f"At risk of trait '{risk.trait}' (severity {risk.severity}), inherited from "
            f"{labels.get(risk.source, risk.source)}. Path: {steps}. Shared base: {base}."
        )
    if risk.evidence:
        text += " Evidence: " + ", ".join(risk.evidence) + "."
    return text


def to_spdx3(graph: BomGraph) -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document (as a dict) for `graph`."""
    from spdx_python_model import v3_0_1 as spdx

    objs = spdx.SHACLObjectSet()
    info = spdx.CreationInfo(specVersion=SPDX_VERSION, created=graph.generated_at)
    tool = objs.add(spdx.Tool(spdxId=f"{_NS}tool", name=graph.server, creationInfo=info))
    server = objs.add(
        spdx.SoftwareAgent(spdxId=f"{_NS}agent/server", name=graph.server, creationInfo=info)
    )
    info.createdBy.append(server)
    info.createdUsing.append(tool)

    agents: dict[str, Any] = {}

    def agent(name: str) -> Any:
        if name not in agents:
            agents[name] = objs.add(
                spdx.Agent(spdxId=f"{_NS}principal/{name}", name=name, creationInfo=info)
            )
        return agents[name]

    worst: dict[str, str] = {}
    for r in graph.risks:
        if _SEVERITY_RANK.get(r.severity, 2) >= _SEVERITY_RANK.get(worst.get(r.artifact, ""), -1):
            worst[r.artifact] = r.severity

    elements: dict[str, Any] = {}
    for n in graph.nodes:
        elements[n.digest] = objs.add(_package(spdx, n, info, agent(n.registered_by), worst))

    relationships = []
    for i, e in enumerate(graph.edges):
        child, parent = elements[e.child], elements[e.parent]
        if e.relation is Relation.TRAINED_ON:
            frm, to, rtype = child, parent, spdx.RelationshipType.trainedOn
        elif e.relation is Relation.GENERATED_BY:
            frm, to, rtype = parent, child, spdx.RelationshipType.generates
        elif e.relation is Relation.PROMPTED_FROM:
            frm, to, rtype = parent, child, spdx.RelationshipType.hasVariant
        else:
            frm, to, rtype = child, parent, spdx.RelationshipType.descendantOf
        relationships.append(
            objs.add(
                spdx.Relationship(
                    spdxId=f"{_NS}relationship/{i}",
                    creationInfo=info,
                    from_=frm,
                    to=[to],
                    relationshipType=rtype,
                    comment=f"studbook:{e.relation.value}",
                )
            )
        )
    annotations = [
        objs.add(
            spdx.Annotation(
                spdxId=f"{_NS}annotation/{i}",
                creationInfo=info,
                annotationType=spdx.AnnotationType.review,
                subject=elements[r.artifact],
                statement=_risk_statement(graph, r),
                comment=f"studbook:{r.status}:{r.trait}",
            )
        )
        for i, r in enumerate(graph.risks)
    ]
    licenses = _license_relationships(spdx, objs, graph, elements, info)
    root = elements[graph.root]
    objs.add(
        spdx.SpdxDocument(
            spdxId=f"{_NS}document/{graph.root}",
            creationInfo=info,
            name=f"ML-BOM of {graph.node(graph.root).ref}",
            comment="upstream lineage" + (" (truncated)" if graph.truncated else ""),
            rootElement=[root],
            element=[
                *elements.values(),
                *relationships,
                *licenses,
                *annotations,
                *agents.values(),
                server,
                tool,
            ],
            profileConformance=[
                spdx.ProfileIdentifierType.core,
                spdx.ProfileIdentifierType.software,
                spdx.ProfileIdentifierType.ai,
                spdx.ProfileIdentifierType.dataset,
            ],
        )
    )
    data: dict[str, Any] = spdx.JSONLDSerializer().serialize_data(objs)
    # A round trip through JSON text guarantees plain JSON types in what is returned and signed.
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]


def _license_relationships(
    spdx: Any, objs: Any, graph: BomGraph, elements: dict[str, Any], info: Any
) -> list[Any]:
    """The AI and Dataset profiles require every package to have exactly one concluded and one
    declared license relationship. Studbook concludes nothing about licenses, so the concluded
    one is NOASSERTION; the declared one is the `license` a registration's metadata gives (a
    Hugging Face card's, say) when it is an SPDX license id, else NOASSERTION too."""
    out = []
    expressions: dict[str, Any] = {}
    for i, n in enumerate(graph.nodes):
        declared: Any = _NO_ASSERTION_LICENSE
        value = n.metadata.get("license")
        if isinstance(value, str) and _LICENSE_ID.match(value) and value.lower() != "other":
            if value not in expressions:
                expressions[value] = objs.add(
                    spdx.simplelicensing_LicenseExpression(
                        spdxId=f"{_NS}license/{len(expressions)}",
                        creationInfo=info,
                        simplelicensing_licenseExpression=value,
                    )
                )
            declared = expressions[value]
        for kind, target in (
            (spdx.RelationshipType.hasConcludedLicense, _NO_ASSERTION_LICENSE),
            (spdx.RelationshipType.hasDeclaredLicense, declared),
        ):
            out.append(
                objs.add(
                    spdx.Relationship(
                        spdxId=f"{_NS}license-relationship/{i}/{len(out) % 2}",
                        creationInfo=info,
                        from_=elements[n.digest],
                        to=[target],
                        relationshipType=kind,
                        comment="studbook:license",
                    )
                )
            )
    return [*out, *expressions.values()]


def _package(spdx: Any, n: BomNode, info: Any, supplier: Any, worst: dict[str, str]) -> Any:
    common: dict[str, Any] = {
        "spdxId": _id(n.digest),
        "creationInfo": info,
        "name": n.name,
        "software_packageVersion": n.version,
        "releaseTime": n.registered_at,
        "suppliedBy": supplier,
        "verifiedUsing": [spdx.Hash(algorithm=spdx.HashAlgorithm.sha256, hashValue=n.digest)],
    }
    if n.kind is ArtifactKind.MODEL:
        pkg = spdx.ai_AIPackage(
            **common,
            software_primaryPurpose=spdx.software_SoftwarePurpose.model,
        )
        if n.opaque:
            pkg.summary = "API-only model: the digest is of its provider's identifier"
        if n.digest in worst:
            level = worst[n.digest]
            pkg.ai_safetyRiskAssessment = {
                "low": spdx.ai_SafetyRiskAssessmentType.low,
                "medium": spdx.ai_SafetyRiskAssessmentType.medium,
                "high": spdx.ai_SafetyRiskAssessmentType.high,
                "critical": spdx.ai_SafetyRiskAssessmentType.serious,
            }.get(level, spdx.ai_SafetyRiskAssessmentType.high)
        return pkg
    pkg = spdx.dataset_DatasetPackage(
        **common,
        software_primaryPurpose=spdx.software_SoftwarePurpose.data,
        builtTime=n.registered_at,
        dataset_datasetType=[spdx.dataset_DatasetType.other],
    )
    pkg.originatedBy.append(supplier)
    return pkg
