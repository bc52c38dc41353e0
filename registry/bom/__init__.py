"""ML-BOM export (SPDX 3 AI/Dataset, CycloneDX 1.6), optionally signed (see `service`)."""

from __future__ import annotations


def install() -> None:
    """Register the `bom` view of artifacts (`GET /v1/artifacts/<ref>/bom`)."""
    from ..artifacts import controllers as artifacts
    from .controllers import bom_view

    artifacts.register_view("bom", bom_view)
