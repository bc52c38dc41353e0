"""HTTP for ML-BOM export: the `bom` view of an artifact.

`GET /v1/artifacts/<ref>/bom?format=spdx3|cyclonedx[&signed=true]` is a view of the artifact
route (names hold slashes, so one route takes the whole path; see `registry.artifacts`).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ..models import Artifact
from . import service


def bom_view(session: Session, artifact: Artifact, params: dict[str, str]) -> Any:
    """The BOM document, or the signed envelope holding it when `signed=true`."""
    fmt = service.parse_format(params.get("format"))
    signed = service.parse_signed(params.get("signed"))
    document = service.export(session, artifact, fmt)
    if signed:
        return service.sign_bom(session, artifact, fmt, document)
    return document
