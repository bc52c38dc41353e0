"""The bytes of a log leaf (format v1), shared by the server, the offline verifier and the audit.

The leaf of an accepted envelope is the envelope as stored (the JSON object the client sent),
serialised as compact JSON with sorted keys and every non-ASCII character escaped. A DSSE
envelope's values are strings (base64 payload and signatures, the payload type, key ids), so for
every envelope Studbook produces this is also its RFC 8785 (JCS) form; ASCII escaping makes the
bytes defined for any JSON value a client may add, lone surrogates included. This module imports
nothing but the standard library, so the command-line verifier stays light.

Migration 0002 holds a frozen copy of `entry_bytes`: changing the format means a new format
version and a new leaf prefix, never an edit here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["b64", "entry_bytes", "envelope_digest"]


def entry_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The log entry of an envelope: compact, key-sorted, ASCII-escaped JSON."""
    text = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def envelope_digest(entry: bytes) -> str:
    """sha256 of a log entry, hex: how a client names an envelope to the log."""
    return hashlib.sha256(entry).hexdigest()


def b64(data: bytes) -> str:
    """Standard base64, the encoding of hashes in checkpoints and in every log answer."""
    return base64.b64encode(data).decode("ascii")
