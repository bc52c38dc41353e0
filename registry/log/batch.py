"""Appending many entries at once: one head lock, one write per table, one signed checkpoint.

A batch of registrations (`registry/attestations/batch.py`) is accepted in one transaction, so
its entries take consecutive indices under one lock of the head, exactly as that many single
appends in a row would; what a batch saves is the per-entry work that does not depend on the
entry: the head read and write, a statement per table per entry, and above all a checkpoint
signature and an inclusion proof per entry at an intermediate tree size. Every entry's proof is
given in the tree the batch ends, which the one checkpoint signs, so each is as complete and
offline-verifiable as a single append's answer.

The nodes an append needs are the head's frontier and the nodes earlier appends of the batch
created (see `service.append`); the audit paths in the final tree need, besides those, only the
old frontier, so the whole batch normally reads nothing but the head.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from lineage.merkle import NodeId, leaf_hash, new_nodes_for_append, suffix_inclusion_proofs

from ..db import sql, write_rows
from ..models import utcnow
from . import service
from .leaf import b64, envelope_digest
from .schemas import InclusionProofPublic


def append_many(
    session: Session, items: Sequence[tuple[int, bytes]], notary: service.Notary
) -> list[InclusionProofPublic]:
    """Append `(attestation id, entry bytes)` in order, inside the caller's write transaction.

    Returns:
        Each entry's inclusion proof in the tree the batch ends, all with that tree's one
        signed checkpoint.
    """
    if not items:
        return []
    head = service._lock_head(session)
    start = head.size
    known: dict[NodeId, bytes] = dict(head.frontier)
    entries: list[tuple[int, int, str, bytes]] = []  # idx, attestation_id, digest, entry
    nodes: list[tuple[int, int, bytes]] = []
    leaves: list[bytes] = []
    for k, (attestation_id, entry) in enumerate(items):
        index = start + k
        leaf = leaf_hash(entry)
        if missing := [n for n in service._left_siblings(index) if n not in known]:
            known.update(service._fetch(session, missing))
        new = new_nodes_for_append(index, leaf, lambda lv, ix: service._need(known, lv, ix))
        known.update({(lv, ix): h for lv, ix, h in new})
        nodes.extend(new)
        leaves.append(leaf)
        entries.append((index, attestation_id, envelope_digest(entry), entry))
    size = start + len(items)

    def get(level: int, idx: int) -> bytes:
        node = known.get((level, idx))
        if node is None:  # not expected: the old frontier and the batch's nodes are in hand
            known.update(service._fetch(session, [(level, idx)]))
            node = service._need(known, level, idx)
        return node

    root, paths = suffix_inclusion_proofs(start, size, get)
    frontier = b"".join(service._need(known, *n) for n in service._frontier_nodes(size))
    # Driver-level writes (COPY on PostgreSQL): the rows are plain ints and bytes, and
    # SQLAlchemy's per-row parameter processing cost more than the inserts.
    write_rows(
        session,
        "log_entries",
        ("idx", "attestation_id", "envelope_digest", "entry"),
        entries,
    )
    write_rows(session, "log_nodes", ("level", "idx", "hash"), nodes)
    done = sql(
        session,
        "UPDATE log_head SET size = :size, frontier = :frontier, updated_at = :now "
        "WHERE id = 1 AND size = :start",
        {"size": size, "frontier": frontier, "now": utcnow(), "start": start},
    )
    if done != 1:  # pragma: no cover - the row is locked; guards the scheme itself
        raise RuntimeError("the log head moved while it was locked")
    checkpoint = notary.sign(size, root)
    root_b64 = b64(root)
    # A node's hash is in the path of every leaf on the other side of its split: encode it once.
    text: dict[bytes, str] = {}
    return [
        InclusionProofPublic.model_construct(
            log_index=start + k,
            tree_size=size,
            envelope_digest=entries[k][2],
            leaf_hash=b64(leaves[k]),
            root_hash=root_b64,
            hashes=[text.get(h) or text.setdefault(h, b64(h)) for h in paths[k]],
            checkpoint=checkpoint,
        )
        for k in range(len(items))
    ]
