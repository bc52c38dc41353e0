"""Merkle tree maths of the transparency log: RFC 9162 (Certificate Transparency v2), section 2.1.

Why RFC 9162: it is the tree every transparency ecosystem verifies (CT, the Go checksum database,
Sigstore's Rekor, C2SP tlog-checkpoint), so a Studbook checkpoint and its proofs can be checked by
tools that have never heard of Studbook. Leaves and interior nodes are hashed with distinct
prefixes (0x00, 0x01), so a leaf can never be passed off as a node (second-preimage attacks).

Storage scheme. The log stores, for every *complete* subtree, its hash under the key
`(level, index)`: the perfect subtree of 2**level leaves that starts at leaf `index * 2**level`.
Level 0 holds the leaf hashes. Appending leaf `i` completes exactly the subtrees whose last leaf is
`i`: the leaf itself plus one per trailing 1-bit of `i`, like carries in a binary counter
(`new_nodes_for_append`); that is at most log2(n) + 1 rows and two on average. A stored node never
changes afterwards, so the table is append-only and needs no locking beyond the append order.

Any tree size n is then a sum of distinct powers of two, and the tree of size n is the fold, right
to left, of the perfect subtrees of that binary decomposition (`root_plan`). Every node an RFC
inclusion or consistency proof needs is either one complete subtree or such a fold over the right
edge of the tree, so a proof for any historical size costs O(log n) stored reads and no hashing
beyond those folds. The `*_plan` functions name the nodes a result needs before any is read, so a
database can fetch them in one query; the `get_node` variants read them one by one.

Verification (`verify_inclusion`, `verify_consistency`) follows RFC 9162 2.1.3.2 and 2.1.4.2 step by
step and raises `ProofError` on failure. There is no boolean answer: a caller cannot forget to look.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence

from .errors import LineageError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "GetNode",
    "MemoryTree",
    "MissingNodeError",
    "NodeId",
    "Plan",
    "ProofError",
    "TreeRangeError",
    "consistency_proof",
    "consistency_proof_plan",
    "fold_nodes",
    "inclusion_proof",
    "inclusion_proof_plan",
    "leaf_hash",
    "new_nodes_for_append",
    "node_hash",
    "resolve_plan",
    "root_at",
    "root_from_leaves",
    "root_plan",
    "subtree_nodes",
    "suffix_inclusion_proofs",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256(""): the root of the empty tree (RFC 9162 2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

NodeId = tuple[int, int]
"""`(level, index)` of a complete subtree: leaves `[index * 2**level, (index + 1) * 2**level)`."""

GetNode = Callable[[int, int], bytes]
"""Reads the stored hash of complete subtree `(level, index)`; raises `MissingNodeError`."""

Plan = list[tuple[NodeId, ...]]
"""One entry per output hash: the complete subtrees, left to right, whose fold is that hash."""


class ProofError(LineageError):
    """A proof does not verify: the log misbehaved, or the proof, root or index was altered.

    Attributes:
        proof: "inclusion" or "consistency".
    """

    def __init__(self, message: str, *, proof: str, field: str | None = "proof") -> None:
        super().__init__(message, field=field)
        self.proof = proof


class TreeRangeError(LineageError):
    """A proof or root was asked for an index or size the tree cannot have (a client error)."""

    def __init__(self, message: str, *, index: int | None, size: int, field: str) -> None:
        super().__init__(message, field=field)
        self.index = index
        self.size = size


class MissingNodeError(LineageError):
    """The node store lacks a complete subtree it should hold: the store is behind or corrupt.

    This is the server's fault, never the client's: every node a valid request needs exists once
    the leaves up to the requested size were appended.
    """

    def __init__(self, level: int, index: int) -> None:
        super().__init__(f"the log has no stored node at level {level}, index {index}")
        self.level = level
        self.index = index


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one log entry (RFC 9162 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node (RFC 9162 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) computed from every leaf hash, straight from the RFC's recursive definition.

    This is the reference the stored-node arithmetic is tested against, and what an auditor
    holding a full copy of the log recomputes. It costs n - 1 node hashes.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


def new_nodes_for_append(
    index: int, leaf: bytes, get_node: GetNode
) -> list[tuple[int, int, bytes]]:
    """The complete subtrees that appending leaf hash `leaf` at position `index` creates.

    The caller stores every returned `(level, index, hash)` row in the same transaction as the
    entry. Appending must be strictly sequential: `index` is the tree size before the append, and
    the left siblings read here were stored by earlier appends.

    Args:
        index: the new leaf's position, equal to the tree size before the append.
        leaf: the new leaf's hash (`leaf_hash(entry)`).
        get_node: reads a stored node; only left siblings on the new leaf's path are read.

    Returns:
        `(0, index, leaf)` followed by one row per trailing 1-bit of `index`, bottom-up.

    Raises:
        ValueError: `index` is negative or `leaf` is not a 32-byte hash: a bug in the caller,
            which computes both itself.
    """
    if index < 0 or len(leaf) != HASH_SIZE:
        raise ValueError(f"cannot append a {len(leaf)}-byte leaf hash at index {index}")
    rows = [(0, index, leaf)]
    level, idx, h = 0, index, leaf
    while idx & 1:
        h = node_hash(get_node(level, idx - 1), h)
        level, idx = level + 1, idx >> 1
        rows.append((level, idx, h))
    return rows


def subtree_nodes(start: int, end: int) -> tuple[NodeId, ...]:
    """The complete subtrees, left to right, that make up the RFC subtree of leaves [start, end).

    The range must be a node of some RFC 9162 tree: a non-empty range whose start is a multiple of
    the smallest power of two >= its length. Such a range is one complete subtree or the right
    edge of a larger one, and its decomposition follows the binary digits of its length.
    """
    width = end - start
    if width <= 0 or start < 0 or start % (1 << (width - 1).bit_length()):
        raise ValueError(f"[{start}, {end}) is not a subtree of an RFC 9162 tree")
    out = []
    pos = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            out.append((level, pos >> level))
            pos += 1 << level
    return tuple(out)


def fold_nodes(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from the hashes of its complete subtrees, left to right.

    For subtrees P1..Pk of decreasing sizes this is H(P1, H(P2, ... H(Pk-1, Pk))): the RFC's split
    at the largest power of two, applied repeatedly down the right edge.
    """
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def resolve_plan(plan: Plan, get_node: GetNode) -> list[bytes]:
    """Turn a plan into hashes, reading each node once through `get_node`."""
    cache: dict[NodeId, bytes] = {}

    def read(node: NodeId) -> bytes:
        if node not in cache:
            cache[node] = get_node(*node)
        return cache[node]

    return [fold_nodes([read(n) for n in group]) for group in plan]


def root_plan(size: int) -> Plan:
    """The nodes whose fold is MTH(D[size]); empty for the empty tree (its root is `EMPTY_ROOT`)."""
    if size < 0:
        raise TreeRangeError("size must be >= 0", index=None, size=size, field="size")
    return [subtree_nodes(0, size)] if size else []


def root_at(size: int, get_node: GetNode) -> bytes:
    """MTH of the first `size` leaves, from at most log2(size) + 1 stored nodes.

    Raises:
        TreeRangeError: `size` is negative.
    """
    plan = root_plan(size)
    return resolve_plan(plan, get_node)[0] if plan else EMPTY_ROOT


def inclusion_proof_plan(index: int, size: int) -> Plan:
    """The nodes of PATH(index, D[size]) (RFC 9162 2.1.3.1), in proof order (leaf side first).

    Walking down from the root, the sibling of the branch that holds `index` is a proof element.
    Siblings on the left are always complete subtrees; the first sibling on the right may be the
    right edge of the tree, after which every range is complete, so at most one element needs a
    fold and the proof reads O(log size) nodes.

    Raises:
        TreeRangeError: `index` is not in [0, size).
    """
    _check_index(index, size)
    path: Plan = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_nodes(start + k, end))
            end = start + k
        else:
            path.append(subtree_nodes(start, start + k))
            start += k
    path.reverse()
    return path


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """The audit path proving leaf `index` is in the tree of `size` leaves (RFC 9162 2.1.3.1).

    Raises:
        TreeRangeError: `index` is not in [0, size).
    """
    return resolve_plan(inclusion_proof_plan(index, size), get_node)


def suffix_inclusion_proofs(
    first: int, size: int, get_node: GetNode
) -> tuple[bytes, list[list[bytes]]]:
    """MTH(D[size]) and PATH(i, D[size]) for every leaf i in [first, size), in one pass.

    A batch of appends answers every new leaf with its proof in the tree the batch ends. Proving
    each leaf on its own walks the tree from the root once per leaf; this walks it once for the
    whole suffix, computing each node's hash once and handing it to every leaf of the batch on
    the other side of the split. Ranges wholly before `first` are complete subtrees (the left
    child of a node that holds a leaf of the suffix) and are read with `get_node`; the rest is
    hashed from the suffix's leaves, which `get_node` reads at level 0. The result equals
    `inclusion_proof(i, size, get_node)` for each i and `root_at(size, get_node)`.

    Raises:
        TreeRangeError: not 0 <= first < size.
    """
    _check_index(first, size)
    paths: list[list[bytes]] = [[] for _ in range(size - first)]

    def mth(start: int, end: int) -> bytes:
        if end <= first:  # a left child wholly before the suffix: one complete subtree
            return get_node((end - start).bit_length() - 1, start // (end - start))
        if end - start == 1:
            return get_node(0, start)
        mid = start + _split(end - start)
        left, right = mth(start, mid), mth(mid, end)
        # The recursion has appended the deeper levels already: each path runs leaf side first.
        for i in range(max(start, first) - first, mid - first):
            paths[i].append(right)
        for i in range(max(mid, first) - first, end - first):
            paths[i].append(left)
        return node_hash(left, right)

    return mth(0, size), paths


def consistency_proof_plan(old_size: int, new_size: int) -> Plan:
    """The nodes of PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1), in proof order.

    SUBPROOF, unrolled: while the old tree's edge lies in the right half, the left half is shared
    and its hash is an element; once it lies in the left half, the right half is new and its hash
    is an element. The walk stops at the node whose range is exactly the old tree's remainder;
    that node is an element unless it is the whole old tree (the verifier has that root already).

    Raises:
        TreeRangeError: not 0 <= old_size <= new_size.
    """
    if old_size < 0 or new_size < old_size:
        raise TreeRangeError(
            f"sizes must satisfy 0 <= old_size <= new_size, got {old_size} and {new_size}",
            index=None,
            size=new_size,
            field="old_size",
        )
    if old_size in (0, new_size):
        return []
    proof: Plan = []
    start, end, complete = 0, new_size, True
    m = old_size
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_nodes(start + k, end))
            end = start + k
        else:
            proof.append(subtree_nodes(start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree_nodes(start, end))
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """The proof that the tree of `new_size` leaves extends the tree of `old_size` leaves.

    Raises:
        TreeRangeError: not 0 <= old_size <= new_size.
    """
    return resolve_plan(consistency_proof_plan(old_size, new_size), get_node)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` is at `index` in the tree of `size` leaves whose root is `root`.

    RFC 9162 2.1.3.2, step for step. Proof elements and hashes must be 32 bytes: a short or long
    element cannot be a SHA-256 node and is rejected before any hashing.

    Raises:
        ProofError: the proof does not verify, with the step that failed in its message.
    """
    _check_hash(leaf, what="leaf hash", proof="inclusion", field="leaf_hash")
    _check_hash(root, what="root hash", proof="inclusion", field="root")
    for i, p in enumerate(proof):
        _check_hash(p, what=f"proof[{i}]", proof="inclusion", field="proof")
    # 1. If leaf_index is greater than or equal to tree_size, then stop and fail.
    if index < 0 or index >= size:
        raise ProofError(
            f"leaf index {index} is not in a tree of size {size}", proof="inclusion", field="index"
        )
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = index, size - 1
    # 3. Set r to hash.
    r = leaf
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(
                f"proof has {len(proof)} elements, more than a tree of size {size} needs",
                proof="inclusion",
            )
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #     LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # Otherwise: Set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash.
    if sn != 0:
        raise ProofError(
            f"proof has {len(proof)} elements, fewer than a tree of size {size} needs",
            proof="inclusion",
        )
    if not hmac.compare_digest(r, root):
        raise ProofError(
            "the proof leads to a different root: the leaf, index, proof or root was altered",
            proof="inclusion",
            field="root",
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (`new_size`, `new_root`) extends the tree (`old_size`, `old_root`).

    RFC 9162 2.1.4.2 defines the check for 0 < old_size < new_size. The two edge cases follow
    RFC 9162 2.1.4.1 (the proof is empty) and are checked strictly: equal sizes need equal roots,
    and an empty old tree must have the empty root, so a forged size-0 checkpoint fails too.

    Raises:
        ProofError: the proof does not verify, with the step that failed in its message.
    """
    _check_hash(old_root, what="old root hash", proof="consistency", field="old_root")
    _check_hash(new_root, what="new root hash", proof="consistency", field="new_root")
    for i, c in enumerate(proof):
        _check_hash(c, what=f"proof[{i}]", proof="consistency", field="proof")
    if old_size < 0 or new_size < old_size:
        raise ProofError(
            f"a tree of size {new_size} cannot extend one of size {old_size}",
            proof="consistency",
            field="old_size",
        )
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofError(
                f"the proof from size {old_size} to {new_size} must be empty",
                proof="consistency",
            )
        if old_size == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise ProofError(
                "a tree of size 0 must have the empty root", proof="consistency", field="old_root"
            )
        if old_size == new_size and not hmac.compare_digest(old_root, new_root):
            raise ProofError(
                f"two roots for the same size {old_size}: the log forked",
                proof="consistency",
                field="new_root",
            )
        return
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not proof:
        raise ProofError("the consistency proof is empty", proof="consistency")
    path = list(proof)
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(
                f"proof has {len(proof)} elements, more than sizes {old_size} to {new_size} need",
                proof="consistency",
            )
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).  ii. Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #      LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    if sn != 0:
        raise ProofError(
            f"proof has {len(proof)} elements, fewer than sizes {old_size} to {new_size} need",
            proof="consistency",
        )
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(
            "the proof does not lead to the old root: the proof or old root was altered",
            proof="consistency",
            field="old_root",
        )
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(
            "the proof does not lead to the new root: history was rewritten, or the proof or new "
            "root was altered",
            proof="consistency",
            field="new_root",
        )


class MemoryTree:
    """An in-memory log: the node store the registry keeps in its database, held in lists.

    Used by tests, by the offline verifier to recompute a log it downloaded, by audits, and by the
    benchmark. Nodes of one level are created in index order, so each level is a plain list
    (`levels[level][index]`); level 0 is the leaf hashes.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_leaf_hash(h)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        """A tree of the given log entries, hashed as leaves."""
        return cls(leaf_hash(e) for e in entries)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def get_node(self, level: int, index: int) -> bytes:
        """The stored hash of complete subtree `(level, index)`.

        Raises:
            MissingNodeError: that subtree is not complete yet.
        """
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise MissingNodeError(level, index)

    def append(self, entry: bytes) -> int:
        """Append a log entry; returns its index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a leaf hash; returns its index."""
        index = self.size
        for level, idx, h in new_nodes_for_append(index, leaf, self.get_node):
            if level == len(self._levels):
                self._levels.append([])
            if idx != len(self._levels[level]):  # pragma: no cover - guards the scheme itself
                raise AssertionError(f"node ({level}, {idx}) appended out of order")
            self._levels[level].append(h)
        return index

    def leaf_hash_at(self, index: int) -> bytes:
        """The stored hash of leaf `index`."""
        return self.get_node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all)."""
        return root_at(self._size(size), self.get_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof for leaf `index` in the tree of `size` leaves (default: all)."""
        return inclusion_proof(index, self._size(size), self.get_node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from `old_size` to `new_size` leaves (default: all)."""
        return consistency_proof(old_size, self._size(new_size), self.get_node)

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if size > self.size:
            raise TreeRangeError(
                f"size {size} is larger than the log ({self.size} leaves)",
                index=None,
                size=size,
                field="size",
            )
        return size


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise TreeRangeError(
            f"leaf index must be in [0, {size}), got {index}", index=index, size=size, field="index"
        )


def _check_hash(value: bytes, *, what: str, proof: str, field: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {size}", proof=proof, field=field)
