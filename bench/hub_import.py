"""Importing a public hub's worth of models through the batch route, and single registrations.

The synthetic hub (`bench/_hub.py`, the shape of a public model hub) is signed registration by
registration, as an importer would (each statement signed by the importing pipeline's key), and
posted to a real `studbook serve` with `POST /v1/attestations/batch`, in creation order (parents
always before children) and batches of `--batch` envelopes. It prints the rate, the server's CPU
per registration (its whole process tree, from /proc), and the time the whole hub would take:
measured when `--import-n` equals `--hub-n`, otherwise extrapolated from the measured prefix at
the measured rate, and labelled so. For comparison it also posts `--single` envelopes one request
each. Every answer is checked: one per envelope, all new, consecutive log indices, one
checkpoint per batch.

    python bench/hub_import.py [--hub-n 2000000] [--import-n 50000] [--batch 1000]
                               [--db sqlite,postgres] [--single 2000]

Signing runs before the clock starts (the client signs 10,000+ envelopes/s).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _hub
from _server import server
from vs_mlflow import loadavg, tree_cpu

from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration


def envelopes(hub: _hub.Hub, k: int, signer: object) -> list[bytes]:
    """Signed registrations of artifacts 1..k, in creation order."""
    up = [[] for _ in range(k + 1)]  # type: list[list[tuple[int, int]]]
    for c, p, r in zip(hub.child, hub.parent, hub.rel, strict=True):
        if c <= k:
            up[c].append((p, r))
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
    with server(db) as srv:
        t0 = time.perf_counter()
        bodies = envelopes(hub, args.import_n + args.single, srv.signer)
        sign_s = time.perf_counter() - t0
        headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}
        batch_bodies, single_bodies = bodies[: args.import_n], bodies[args.import_n :]
        print(
            f"{db}: signed {len(bodies):,} envelopes in {sign_s:.1f} s "
            f"({len(bodies) / sign_s:,.0f}/s, client side)  ({loadavg()})",
            flush=True,
        )
        with httpx.Client(base_url=srv.url, headers=headers, timeout=600) as c:
            cpu0 = tree_cpu(srv.proc.pid)
            t0 = time.perf_counter()
            next_index = 0
            for start in range(0, len(batch_bodies), args.batch):
                part = batch_bodies[start : start + args.batch]
                r = c.post(
                    "/v1/attestations/batch", content=b'{"envelopes":[' + b",".join(part) + b"]}"
                )
                if r.status_code != 201:
                    raise RuntimeError(f"{r.status_code}: {r.text[:500]}")
                ans = r.json()
                indices = [a["log_index"] for a in ans["data"]]
                if ans["created"] != len(part) or indices != list(
                    range(next_index, next_index + len(part))
                ):
                    raise RuntimeError("a batch answer does not match what was sent")
                if {a["inclusion_proof"]["checkpoint"] for a in ans["data"]} != {ans["checkpoint"]}:
                    raise RuntimeError("more than one checkpoint in a batch")
                next_index += len(part)
            wall = time.perf_counter() - t0
            cpu = tree_cpu(srv.proc.pid) - cpu0
            rate = len(batch_bodies) / wall
            print(
                f"{db}: batch ingest {len(batch_bodies):,} registrations in {wall:.1f} s = "
                f"{rate:,.0f}/s, server CPU {cpu / len(batch_bodies) * 1000:.2f} ms/registration "
                f"(batches of {args.batch})  ({loadavg()})",
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
