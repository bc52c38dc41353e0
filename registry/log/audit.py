"""The audit of the whole log, run against the database: what a sceptical operator checks.

An audit holds the registry to three promises and reports every breach it finds, naming the
entry, node or row and why:

1. The log is what it says it is. Entries are numbered 0..size-1 without gaps; each entry's
   bytes hash to the leaf the tree committed to; every stored interior node is the hash of its
   two children; the head's size and frontier match; nothing is stored beyond the head (no
   partial write).
2. The log records the registry. Every attestation is in the log, and every stored envelope
   still serialises to exactly its logged bytes (a change to `attestations.envelope` shows).
3. The registry is what the log says. Every signature verifies again, and replaying the logged
   envelopes into a scratch database rebuilds every derived table exactly (`registry.replay`).
   The replay reads the logged bytes, not the envelope rows, so one edited row is one finding
   (breach 2, naming the entry, the attestation and the fields changed), not a cascade.

Saved checkpoints (from `studbook log checkpoint`, a witness, or an earlier audit) anchor it in
time: each must verify under the log's key and be consistent with the tree recomputed from the
entries, so a history rewritten consistently, entries and nodes alike, still fails there.

The audit reads everything in one snapshot (one transaction; REPEATABLE READ on PostgreSQL), so it
can run while the registry serves writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage.checkpoint import Checkpoint, verify_checkpoint
from lineage.errors import LineageError
from lineage.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MemoryTree,
    ProofError,
    leaf_hash,
    subtree_nodes,
    verify_consistency,
)

from ..models import Attestation
from ..models.log import LogEntry, LogHead, LogNode
from ..replay import Finding, ReplayReport, replay
from .leaf import b64, entry_bytes, envelope_digest

__all__ = ["AuditReport", "LogFinding", "audit"]

_HEAD = LogHead.__table__  # type: ignore[attr-defined]
_ENTRIES = LogEntry.__table__  # type: ignore[attr-defined]
_NODES = LogNode.__table__  # type: ignore[attr-defined]
_ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]
_BATCH = 2000
_NO_HASH = b"\x00" * 32  # stands in for a leaf that is gone, so later indices stay aligned


class LogFinding(StrEnum):
    """What an audit can find wrong with the log itself."""

    ENTRY_MISSING = "entry_missing"
    ENTRY_ALTERED = "entry_altered"
    ENTRY_UNEXPECTED = "entry_unexpected"
    ENVELOPE_ALTERED = "envelope_altered"
    ATTESTATION_MISSING = "attestation_missing"
    NOT_LOGGED = "not_logged"
    NODE_ALTERED = "node_altered"
    NODE_MISSING = "node_missing"
    NODE_UNEXPECTED = "node_unexpected"
    HEAD_ALTERED = "head_altered"
    CHECKPOINT_INVALID = "checkpoint_invalid"
    CHECKPOINT_INCONSISTENT = "checkpoint_inconsistent"


@dataclass
class AuditReport:
    """What the audit read, recomputed and found."""

    tree_size: int = 0
    """The head's size."""
    entries: int = 0
    """Entries read."""
    root_hash: bytes = EMPTY_ROOT
    """Root of the tree recomputed from the entries' bytes, at the head's size."""
    stored_root: bytes = EMPTY_ROOT
    """Root folded from the stored nodes, what checkpoints are signed over."""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    """Saved checkpoints that verified and were checked for consistency."""
    replay: ReplayReport | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No finding at all."""
        return not self.findings


def _entry_where(index: int, attestation_id: int | None) -> str:
    return f"log entry {index}" + (f" (attestation {attestation_id})" if attestation_id else "")


def audit(
    engine: Engine,
    *,
    vkey: str | None = None,
    checkpoints: Sequence[str] = (),
    rebuild: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> AuditReport:
    """Audit the log and the registry it records.

    Args:
        engine: the registry database.
        vkey: the log's verifier key, to check `checkpoints` against (required with them).
        checkpoints: saved signed checkpoints, each checked against the recomputed tree.
        rebuild: also re-verify every signature and rebuild the derived tables (`replay`).
        progress: called with (stage, count) as the audit advances.

    Returns:
        The report; `ok` when nothing was found.
    """
    report = AuditReport()
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        head = session.execute(
            select(_HEAD.c.size, _HEAD.c.frontier).where(_HEAD.c.id == 1)
        ).first()
        report.tree_size = int(head.size) if head is not None else 0
        content, stored_leaves = _read_entries(session, report, progress)
        tree = _check_nodes(session, report, stored_leaves)
        _check_frontier(report, tree, bytes(head.frontier) if head is not None else b"")
        report.stored_root = tree.root()
        content_tree = tree if content == stored_leaves else MemoryTree(content)
        report.root_hash = content_tree.root()
        _check_unlogged(session, report)
        if checkpoints:
            _check_checkpoints(report, content_tree, vkey, checkpoints)
        if rebuild:
            report.replay = replay(
                session, progress=(lambda n: progress("replay", n)) if progress else None
            )
            report.findings.extend(report.replay.findings)
    return report


def _read_entries(
    session: Session, report: AuditReport, progress: Callable[[str, int], None] | None
) -> tuple[list[bytes], list[bytes]]:
    """Check every entry; return the leaf hashes of the entries and the stored level-0 nodes."""
    stored = {
        int(i): bytes(h)
        for i, h in session.execute(select(_NODES.c.idx, _NODES.c.hash).where(_NODES.c.level == 0))
    }
    content: list[bytes] = []
    stmt = (
        select(
            _ENTRIES.c.idx,
            _ENTRIES.c.attestation_id,
            _ENTRIES.c.envelope_digest,
            _ENTRIES.c.entry,
            _ATTESTATIONS.c.id.label("att_id"),
            _ATTESTATIONS.c.envelope,
        )
        .outerjoin(_ATTESTATIONS, _ATTESTATIONS.c.id == _ENTRIES.c.attestation_id)
        .order_by(_ENTRIES.c.idx)
        .execution_options(yield_per=_BATCH)
    )
    add = report.findings.append
    for row in session.execute(stmt):
        index, entry, att = int(row.idx), bytes(row.entry), row.attestation_id
        where = _entry_where(index, att)
        while len(content) < index:  # a gap: the entries between are gone
            gone = len(content)
            add(
                Finding(
                    LogFinding.ENTRY_MISSING,
                    _entry_where(gone, None),
                    "the entry is not in log_entries: it was deleted (the tree still commits "
                    "to its leaf)"
                    if gone in stored
                    else "the entry and its leaf are not stored",
                    log_index=gone,
                )
            )
            content.append(stored.get(gone, _NO_HASH))
        report.entries += 1
        leaf = leaf_hash(entry)
        content.append(leaf)
        if index >= report.tree_size:
            add(
                Finding(
                    LogFinding.ENTRY_UNEXPECTED,
                    where,
                    f"stored beyond the head's size {report.tree_size}: a partial or forged append",
                    index,
                    att,
                )
            )
        if index in stored and stored[index] != leaf:
            add(
                Finding(
                    LogFinding.ENTRY_ALTERED,
                    where,
                    f"the stored bytes hash to leaf {b64(leaf)}, but the tree committed to "
                    f"{b64(stored[index])}: the entry was changed after it was logged",
                    index,
                    att,
                )
            )
        if row.envelope_digest != envelope_digest(entry):
            add(
                Finding(
                    LogFinding.ENTRY_ALTERED,
                    where,
                    f"envelope_digest is {row.envelope_digest}, the entry's sha256 is "
                    f"{envelope_digest(entry)}",
                    index,
                    att,
                )
            )
        if row.att_id is None:
            add(
                Finding(
                    LogFinding.ATTESTATION_MISSING,
                    where,
                    f"attestation {att} is no longer stored",
                    index,
                    att,
                )
            )
        else:
            now = entry_bytes(row.envelope)
            if now != entry:
                add(
                    Finding(
                        LogFinding.ENVELOPE_ALTERED,
                        where,
                        f"attestations.envelope no longer serialises to the logged bytes "
                        f"(first difference at byte {_first_difference(now, entry)}"
                        f"{_changed_fields(row.envelope, entry)}): the stored envelope was "
                        "changed after it was accepted; the audit replays the logged bytes",
                        index,
                        att,
                    )
                )
        if progress is not None and report.entries % 10_000 == 0:
            progress("entries", report.entries)
    while len(content) < report.tree_size:
        gone = len(content)
        add(
            Finding(
                LogFinding.ENTRY_MISSING,
                _entry_where(gone, None),
                f"the head's size is {report.tree_size}, but there is no entry {gone}",
                log_index=gone,
            )
        )
        content.append(stored.get(gone, _NO_HASH))
    stored_leaves = [stored.get(i, _NO_HASH) for i in range(len(content))]
    return content, stored_leaves


def _changed_fields(stored: object, entry: bytes) -> str:
    """`; fields changed: a, b` naming the top-level fields that differ, when both parse."""
    try:
        logged = json.loads(entry)
    except ValueError:
        return ""
    if not isinstance(stored, dict) or not isinstance(logged, dict):
        return ""
    names = sorted(k for k in stored.keys() | logged.keys() if stored.get(k) != logged.get(k))
    return f"; fields changed: {', '.join(map(str, names))}" if names else ""


def _first_difference(a: bytes, b: bytes) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _check_nodes(session: Session, report: AuditReport, leaves: list[bytes]) -> MemoryTree:
    """Rebuild the tree from the stored leaves and compare every stored node with it.

    Nodes stream in (level, index) order, so a gap in a level shows as a jump in the index.
    """
    size = report.tree_size
    tree = MemoryTree(leaves[:size])
    add = report.findings.append
    expected_next: dict[int, int] = {}

    def missing(level: int, start: int, end: int) -> None:
        for i in range(start, min(end, start + 100)):  # a hundred per run is enough to act on
            add(
                Finding(
                    LogFinding.NODE_MISSING,
                    f"node (level {level}, index {i})",
                    "a complete subtree of the log has no stored hash: proofs that need it fail",
                )
            )

    rows = session.execute(
        select(_NODES.c.level, _NODES.c.idx, _NODES.c.hash)
        .order_by(_NODES.c.level, _NODES.c.idx)
        .execution_options(yield_per=_BATCH * 5)
    )
    for level, idx, h in rows:
        level, idx, h = int(level), int(idx), bytes(h)
        where = f"node (level {level}, index {idx})"
        if (idx + 1) << level > size:
            add(
                Finding(
                    LogFinding.NODE_UNEXPECTED,
                    where,
                    f"covers leaves up to {((idx + 1) << level) - 1}, beyond the head's size "
                    f"{size}: a partial or forged append",
                )
            )
            continue
        if idx > expected_next.get(level, 0):
            missing(level, expected_next.get(level, 0), idx)
        expected_next[level] = idx + 1
        if level and h != tree.get_node(level, idx):
            add(
                Finding(
                    LogFinding.NODE_ALTERED,
                    where,
                    f"stored {b64(h)}, but its children hash to {b64(tree.get_node(level, idx))}",
                )
            )
    for level in range(size.bit_length()):
        if expected_next.get(level, 0) < size >> level:
            missing(level, expected_next.get(level, 0), size >> level)
    return tree


def _check_frontier(report: AuditReport, tree: MemoryTree, packed: bytes) -> None:
    """The head's frontier must be the stored tree's right edge: appends build on it."""
    nodes = subtree_nodes(0, report.tree_size) if report.tree_size else ()
    if len(packed) != HASH_SIZE * len(nodes):
        report.findings.append(
            Finding(
                LogFinding.HEAD_ALTERED,
                "log head",
                f"the frontier holds {len(packed)} bytes, a tree of {report.tree_size} entries "
                f"needs {HASH_SIZE * len(nodes)}",
            )
        )
        return
    for k, (level, idx) in enumerate(nodes):
        have = packed[k * HASH_SIZE : (k + 1) * HASH_SIZE]
        if have != tree.get_node(level, idx):
            report.findings.append(
                Finding(
                    LogFinding.HEAD_ALTERED,
                    "log head",
                    f"the frontier's node (level {level}, index {idx}) is {b64(have)}, the "
                    f"stored leaves hash to {b64(tree.get_node(level, idx))}: the next append "
                    "would build on a forged edge",
                )
            )


def _check_unlogged(session: Session, report: AuditReport) -> None:
    rows = session.execute(
        select(_ATTESTATIONS.c.id)
        .outerjoin(_ENTRIES, _ENTRIES.c.attestation_id == _ATTESTATIONS.c.id)
        .where(_ENTRIES.c.idx.is_(None))
        .order_by(_ATTESTATIONS.c.id)
    )
    for (att_id,) in rows:
        report.findings.append(
            Finding(
                LogFinding.NOT_LOGGED,
                f"attestation {att_id}",
                "stored as accepted, but not in the log",
                attestation_id=att_id,
            )
        )


def _check_checkpoints(
    report: AuditReport, tree: MemoryTree, vkey: str | None, notes: Sequence[str]
) -> None:
    if vkey is None:
        raise ValueError("checking saved checkpoints needs the log's verifier key")
    for n, note in enumerate(notes):
        where = f"saved checkpoint #{n + 1}"
        try:
            cp = verify_checkpoint(note, vkey)
        except LineageError as exc:
            report.findings.append(Finding(LogFinding.CHECKPOINT_INVALID, where, exc.message))
            continue
        where = f"saved checkpoint #{n + 1} (size {cp.size})"
        if cp.size > tree.size:
            report.findings.append(
                Finding(
                    LogFinding.CHECKPOINT_INCONSISTENT,
                    where,
                    f"the log has only {tree.size} entries: entries were removed",
                )
            )
            continue
        try:
            verify_consistency(
                cp.size, tree.size, cp.root_hash, tree.root(), tree.consistency_proof(cp.size)
            )
        except ProofError as exc:
            report.findings.append(
                Finding(
                    LogFinding.CHECKPOINT_INCONSISTENT,
                    where,
                    f"{exc.message}; the entries now hash to root {b64(tree.root(cp.size))} at "
                    f"size {cp.size}, the checkpoint says {b64(cp.root_hash)}",
                )
            )
            continue
        report.checkpoints.append(cp)
