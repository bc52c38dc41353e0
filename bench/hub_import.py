"""Importing a public hub's worth of models through the batch route, and single registrations.

The synthetic hub (`bench/_hub.py`, the shape of a public model hub) is signed registration by
registration, as an importer would (each statement signed by the importing pipeline's key), and
posted to a real `studbook serve` with `POST /v1/attestations/batch`, in creation order (parents
always before children) and batches of `--batch` envelopes. It prints the rate, the server's CPU
per registration (its whole process tree, from /proc), and the time the whole hub would take:
measured when `--import-n` equals `--hub-n`, otherwise extrapolated from the measured prefix at
the measured rate, and labelled so. For comparison it also posts `--single` envelopes one request
each. Every answer is checked: one per envelope, all new, consecutive log indices, one
checkpoint per batch. It prints the rate every `--progress` registrations too, so a long import
shows whether the rate holds as the registry grows, and the server's memory (RSS of its process
tree, from /proc) at the end.

Scale-out: `--workers N` runs `studbook serve --workers N`, and `--clients K` posts K batches at
a time. With several clients the import goes by depth (every artifact at depth d before any at
depth d + 1, as an importer that knows its graph can order it), so concurrent batches never wait
for each other's parents; with one client it goes in creation order. `--cpus 0` (a `taskset`
list) pins the server's processes and threads to those CPUs, to measure how the rate grows with
the cores the server gets. Each batch's `Server-Timing` header splits its server time into the
part outside the write lock (signatures, statements) and the part under it, which bounds what
any number of workers can reach on one database.

    python bench/hub_import.py [--hub-n 2000000] [--import-n 50000] [--batch 1000]
                               [--db sqlite,postgres] [--single 2000]
                               [--workers 1] [--clients 1] [--progress 50000]

Signing runs before the clock starts (the client signs 10,000+ envelopes/s).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _hub
from _server import server
from vs_mlflow import loadavg, tree_cpu

from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration


def parents_upto(hub: _hub.Hub, k: int) -> list[list[tuple[int, int]]]:
    """(parent, relation code) of artifacts 1..k (index 0 unused)."""
    up: list[list[tuple[int, int]]] = [[] for _ in range(k + 1)]
    for c, p, r in zip(hub.child, hub.parent, hub.rel, strict=True):
        if c <= k:
            up[c].append((p, r))
    return up


def by_depth(hub: _hub.Hub, k: int) -> list[list[int]]:
    """Artifacts 1..k grouped by depth (roots first), each group in creation order."""
    up = parents_upto(hub, k)
    depth = [0] * (k + 1)
    levels: list[list[int]] = []
    for i in range(1, k + 1):
        depth[i] = 1 + max((depth[p] for p, _ in up[i]), default=-1)
        while len(levels) <= depth[i]:
            levels.append([])
        levels[depth[i]].append(i)
    return levels


def server_rss_mib(pid: int) -> tuple[float, float, float]:
    """Memory of the server's process tree in MiB, from /proc: (RSS of all processes, their
    anonymous part, the largest process's RSS). On SQLite the RSS includes the pages of the
    database file the server maps (`PRAGMA mmap_size`), which the kernel can drop at will; the
    anonymous part is what the processes themselves hold."""
    parent: dict[int, int] = {}
    rss: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        parent[int(entry)] = int(fields.get("PPid", "0").strip())
        rss[int(entry)] = (
            int(fields.get("VmRSS", "0 kB").split()[0]),
            int(fields.get("RssAnon", "0 kB").split()[0]),
        )
    tree, frontier = {pid}, [pid]
    while frontier:
        frontier = [c for c, p in parent.items() if p in frontier and c not in tree]
        tree.update(frontier)
    sizes = [rss.get(p, (0, 0)) for p in tree]
    return (
        sum(r for r, _ in sizes) / 1024,
        sum(a for _, a in sizes) / 1024,
        max(r for r, _ in sizes) / 1024,
    )


def pin(root: int, cpus: str) -> None:
    """Pin every thread of `root` and of its descendants to `cpus` (threads started later
    inherit it from the thread that starts them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo = [root]
    while todo:
        pid = todo.pop()
        subprocess.run(
            ["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, capture_output=True
        )
        todo.extend(children.get(pid, []))


def server_timing(header: str) -> dict[str, float]:
    """Phase name -> milliseconds, from a `Server-Timing` header (`name;dur=12.3, ...`)."""
    out: dict[str, float] = {}
    for item in filter(None, (x.strip() for x in header.split(","))):
        name, _, rest = item.partition(";")
        for param in rest.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                out[name.strip()] = float(value)
    return out


def envelopes(hub: _hub.Hub, k: int, signer: object) -> list[bytes]:
    """Signed registrations of artifacts 1..k, in creation order."""
    up = parents_upto(hub, k)
    out = []
    for i in range(1, k + 1):
        kind = ArtifactKind.MODEL if hub.kind[i] == _hub.MODEL else ArtifactKind.DATASET
        reg = Registration(
            ArtifactRef(kind, hub.name(i), "1", hub.digest(i), bool(hub.opaque[i])),
            tuple(ParentLink(_hub.RELATIONS[r], hub.digest(p)) for p, r in up[i]),
        )
        out.append(sign_statement(registration_statement(reg), signer).to_bytes())  # type: ignore[arg-type]
    return out


def run(db: str, hub: _hub.Hub, args: argparse.Namespace) -> None:
    extra = ("--workers", str(args.workers)) if args.workers > 1 else ()
    with server(db, extra_args=extra) as srv:
        if args.cpus:
            pin(srv.proc.pid, args.cpus)
        t0 = time.perf_counter()
        bodies = envelopes(hub, args.import_n + args.single, srv.signer)
        sign_s = time.perf_counter() - t0
        headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}
        single_bodies = bodies[args.import_n :]
        if args.clients > 1:
            order = [i - 1 for level in by_depth(hub, args.import_n) for i in level]
            levels = [len(level) for level in by_depth(hub, args.import_n)]
        else:
            order, levels = list(range(args.import_n)), [args.import_n]
        print(
            f"{db}: signed {len(bodies):,} envelopes in {sign_s:.1f} s "
            f"({len(bodies) / sign_s:,.0f}/s, client side); server --workers {args.workers}, "
            f"{args.clients} client(s), server on CPUs {args.cpus or 'any'}  ({loadavg()})",
            flush=True,
        )
        seen_indices: set[int] = set()
        timing: dict[str, float] = {}
        lock = threading.Lock()
        local = threading.local()

        def post(part: list[int]) -> None:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=srv.url, headers=headers, timeout=600)
            body = b'{"envelopes":[' + b",".join(bodies[i] for i in part) + b"]}"
            r = local.client.post("/v1/attestations/batch", content=body)
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code}: {r.text[:500]}")
            ans = r.json()
            indices = [a["log_index"] for a in ans["data"]]
            if ans["created"] != len(part) or indices != list(
                range(indices[0], indices[0] + len(part))
            ):
                raise RuntimeError("a batch answer does not match what was sent")
            if {a["inclusion_proof"]["checkpoint"] for a in ans["data"]} != {ans["checkpoint"]}:
                raise RuntimeError("more than one checkpoint in a batch")
            phases = server_timing(r.headers.get("server-timing", ""))
            with lock:
                for name, ms in phases.items():
                    timing[name] = timing.get(name, 0.0) + ms
                if seen_indices.intersection(indices):
                    raise RuntimeError("two batches were given the same log index")
                seen_indices.update(indices)

        with ThreadPoolExecutor(args.clients) as pool:
            cpu0 = tree_cpu(srv.proc.pid)
            t0 = time.perf_counter()
            done, start, next_report = 0, 0, args.progress
            for size in levels:
                level = order[start : start + size]
                start += size
                parts = [level[j : j + args.batch] for j in range(0, len(level), args.batch)]
                for k in range(0, len(parts), 4 * args.clients):
                    wave = parts[k : k + 4 * args.clients]
                    list(pool.map(post, wave))
                    done += sum(len(p) for p in wave)
                    if done >= next_report:
                        wall = time.perf_counter() - t0
                        cpu = tree_cpu(srv.proc.pid) - cpu0
                        print(
                            f"{db}:   {done:,} registered in {wall:.0f} s = {done / wall:,.0f}/s "
                            f"so far, server CPU {cpu / done * 1000:.2f} ms/registration  "
                            f"({loadavg()})",
                            flush=True,
                        )
                        next_report += args.progress
            wall = time.perf_counter() - t0
            cpu = tree_cpu(srv.proc.pid) - cpu0
        if len(seen_indices) != args.import_n:
            raise RuntimeError("not every envelope was logged once")
        with httpx.Client(base_url=srv.url, headers=headers, timeout=600) as c:
            rate = args.import_n / wall
            total_rss, anon_rss, largest_rss = server_rss_mib(srv.proc.pid)
            print(
                f"{db}: batch ingest {args.import_n:,} registrations in {wall:.1f} s = "
                f"{rate:,.0f}/s, server CPU {cpu / args.import_n * 1000:.2f} ms/registration "
                f"(batches of {args.batch}, --workers {args.workers}, {args.clients} client(s)); "
                f"server RSS {total_rss:,.0f} MiB, of which anonymous {anon_rss:,.0f} MiB "
                f"(largest process {largest_rss:,.0f} MiB)  "
                f"({loadavg()})",
                flush=True,
            )
            batches = -(-args.import_n // args.batch)
            prep, wait, held = (timing.get(k, 0.0) / batches for k in ("prepare", "lock", "write"))
            print(
                f"{db}: per batch (Server-Timing, mean of {batches:,}): {prep:.0f} ms checking "
                f"signatures and statements outside the write lock, {wait:.0f} ms waiting for "
                f"it, {held:.0f} ms holding it (reads, inserts, lineage indexes, log append, "
                f"commit); one database's ceiling with any number of workers: "
                f"{args.batch / held * 1000:,.0f}/s"
                if held
                else f"{db}: no Server-Timing",
                flush=True,
            )
            whole = hub.n / rate
            label = (
                "measured"
                if args.import_n >= hub.n
                else f"EXTRAPOLATED from the first {args.import_n:,} at the measured rate"
            )
            print(
                f"{db}: the {hub.n:,}-artifact hub would take {whole / 60:.1f} min ({label})",
                flush=True,
            )
            if single_bodies:
                cpu0 = tree_cpu(srv.proc.pid)
                t0 = time.perf_counter()
                for b in single_bodies:
                    r = c.post("/v1/attestations", content=b)
                    if r.status_code != 201:
                        raise RuntimeError(f"{r.status_code}: {r.text[:500]}")
                wall = time.perf_counter() - t0
                cpu = tree_cpu(srv.proc.pid) - cpu0
                print(
                    f"{db}: single registrations (one client) {len(single_bodies):,} in "
                    f"{wall:.1f} s = {len(single_bodies) / wall:,.0f}/s, server CPU "
                    f"{cpu / len(single_bodies) * 1000:.2f} ms/registration  ({loadavg()})",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hub-n", type=int, default=2_000_000)
    ap.add_argument("--import-n", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--single", type=int, default=2000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=1, help="studbook serve --workers")
    ap.add_argument("--clients", type=int, default=1, help="batches posted at a time")
    ap.add_argument("--progress", type=int, default=50_000, help="print the rate every N")
    ap.add_argument(
        "--cpus",
        default="",
        help="pin the server's processes and threads to these CPUs (taskset list, e.g. 0 or 0,1)",
    )
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {loadavg()}",
        flush=True,
    )
    t0 = time.perf_counter()
    hub = _hub.build(args.hub_n, args.seed)
    print(
        f"hub: {hub.n:,} artifacts, {hub.edge_count:,} edges, built in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    if args.import_n + args.single > hub.n:
        raise SystemExit("--import-n + --single exceeds --hub-n")
    for db in args.db.split(","):
        run(db.strip(), hub, args)


if __name__ == "__main__":
    main()
