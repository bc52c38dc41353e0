"""API shapes for signing keys."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..schema_types import UtcDateTime


class KeyCreate(BaseModel):
    """Register an Ed25519 public key: base64 of the raw 32 bytes, or PEM."""

    public_key: str = Field(min_length=40, max_length=400)
    principal: str | None = Field(
        default=None, description="Owner; admins only, default the caller."
    )


class KeyPublic(BaseModel):
    """A key as the API shows it."""

    keyid: str
    public_key: str
    principal: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None


class KeysPublic(BaseModel):
    """A list of keys."""

    data: list[KeyPublic]
    count: int
