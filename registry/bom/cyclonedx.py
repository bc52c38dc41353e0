"""CycloneDX 1.6 ML-BOM of a model's upstream lineage, built with cyclonedx-python-lib.

Why the library and not hand-written JSON: it owns the schema's shapes (bom-refs, enums, the
1.6 field set) and its serializer refuses objects the schema would reject, so a BOM that leaves
here is one the CycloneDX tools read. Tests validate every output with the library's own JSON
schema validator.

How Studbook's graph maps onto CycloneDX:
- every artifact is a component, `machine-learning-model` or `data`, whose `bom-ref` is
  `sha256:<digest>` and whose SHA-256 hash is the artifact digest;
- a model's weights-lineage parents (fine-tune, adapter, merge, quantisation, prompt, init) are
  its `pedigree.ancestors` (copies without a bom-ref, as the schema asks of pedigree entries);
- every edge, data lineage included, is a `dependencies` entry child -> parents, and the exact
  Studbook relation of each parent is kept in `studbook:parent` properties;
- risk is where CycloneDX puts risk: one `vulnerabilities` entry per flag in force and per
  at-risk mark, naming the trait, the severity, the affected component, the explanation path and
  the evidence (also as `studbook:*` properties, for machines).
"""

from __future__ import annotations

import json
from typing import Any

from lineage.types import ArtifactKind

from .graph import BomGraph, BomNode, BomRisk

__all__ = ["SPEC_VERSION", "to_cyclonedx"]

SPEC_VERSION = "1.6"


def _bom_ref(digest: str) -> str:
    return f"sha256:{digest}"


def _component(node: BomNode, *, with_ref: bool) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component, ComponentType

    kind = (
        ComponentType.MACHINE_LEARNING_MODEL
        if node.kind is ArtifactKind.MODEL
        else ComponentType.DATA
    )
    props = [
        Property(name="studbook:ref", value=node.ref),
        Property(name="studbook:registered_by", value=node.registered_by),
    ]
    if node.opaque:
        props.append(Property(name="studbook:opaque", value="true"))
    return Component(
        type=kind,
        name=node.name,
        version=node.version,
        bom_ref=_bom_ref(node.digest) if with_ref else None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=node.digest)],
        properties=props,
        description=(
            "API-only model: the digest is of its provider's identifier" if node.opaque else None
        ),
    )


def _severity(value: str) -> Any:
    from cyclonedx.model.vulnerability import VulnerabilitySeverity

    return {
        "low": VulnerabilitySeverity.LOW,
        "medium": VulnerabilitySeverity.MEDIUM,
        "high": VulnerabilitySeverity.HIGH,
        "critical": VulnerabilitySeverity.CRITICAL,
    }.get(value, VulnerabilitySeverity.UNKNOWN)


def _vulnerability(graph: BomGraph, risk: BomRisk, index: int) -> Any:
    from cyclonedx.model import Property
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityScoreSource,
        VulnerabilitySource,
    )

    node = graph.node(risk.artifact)
    labels = graph.labels()
    path_text = " -> ".join(
        [labels.get(risk.path[0][0], risk.path[0][0])]
        + [f"[{rel}] {labels.get(parent, parent)}" for _, parent, rel in risk.path]
        if risk.path
        else []
    )
    if risk.status == "flagged":
        description = f"{node.ref} is flagged for trait {risk.trait!r} ({risk.severity})"
        detail = f"Flagged by a reviewer: {risk.reason}"
    else:
        source = labels.get(risk.source, risk.source)
        description = f"{node.ref} is at risk of trait {risk.trait!r}, inherited from {source}"
        base = ", ".join(labels.get(b, b) for b in risk.shared_base) or "none"
        detail = f"Path: {path_text}. Shared base: {base}."
    if risk.evidence:
        detail += " Evidence: " + ", ".join(risk.evidence) + "."
    props = [
        Property(name="studbook:trait", value=risk.trait),
        Property(name="studbook:status", value=risk.status),
        Property(name="studbook:source", value=_bom_ref(risk.source)),
    ]
    props += [Property(name="studbook:evidence", value=e) for e in risk.evidence]
    props += [
        Property(name="studbook:path", value=f"{_bom_ref(c)} {rel} {_bom_ref(p)}")
        for c, p, rel in risk.path
    ]
    props += [Property(name="studbook:shared_base", value=_bom_ref(b)) for b in risk.shared_base]
    return Vulnerability(
        bom_ref=f"studbook-risk-{index}",
        id=f"STUDBOOK-{risk.status.upper().replace('_', '-')}-{risk.trait}",
        source=VulnerabilitySource(name="Studbook"),
        description=description,
        detail=detail,
        ratings=[
            VulnerabilityRating(
                severity=_severity(risk.severity), method=VulnerabilityScoreSource.OTHER
            )
        ],
        affects=[BomTarget(ref=_bom_ref(risk.artifact))],
        properties=props,
    )


def to_cyclonedx(graph: BomGraph) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON document (as a dict) for `graph`."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType, Pedigree
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6

    components = {n.digest: _component(n, with_ref=True) for n in graph.nodes}
    for n in graph.nodes:
        weights = [e for e in graph.parents(n.digest) if e.relation.is_weights]
        if weights:
            components[n.digest].pedigree = Pedigree(
                ancestors=[_component(graph.node(e.parent), with_ref=False) for e in weights]
            )
        for e in graph.parents(n.digest):
            components[n.digest].properties.add(
                Property(name="studbook:parent", value=f"{e.relation.value} {_bom_ref(e.parent)}")
            )
    root = components[graph.root]
    meta_props = [Property(name="studbook:lineage", value="upstream")]
    if graph.truncated:
        meta_props.append(Property(name="studbook:truncated", value="true"))
    bom = Bom(
        metadata=BomMetaData(
            timestamp=graph.generated_at,
            tools=ToolRepository(
                components=[
                    Component(type=ComponentType.APPLICATION, name=graph.server, bom_ref="studbook")
                ]
            ),
            component=root,
            properties=meta_props,
        ),
        components=[c for d, c in components.items() if d != graph.root],
    )
    # One entry per node, built directly: `Bom.register_dependency` searches the entries
    # linearly on every call, which is quadratic in the size of the lineage.
    bom.dependencies.update(
        Dependency(
            ref=components[n.digest].bom_ref,
            dependencies=[
                Dependency(ref=components[e.parent].bom_ref) for e in graph.parents(n.digest)
            ],
        )
        for n in graph.nodes
    )
    for i, risk in enumerate(graph.risks):
        bom.vulnerabilities.add(_vulnerability(graph, risk, i))
    text = JsonV1Dot6(bom).output_as_string()
    data: dict[str, Any] = json.loads(text)
    return data
