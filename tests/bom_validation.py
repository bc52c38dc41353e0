"""Validate exported BOMs with the formats' own tools (shared by the BOM tests).

CycloneDX: cyclonedx-python-lib's strict JSON schema validator (the schema ships with the
library). SPDX 3: the SPDX project's bindings (`spdx-python-model`, generated from the SPDX 3
SHACL model) read the document back and write it again, which checks every property's type and
every required property; then `spdx3-validate` checks the published JSON schema and the SHACL
shapes. Those two files are not shipped with any package; the test uses them from
`STUDBOOK_SPDX3_DIR` (a folder holding `schema.json`, `spdx-model.ttl` and
`spdx-context.jsonld` of SPDX 3.0.1) when set, or downloads them from spdx.org when it is
reachable, and says so when it can do neither.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

SPDX_FILES = {
    "schema.json": "https://spdx.org/schema/3.0.1/spdx-json-schema.json",
    "spdx-model.ttl": "https://spdx.org/rdf/3.0.1/spdx-model.ttl",
    "spdx-context.jsonld": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
}


def validate_cyclonedx(bom: dict[str, Any]) -> None:
    """Fail unless `bom` is valid CycloneDX 1.6 JSON."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom))
    assert error is None, str(error)


@functools.cache
def _spdx_material() -> tuple[Any, Any, Any] | None:
    import rdflib

    folder = os.environ.get("STUDBOOK_SPDX3_DIR")
    texts: dict[str, bytes] = {}
    if folder:
        for name in SPDX_FILES:
            texts[name] = (Path(folder) / name).read_bytes()
    else:
        try:
            socket.create_connection(("spdx.org", 443), timeout=3).close()
        except OSError:
            return None
        for name, url in SPDX_FILES.items():
            with urllib.request.urlopen(url, timeout=30) as fh:
                texts[name] = fh.read()
    shacl = rdflib.Graph()
    shacl.parse(data=texts["spdx-model.ttl"].decode(), format="turtle")
    return (
        json.loads(texts["schema.json"]),
        shacl,
        json.loads(texts["spdx-context.jsonld"])["@context"],
    )


def spdx3_errors(doc: dict[str, Any]) -> list[str] | None:
    """Schema and SHACL errors of `doc` per spdx3-validate, or None when the files are absent."""
    import rdflib
    from spdx3_validate.core import check_graph, schema_validator
    from spdx3_validate.spdx_versions import SPDX_VERSIONS

    material = _spdx_material()
    if material is None:
        return None
    schema, shacl, context = material
    errors = [
        f"schema: {e.json_path}: {e.message}" for e in schema_validator(schema).iter_errors(doc)
    ]
    local = dict(doc, **{"@context": context})
    graph = rdflib.Graph()
    graph.parse(data=json.dumps(local), format="json-ld")
    (version,) = [v for v in SPDX_VERSIONS if v.pretty == "3.0.1"]
    errors += [f"shacl: {m}" for m in check_graph(graph, shacl, version, True)]
    return errors


def validate_spdx3(doc: dict[str, Any]) -> list[Any]:
    """Fail unless `doc` is valid SPDX 3.0.1 JSON-LD; returns the objects read back."""
    import spdx_python_model
    from spdx_python_model import v3_0_1 as spdx

    model, objs = spdx_python_model.load_data(doc)
    assert model is spdx
    again = spdx.JSONLDSerializer().serialize_data(objs)  # raises on a missing required property
    assert len(again["@graph"]) == len(doc["@graph"])
    errors = spdx3_errors(doc)
    if errors is None:
        if os.environ.get("STUDBOOK_SPDX3_REQUIRE"):
            pytest.fail("SPDX 3 JSON schema and SHACL files unavailable (set STUDBOOK_SPDX3_DIR)")
    else:
        assert errors == [], "\n".join(errors)
    return list(objs.foreach())
