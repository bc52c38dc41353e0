"""API shapes for signing keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lineage.dsse import KEY_POSSESSION_PAYLOAD_TYPE, KEY_POSSESSION_TYPE

from ..schema_types import UtcDateTime

PROOF_DESCRIPTION = (
    "Proof of possession: a DSSE envelope (payloadType "
    f"`{KEY_POSSESSION_PAYLOAD_TYPE}`) with exactly one signature, made by the key being "
    "registered (keyid = that key's id) over the compact, key-sorted UTF-8 JSON "
    f'`{{"_type":"{KEY_POSSESSION_TYPE}","keyid":KEYID,"principal":NAME}}`, where NAME is the '
    "principal the key is registered for (the caller, or `principal`). "
    "`lineage.dsse.key_possession_proof` builds it."
)


class KeyCreate(BaseModel):
    """Register a public key, with proof that the registrant holds its private half."""

    public_key: str = Field(
        min_length=40,
        max_length=400,
        description="Ed25519: base64 of the raw 32 bytes, or PEM SubjectPublicKeyInfo. "
        "ECDSA P-256 / P-384: PEM SubjectPublicKeyInfo.",
    )
    principal: str | None = Field(
        default=None, max_length=100, description="Owner; admins only, default the caller."
    )
    proof: dict[str, Any] = Field(description=PROOF_DESCRIPTION)


class KeyPublic(BaseModel):
    """A key as the API shows it."""

    keyid: str
    public_key: str = Field(
        description="Ed25519: base64 of the raw 32 bytes; ECDSA: PEM SubjectPublicKeyInfo."
    )
    algorithm: str = Field(description="ed25519, ecdsa-p256 or ecdsa-p384.")
    principal: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None
    proof: dict[str, Any] | None = Field(
        default=None,
        description="The possession proof the key was registered with (check it with "
        "lineage.dsse.verify_key_possession); null for keys registered before proofs were "
        "required.",
    )


class KeysPublic(BaseModel):
    """A list of keys."""

    data: list[KeyPublic]
    count: int
