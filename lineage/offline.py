"""Client-side verification: hold the registry to its log without trusting its answers.

Everything the server says here is checked with `lineage` maths on this machine: checkpoints
against the log's pinned verifier key, consistency proofs against a checkpoint saved earlier,
inclusion proofs against a checkpoint, leaf hashes against the envelope bytes in hand. The server
is only a source of hashes; a lying server can refuse to answer, not make a check pass.

The one thing that cannot be checked offline is the log key itself: pin it (`--vkey`, or
`STUDBOOK_LOG_VKEY`), from a source other than the server you are auditing. Without a pin the
verifier trusts the key the server advertises, says so, and still catches any rewrite of history
signed by that key.

Imports only `lineage` and the standard library: a verifier should be small enough to read, and
the command line (`studbook_cli`) uses it without importing the server.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import dsse
from .checkpoint import Checkpoint, verify_checkpoint
from .logleaf import entry_bytes, envelope_digest
from .merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from .statements import VerifiedStatement, verify_envelope

__all__ = [
    "ConsistencyCheck",
    "InclusionCheck",
    "LogReader",
    "check_consistency",
    "check_inclusion",
    "live_checkpoint",
    "verify_signature",
]


class LogReader(Protocol):
    """What the verifier needs from an API client: GET returning JSON, or bytes for text."""

    def get(self, path: str, **params: Any) -> Any: ...


@dataclass(frozen=True)
class ConsistencyCheck:
    """A saved checkpoint and the live one it was proven consistent with."""

    old: Checkpoint
    new: Checkpoint
    new_note: str


@dataclass(frozen=True)
class InclusionCheck:
    """An envelope proven to be leaf `index` of the checkpointed tree `checkpoint`."""

    index: int
    envelope_digest: str
    checkpoint: Checkpoint
    checkpoint_note: str


def _text(body: Any) -> str:
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)


def _hashes(values: Any, proof: str) -> list[bytes]:
    """Decode a proof's base64 hashes; lengths are checked by the verification itself."""
    try:
        return [base64.b64decode(str(v).encode("ascii"), validate=True) for v in values]
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ProofError(f"a {proof} proof hash is not base64: {exc}", proof=proof) from exc


def live_checkpoint(
    reader: LogReader, vkey: str, origin: str | None = None
) -> tuple[Checkpoint, str]:
    """The server's current checkpoint, verified under `vkey`.

    Raises:
        UnverifiedSignatureError, CheckpointError: the note is not signed by the log or malformed.
    """
    note = _text(reader.get("/v1/log/checkpoint"))
    return verify_checkpoint(note, vkey, origin=origin), note


def check_consistency(reader: LogReader, saved_note: str, vkey: str) -> ConsistencyCheck:
    """Prove that the live log extends the tree of a checkpoint saved earlier.

    Raises:
        UnverifiedSignatureError, CheckpointError: a checkpoint is not signed by the log.
        ProofError: the log is smaller than the saved checkpoint, or the consistency proof fails:
            the log's history was rewritten since the checkpoint was saved.
    """
    old = verify_checkpoint(saved_note, vkey)
    new, new_note = live_checkpoint(reader, vkey, origin=old.origin)
    if new.size < old.size:
        raise ProofError(
            f"the log shrank: the saved checkpoint has {old.size} entries, the live one {new.size}",
            proof="consistency",
            field="tree_size",
        )
    body = reader.get("/v1/log/proof/consistency", **{"from": old.size, "to": new.size})
    proof = _hashes(body["hashes"], "consistency")
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    return ConsistencyCheck(old, new, new_note)


def verify_signature(
    envelope_json: Mapping[str, Any], keys: Mapping[str, dsse.PublicKey]
) -> VerifiedStatement:
    """Verify a DSSE envelope against the given public keys (keyid -> key).

    Raises:
        InvalidEnvelopeError, InvalidStatementError, UnverifiedSignatureError.
    """
    return verify_envelope(dsse.Envelope.from_json(dict(envelope_json)), dsse.Verifier(keys))


def check_inclusion(
    reader: LogReader, envelope_json: Mapping[str, Any], vkey: str
) -> InclusionCheck:
    """Prove that this exact envelope is a leaf of the log, under a checkpoint signed by it.

    The leaf hash is computed here from the envelope in hand; the server only supplies the
    index, the audit path and the signed checkpoint.

    Raises:
        ApiError: the log has no entry with this envelope's digest (404), or is unreachable.
        UnverifiedSignatureError, CheckpointError: the checkpoint is not signed by the log.
        ProofError: the proof does not lead to the checkpoint's root.
    """
    entry = entry_bytes(envelope_json)
    digest = envelope_digest(entry)
    body = reader.get("/v1/log/proof/inclusion", digest=digest)
    note = str(body["checkpoint"])
    checkpoint = verify_checkpoint(note, vkey)
    index, size = int(body["log_index"]), int(body["tree_size"])
    if checkpoint.size != size:
        raise ProofError(
            f"the proof is for a tree of {size} entries, its checkpoint for {checkpoint.size}",
            proof="inclusion",
            field="tree_size",
        )
    proof = _hashes(body["hashes"], "inclusion")
    verify_inclusion(leaf_hash(entry), index, size, proof, checkpoint.root_hash)
    return InclusionCheck(index, digest, checkpoint, note)


def load_json(text: str | bytes, what: str) -> Any:
    """Parse a JSON file's text, naming the file in the error."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc
