"""RFC 9162 Merkle maths: published vectors, the RFC's recursive definitions as an oracle, and
tampering that must be caught.

The stored-node arithmetic (complete subtrees, folds over the right edge) is an optimisation of
the RFC's recursive MTH/PATH/SUBPROOF; `_Reference` transcribes those definitions directly, and
every proof the node store produces must equal the reference and verify against a root
recomputed from all the leaves.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.errors import LineageError
from lineage.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    MissingNodeError,
    ProofError,
    TreeRangeError,
    consistency_proof,
    consistency_proof_plan,
    inclusion_proof,
    inclusion_proof_plan,
    leaf_hash,
    new_nodes_for_append,
    node_hash,
    resolve_plan,
    root_at,
    root_from_leaves,
    root_plan,
    subtree_nodes,
    suffix_inclusion_proofs,
    verify_consistency,
    verify_inclusion,
)

# --- Published vectors -------------------------------------------------------------------------
# The 8-leaf set shared by the CT reference implementations (google/certificate-transparency
# merkle_tree_test, google/trillian merkle testonly), copied from transparency-dev/merkle
# proof/verify_test.go (Apache-2.0): `leaves`, `roots`, `inclusionProofs`, `consistencyProofs`.
# That file numbers leaves from 1 in `inclusionProofs`; the indices below are 0-based.

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

ROOTS = [  # ROOTS[n - 1] is MTH(LEAVES[:n])
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


INCLUSION_VECTORS = [  # (0-based index, size, proof)
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

CONSISTENCY_VECTORS = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.fixture(scope="module")
def vector_tree() -> MemoryTree:
    return MemoryTree.from_entries(LEAVES)


def test_hashing_primitives_match_rfc() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert root_from_leaves([]) == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_vectors(vector_tree: MemoryTree, size: int) -> None:
    assert vector_tree.root(size) == ROOTS[size - 1]
    assert root_from_leaves([leaf_hash(e) for e in LEAVES[:size]]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_vectors(
    vector_tree: MemoryTree, index: int, size: int, proof: list[bytes]
) -> None:
    assert vector_tree.inclusion_proof(index, size) == proof
    leaf = leaf_hash(LEAVES[index])
    root = ROOTS[size - 1]
    verify_inclusion(leaf, index, size, proof, root)
    # The probes of transparency-dev/merkle's corruptInclusionProof: every one must be refused.
    probes: list[tuple[bytes, int, int, Sequence[bytes], bytes]] = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
    ]
    for i in range(len(proof)):
        probes.append((leaf, index, size, _flip(proof, i, 3), root))
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    for probe in probes:
        with pytest.raises(ProofError):
            verify_inclusion(*probe)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_vectors(
    vector_tree: MemoryTree, old: int, new: int, proof: list[bytes]
) -> None:
    assert vector_tree.consistency_proof(old, new) == proof
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    verify_consistency(old, new, r1, r2, proof)
    if not proof:
        return
    # The probes of transparency-dev/merkle's corruptConsistencyProof.
    probes: list[tuple[int, int, bytes, bytes, Sequence[bytes]]] = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, SOME_HASH, r2, proof),
        (old, new, r1, SOME_HASH, proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        probes.append((old, new, r1, r2, _flip(proof, i, 4)))
    for probe in probes:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


def test_consistency_edge_cases() -> None:
    # Adapted from transparency-dev/merkle TestVerifyConsistency, where "don't care" roots are
    # accepted for size 0; here an empty old tree must carry the empty root.
    r1, r2 = leaf_hash(b"1"), leaf_hash(b"2")
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 1, EMPTY_ROOT, r2, [])
    verify_consistency(1, 1, r2, r2, [])
    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (0, 0, EMPTY_ROOT, r2, []),  # two roots for the empty tree
        (1, 1, r1, r2, []),  # a fork at the same size
        (0, 1, r1, r2, []),  # size 0 with a non-empty root
        (1, 0, r1, r2, []),  # time travel
        (2, 1, r1, r2, []),
        (1, 2, r1, r2, []),  # empty proof for a real extension
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),  # nothing to prove, yet a proof
        (0, 1, EMPTY_ROOT, r2, [EMPTY_ROOT]),
        (1, 1, r1, r1, [EMPTY_ROOT]),
        (1, 2, r1[:31], r2, [r1]),  # truncated hash
    ]
    for probe in bad:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


def test_inclusion_edge_cases() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)  # a one-leaf tree's root is its leaf
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], leaf)
    for wrong_leaf, wrong_root in [(b"", leaf), (leaf, b""), (b"", b""), (leaf, leaf + b"\0")]:
        with pytest.raises(ProofError):
            verify_inclusion(wrong_leaf, 0, 1, [], wrong_root)


def test_failures_say_which_step_failed(vector_tree: MemoryTree) -> None:
    leaf, proof, root = leaf_hash(LEAVES[5]), vector_tree.inclusion_proof(5, 8), ROOTS[7]
    with pytest.raises(ProofError, match="more than a tree of size 8 needs") as exc:
        verify_inclusion(leaf, 5, 8, [*proof, SOME_HASH], root)
    assert exc.value.proof == "inclusion"
    with pytest.raises(ProofError, match="fewer than a tree of size 8 needs"):
        verify_inclusion(leaf, 5, 8, proof[:-1], root)
    with pytest.raises(ProofError, match="different root") as exc:
        verify_inclusion(leaf, 5, 8, proof, ROOTS[6])
    assert exc.value.field == "root"
    with pytest.raises(ProofError, match="must be 32 bytes") as exc:
        verify_inclusion(leaf, 5, 8, [*proof[:-1], b"x"], root)
    assert exc.value.field == "proof"

    proof = vector_tree.consistency_proof(6, 8)
    with pytest.raises(ProofError, match="more than sizes 6 to 8 need") as exc:
        verify_consistency(6, 8, ROOTS[5], ROOTS[7], [*proof, SOME_HASH])
    assert exc.value.proof == "consistency"
    with pytest.raises(ProofError, match="fewer than sizes 6 to 8 need"):
        verify_consistency(6, 8, ROOTS[5], ROOTS[7], proof[:-1])
    with pytest.raises(ProofError, match="old root") as exc:
        verify_consistency(6, 8, ROOTS[4], ROOTS[7], proof)
    assert exc.value.field == "old_root"
    with pytest.raises(ProofError, match="history was rewritten") as exc:
        verify_consistency(6, 8, ROOTS[5], ROOTS[6], proof)
    assert exc.value.field == "new_root"
    assert isinstance(exc.value, LineageError)


# --- The RFC's definitions as an oracle --------------------------------------------------------


class _Reference:
    """RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1 transcribed literally over a list of leaf hashes, with
    MTH memoised by range so that exhaustive checks stay fast."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.mth = functools.lru_cache(maxsize=None)(self._mth)

    @staticmethod
    def _k(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self.leaves[start]
        k = self._k(n)
        return node_hash(self.mth(start, start + k), self.mth(start + k, end))

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = self._k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self._k(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def consistency(self, m: int, n: int) -> list[bytes]:
        return [] if m in (0, n) else self.subproof(m, 0, n, True)


def _distinct_tree(n: int, salt: bytes = b"") -> tuple[MemoryTree, list[bytes]]:
    # Distinct leaves: with repeated leaves, swapping two equal siblings changes nothing, and a
    # "wrong index" could legitimately verify.
    leaves = [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]
    return MemoryTree(leaves), leaves


EXHAUSTIVE = 128


@pytest.fixture(scope="module")
def big_tree() -> tuple[MemoryTree, _Reference, list[bytes]]:
    tree, leaves = _distinct_tree(300)
    ref = _Reference(leaves)
    roots = [root_from_leaves(leaves[:n]) for n in range(301)]
    return tree, ref, roots


def test_every_proof_up_to_128_leaves(big_tree: tuple[MemoryTree, _Reference, list[bytes]]) -> None:
    tree, ref, roots = big_tree
    for n in range(1, EXHAUSTIVE + 1):
        assert tree.root(n) == roots[n]
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            assert proof == ref.path(i, 0, n)
            verify_inclusion(tree.leaf_hash_at(i), i, n, proof, roots[n])
        for m in range(n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ref.consistency(m, n)
            verify_consistency(m, n, roots[m], roots[n], proof)


def test_suffix_proofs_equal_one_proof_per_leaf(
    big_tree: tuple[MemoryTree, _Reference, list[bytes]],
) -> None:
    """A batch's proofs in one pass: every suffix of every tree up to 128 leaves (and a few
    larger), the same paths and root as leaf by leaf, reading only the suffix's leaves and the
    complete subtrees of the tree before it (what a batch append has in hand)."""
    tree, ref, roots = big_tree
    sizes = [*range(1, EXHAUSTIVE + 1), 200, 255, 256, 257, 300]
    for n in sizes:
        for first in range(n) if n <= EXHAUSTIVE else (0, 1, n // 3, n - 100, n - 1):
            get, reads = _counting(tree)
            root, paths = suffix_inclusion_proofs(first, n, get)
            assert root == roots[n]
            assert paths == [ref.path(i, 0, n) for i in range(first, n)]
            before = set(subtree_nodes(0, first)) if first else set()
            assert {r for r in reads if not (r[0] == 0 and r[1] >= first)} <= before
    with pytest.raises(TreeRangeError):
        suffix_inclusion_proofs(5, 5, tree.get_node)
    with pytest.raises(TreeRangeError):
        suffix_inclusion_proofs(-1, 5, tree.get_node)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300))
def test_random_sizes_every_index_and_old_size(
    big_tree: tuple[MemoryTree, _Reference, list[bytes]], n: int
) -> None:
    tree, ref, roots = big_tree
    assert tree.root(n) == roots[n]
    for i in range(n):
        proof = tree.inclusion_proof(i, n)
        assert proof == ref.path(i, 0, n)
        verify_inclusion(tree.leaf_hash_at(i), i, n, proof, roots[n])
    for m in range(n + 1):
        proof = tree.consistency_proof(m, n)
        assert proof == ref.consistency(m, n)
        verify_consistency(m, n, roots[m], roots[n], proof)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 300))
def test_tampered_inclusion_fails(
    big_tree: tuple[MemoryTree, _Reference, list[bytes]], data: st.DataObject, n: int
) -> None:
    tree, _, roots = big_tree
    i = data.draw(st.integers(0, n - 1), label="index")
    leaf, proof, root = tree.leaf_hash_at(i), tree.inclusion_proof(i, n), roots[n]
    kind = data.draw(
        st.sampled_from(["flip", "drop", "extra", "index", "size", "leaf", "root"]), label="kind"
    )
    args: tuple[bytes, int, int, Sequence[bytes], bytes]
    if kind == "flip" and proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        args = (leaf, i, n, _flip(proof, j, bit), root)
    elif kind == "drop" and proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        args = (leaf, i, n, proof[:j] + proof[j + 1 :], root)
    elif kind == "extra":
        j = data.draw(st.integers(0, len(proof)))
        args = (leaf, i, n, [*proof[:j], SOME_HASH, *proof[j:]], root)
    elif kind == "index":
        other = data.draw(st.integers(0, n - 1).filter(lambda x: x != i)) if n > 1 else i + 1
        args = (leaf, other, n, proof, root)
    elif kind == "size":
        # A proof for another size verifies exactly when it is that size's own proof.
        other = data.draw(st.integers(i + 1, 300).filter(lambda x: x != n))
        if tree.inclusion_proof(i, other) == proof:
            verify_inclusion(leaf, i, other, proof, roots[other])
            return
        args = (leaf, i, other, proof, roots[other])
    elif kind == "leaf":
        args = (leaf_hash(b"not in the log"), i, n, proof, root)
    else:
        args = (leaf, i, n, proof, roots[n - 1] if n > 1 else SOME_HASH)
    with pytest.raises(ProofError):
        verify_inclusion(*args)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(2, 300))
def test_tampered_consistency_fails(
    big_tree: tuple[MemoryTree, _Reference, list[bytes]], data: st.DataObject, n: int
) -> None:
    tree, _, roots = big_tree
    m = data.draw(st.integers(1, n - 1), label="old_size")
    proof = tree.consistency_proof(m, n)
    kind = data.draw(
        st.sampled_from(["flip", "drop", "extra", "old_root", "new_root", "old_size", "rewrite"]),
        label="kind",
    )
    args: tuple[int, int, bytes, bytes, Sequence[bytes]]
    if kind == "flip":
        j = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        args = (m, n, roots[m], roots[n], _flip(proof, j, bit))
    elif kind == "drop":
        j = data.draw(st.integers(0, len(proof) - 1))
        args = (m, n, roots[m], roots[n], proof[:j] + proof[j + 1 :])
    elif kind == "extra":
        j = data.draw(st.integers(0, len(proof)))
        args = (m, n, roots[m], roots[n], [*proof[:j], SOME_HASH, *proof[j:]])
    elif kind == "old_root":
        args = (m, n, roots[m - 1], roots[n], proof)
    elif kind == "new_root":
        args = (m, n, roots[m], roots[n - 1], proof)
    elif kind == "old_size":
        other = data.draw(st.integers(1, n - 1).filter(lambda x: x != m)) if n > 2 else m + 1
        if other < n and tree.consistency_proof(other, n) == proof:
            verify_consistency(other, n, roots[other], roots[n], proof)
            return
        args = (other, n, roots[other], roots[n], proof)
    else:
        # The log rewrote one entry below the old size and recomputed everything: the old
        # checkpoint's root can no longer be reached.
        j = data.draw(st.integers(0, m - 1), label="rewritten")
        leaves = [tree.leaf_hash_at(x) for x in range(n)]
        leaves[j] = leaf_hash(b"rewritten")
        forged = MemoryTree(leaves)
        args = (m, n, roots[m], forged.root(), forged.consistency_proof(m, n))
    with pytest.raises(ProofError):
        verify_consistency(*args)


# --- The storage scheme ------------------------------------------------------------------------


def test_append_creates_one_node_per_trailing_one_bit() -> None:
    tree = MemoryTree()
    total = 0
    store: dict[tuple[int, int], bytes] = {}
    for i in range(1000):
        h = leaf_hash(i.to_bytes(4, "big"))
        rows = new_nodes_for_append(i, h, lambda level, idx: store[(level, idx)])
        trailing_ones = (~i & (i + 1)).bit_length() - 1
        assert len(rows) == 1 + trailing_ones
        assert rows[0] == (0, i, h)
        for level, idx, node in rows:
            assert (idx + 1) << level == i + 1  # each new node ends at the new leaf
            store[(level, idx)] = node
        total += len(rows)
        tree.append_leaf_hash(h)
        n = i + 1
        assert total == 2 * n - bin(n).count("1")  # fewer than two rows per append
        assert root_at(n, lambda level, idx: store[(level, idx)]) == tree.root()


def test_every_stored_node_is_the_mth_of_its_range() -> None:
    tree, leaves = _distinct_tree(77)
    for level in range(7):
        for idx in range(77 >> level):
            start = idx << level
            expected = root_from_leaves(leaves[start : start + (1 << level)])
            assert tree.get_node(level, idx) == expected
    with pytest.raises(MissingNodeError) as exc:
        tree.get_node(3, 77 >> 3)  # leaves 72..79: not complete at 77 leaves
    assert (exc.value.level, exc.value.index) == (3, 9)
    assert isinstance(exc.value, LineageError)


def _counting(tree: MemoryTree) -> tuple[Callable[[int, int], bytes], list[tuple[int, int]]]:
    reads: list[tuple[int, int]] = []

    def get(level: int, idx: int) -> bytes:
        reads.append((level, idx))
        return tree.get_node(level, idx)

    return get, reads


@pytest.mark.parametrize("n", [1, 2, 3, 5, 64, 100, 127, 128, 129, 1000, 4097])
def test_reads_are_logarithmic(n: int) -> None:
    tree, _ = _distinct_tree(n)
    bound = 2 * n.bit_length()
    get, reads = _counting(tree)
    root_at(n, get)
    assert len(reads) == bin(n).count("1")
    for i in {0, n // 3, n // 2, n - 1}:
        reads.clear()
        inclusion_proof(i, n, get)
        assert len(reads) <= bound
    for m in {1, n // 3, n // 2, n - 1}:
        reads.clear()
        consistency_proof(m, n, get)
        assert len(reads) <= bound


def test_plans_name_nodes_for_a_batched_read() -> None:
    tree, _ = _distinct_tree(300)
    plan = inclusion_proof_plan(123, 300)
    wanted = {node for group in plan for node in group}
    fetched = {node: tree.get_node(*node) for node in wanted}  # one "SELECT ... IN (...)"
    assert resolve_plan(plan, lambda level, idx: fetched[(level, idx)]) == tree.inclusion_proof(
        123, 300
    )
    assert root_plan(0) == []
    assert root_plan(300) == [((8, 0), (5, 8), (3, 36), (2, 74))]
    assert consistency_proof_plan(300, 300) == []
    assert consistency_proof_plan(0, 300) == []
    assert subtree_nodes(256, 300) == ((5, 8), (3, 36), (2, 74))
    for bad in [(1, 3), (0, 0), (2, 1), (4, 13)]:
        with pytest.raises(ValueError, match="not a subtree"):
            subtree_nodes(*bad)


def test_bad_requests_are_range_errors() -> None:
    tree, _ = _distinct_tree(10)
    calls: list[Callable[[], object]] = [
        lambda: tree.inclusion_proof(10, 10),
        lambda: tree.inclusion_proof(-1, 10),
        lambda: tree.inclusion_proof(0, 11),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.consistency_proof(-1, 4),
        lambda: tree.root(11),
        lambda: root_at(-1, tree.get_node),
    ]
    for call in calls:
        with pytest.raises(TreeRangeError):
            call()
    with pytest.raises(MissingNodeError):
        inclusion_proof(3, 12, tree.get_node)  # the store is behind the requested size
    with pytest.raises(ValueError):
        new_nodes_for_append(10, b"short", tree.get_node)
    assert consistency_proof(4, 10, tree.get_node) == tree.consistency_proof(4)


def _flip(proof: Sequence[bytes], i: int, bit: int) -> list[bytes]:
    """`proof` with bit `bit` (0: lowest bit of the first byte) of element `i` flipped."""
    out = list(proof)
    b = bytearray(out[i])
    b[bit // 8] ^= 1 << (bit % 8)
    out[i] = bytes(b)
    return out
