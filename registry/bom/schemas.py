"""API shapes for ML-BOM export."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

# in-toto predicate types of the two formats, as the formats' own projects publish them.
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
SPDX_PREDICATE = "https://spdx.dev/Document"


class BomFormat(StrEnum):
    """The BOM formats Studbook writes."""

    SPDX3 = "spdx3"
    CYCLONEDX = "cyclonedx"

    @property
    def predicate_type(self) -> str:
        """The in-toto predicate type a signed BOM of this format carries."""
        match self:
            case BomFormat.SPDX3:
                return SPDX_PREDICATE
            case BomFormat.CYCLONEDX:
                return CYCLONEDX_PREDICATE

    @property
    def media_type(self) -> str:
        """The format's registered media type."""
        match self:
            case BomFormat.SPDX3:
                return "application/spdx+json"
            case BomFormat.CYCLONEDX:
                return "application/vnd.cyclonedx+json"


class SignedBomPublic(BaseModel):
    """A BOM wrapped in a DSSE envelope (in-toto Statement v1) signed by the server's log key.

    Verify it with the log's public key (`GET /v1/log` names it) over DSSE PAE; the statement's
    subject is the model's digest and its predicate the BOM document.
    """

    format: BomFormat
    predicate_type: str
    keyid: str = Field(description="sha256 of the raw Ed25519 public key, hex")
    public_key: str = Field(description="the signing key, raw 32 bytes in base64")
    envelope: dict[str, Any]
