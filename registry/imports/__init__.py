"""Ecosystem intake: OpenSSF model-signing bundles as evidence (see `service`)."""

from __future__ import annotations


def install() -> None:
    """Register the `signatures` view of artifacts (`GET /v1/artifacts/<ref>/signatures`)."""
    from ..artifacts import controllers as artifacts
    from .controllers import signatures_view

    artifacts.register_view("signatures", signatures_view)
