"""Transparency-log maths at scale: what an append costs and how fast proofs are.

Builds an in-memory log (`lineage.merkle.MemoryTree`, the same complete-subtree scheme the
registry stores in its database) of N leaves, then prints:

- append cost: node hashes and stored rows per append (mean and max), appends per second;
- inclusion proofs at size N: nodes read, generation and verification latency (p50, p99);
- consistency proofs from a random older size to N: the same figures.

The figures are for the pure maths with every node in memory; the database-backed store adds one
batched read per proof (see `inclusion_proof_plan`). Run: `python bench/log_math.py [--leaves N]`.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

# Runnable as a script from a checkout, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lineage.merkle import (
    MemoryTree,
    consistency_proof_plan,
    inclusion_proof_plan,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)


def _percentiles(wall: list[int], cpu: list[int]) -> str:
    w = statistics.quantiles(wall, n=100, method="inclusive")
    c = statistics.quantiles(cpu, n=100, method="inclusive")
    return (
        f"wall p50 {w[49] / 1000:6.1f} us  p99 {w[98] / 1000:7.1f} us   "
        f"cpu p50 {c[49] / 1000:6.1f} us  p99 {c[98] / 1000:6.1f} us"
    )


class _Clock:
    """Wall and thread CPU time of one timed section. On a shared host the wall p99 includes the
    time slices other processes got; the CPU time does not, so both are printed."""

    def __init__(self) -> None:
        self.wall: list[int] = []
        self.cpu: list[int] = []
        self._w = self._c = 0

    def start(self) -> None:
        self._w, self._c = time.perf_counter_ns(), time.thread_time_ns()

    def stop(self) -> None:
        self.cpu.append(time.thread_time_ns() - self._c)
        self.wall.append(time.perf_counter_ns() - self._w)

    def __str__(self) -> str:
        return _percentiles(self.wall, self.cpu)


def bench_append(n: int) -> MemoryTree:
    """Append n entries; rows per append are 1 + trailing 1-bits of the index (the unit tests hold
    `new_nodes_for_append` to that count)."""
    tree = MemoryTree()
    entries = [i.to_bytes(8, "big") for i in range(n)]
    start = time.perf_counter()
    for entry in entries:
        tree.append(entry)
    elapsed = time.perf_counter() - start
    rows = [1 + ((~i & (i + 1)).bit_length() - 1) for i in range(n)]
    print(f"append, {n:,} leaves")
    print(f"  stored rows per append   mean {sum(rows) / n:.6f}   max {max(rows)}")
    print(f"  node hashes per append   mean {(sum(rows) - n) / n:.6f}   max {max(rows) - 1}")
    print(f"    (plus one leaf hash; total rows {sum(rows):,} = 2n - popcount(n))")
    print(f"  appends/s (leaf hash + nodes, in memory)   {n / elapsed:,.0f}")
    return tree


def bench_inclusion(tree: MemoryTree, samples: int, rng: random.Random) -> None:
    """Proofs for random leaves in the full tree."""
    n = tree.size
    root = tree.root()
    gen, ver = _Clock(), _Clock()
    reads: list[int] = []
    lengths: list[int] = []
    for _ in range(samples):
        i = rng.randrange(n)
        leaf = tree.leaf_hash_at(i)
        gen.start()
        proof = tree.inclusion_proof(i, n)
        gen.stop()
        ver.start()
        verify_inclusion(leaf, i, n, proof, root)
        ver.stop()
        reads.append(sum(len(g) for g in inclusion_proof_plan(i, n)))
        lengths.append(len(proof))
    print(f"inclusion proofs at size {n:,} ({samples:,} random leaves)")
    print(f"  proof length    mean {statistics.mean(lengths):.1f}   max {max(lengths)} hashes")
    print(f"  nodes read      mean {statistics.mean(reads):.1f}   max {max(reads)}")
    print(f"  generate   {gen}")
    print(f"  verify     {ver}")


def bench_consistency(tree: MemoryTree, samples: int, rng: random.Random) -> None:
    """Proofs from random older sizes to the full tree."""
    n = tree.size
    new_root = tree.root()
    gen, ver = _Clock(), _Clock()
    reads: list[int] = []
    lengths: list[int] = []
    for _ in range(samples):
        m = rng.randrange(1, n)
        old_root = tree.root(m)
        gen.start()
        proof = tree.consistency_proof(m, n)
        gen.stop()
        ver.start()
        verify_consistency(m, n, old_root, new_root, proof)
        ver.stop()
        reads.append(sum(len(g) for g in consistency_proof_plan(m, n)))
        lengths.append(len(proof))
    print(f"consistency proofs to size {n:,} ({samples:,} random old sizes)")
    print(f"  proof length    mean {statistics.mean(lengths):.1f}   max {max(lengths)} hashes")
    print(f"  nodes read      mean {statistics.mean(reads):.1f}   max {max(reads)}")
    print(f"  generate   {gen}")
    print(f"  verify     {ver}")


def main(argv: list[str] | None = None) -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(f"python {sys.version.split()[0]}, sha256 via hashlib")
    tree = bench_append(args.leaves)
    assert tree.leaf_hash_at(0) == leaf_hash((0).to_bytes(8, "big"))
    # The tree is two million long-lived objects; without this the cyclic collector rescans them
    # during the proof loops and its pauses (about 1 ms) dominate p99. A database-backed store
    # does not keep the nodes on the Python heap.
    gc.freeze()
    bench_inclusion(tree, args.samples, rng)
    bench_consistency(tree, args.samples, rng)


if __name__ == "__main__":
    main()
