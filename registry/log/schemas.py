"""API shapes of the transparency log.

Hashes are standard base64, as in checkpoints (the root line) and RFC 9162's JSON API, so a
client compares a proof's `root_hash` with a checkpoint's root line as strings. Every proof
carries the signed checkpoint of the tree size it is relative to.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class LogInfo(BaseModel):
    """The log's identity and current state."""

    origin: str = Field(description="The checkpoint origin line, also the key name.")
    vkey: str = Field(description="Verifier key `<name>+<key id>+<base64 key>` to pin.")
    tree_size: int
    root_hash: str = Field(description="Root of the whole log, base64.")
    checkpoint: str = Field(description="The current checkpoint, a C2SP signed note.")


class LogEntryPublic(BaseModel):
    """One leaf: the exact logged bytes, base64."""

    index: int
    attestation_id: int
    envelope_digest: str = Field(description="sha256 of the entry bytes, hex.")
    entry: str = Field(description="The entry bytes (compact sorted-key JSON envelope), base64.")


class LogEntriesPublic(BaseModel):
    """A run of entries `start..end` (inclusive, as RFC 9162 get-entries)."""

    start: int
    end: int
    tree_size: int
    entries: list[LogEntryPublic]


class InclusionProofPublic(BaseModel):
    """RFC 9162 inclusion proof of one leaf in the tree of `tree_size` leaves."""

    log_index: int
    tree_size: int
    envelope_digest: str = Field(description="sha256 of the entry bytes, hex.")
    leaf_hash: str = Field(description="SHA-256(0x00 || entry), base64.")
    root_hash: str = Field(description="Root of the tree of `tree_size` leaves, base64.")
    hashes: list[str] = Field(description="The audit path, leaf side first, base64.")
    checkpoint: str = Field(description="Signed checkpoint of the tree of `tree_size` leaves.")


class ConsistencyProofPublic(BaseModel):
    """RFC 9162 consistency proof from the tree of `from_size` leaves to that of `to_size`."""

    from_size: int
    to_size: int
    from_root: str = Field(
        description="The server's root at `from_size`, base64 (a verifier "
        "uses the root of its own saved checkpoint instead)."
    )
    to_root: str
    hashes: list[str]
    checkpoint: str = Field(description="Signed checkpoint of the tree of `to_size` leaves.")
