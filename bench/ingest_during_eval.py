"""Ingest throughput while an eval runs, against the idle figure, on the same server.

An eval is CPU-heavy and long; the registry must keep ingesting at speed meanwhile. This starts a
real `studbook serve` (SQLite: with its local worker, the default deployment; PostgreSQL: plus a
`studbook worker` process on the same machine, the worst case of a worker sharing the API's
host), then measures signed registrations per second through the HTTP API three times on fresh
artifacts: idle, while a long digits eval runs (checked to be running from before the first
request to after the last), and idle again. The eval is then cancelled, and a small one is run
to the end to report how long an eval takes through the service.

    python bench/ingest_during_eval.py [--n 3000] [--clients 1,8] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _server import Running, server
from ingest import hub_shape, post_all

from lineage.statements import registration_statement, sign_statement

LONG_EVAL = {"experiment": "digits", "preset": "cpu"}  # 20 seeds: many minutes on 2 cores
SMALL_EVAL = {"experiment": "digits", "preset": "default"}  # 3 seeds, the CLI's default run


def _get(srv: Running, path: str) -> Any:
    r = httpx.get(srv.url + path, headers={"Authorization": f"Bearer {srv.token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def _submit(srv: Running, body: dict[str, Any]) -> int:
    r = httpx.post(
        srv.url + "/v1/evals", json=body, headers={"Authorization": f"Bearer {srv.token}"}
    )
    r.raise_for_status()
    return int(r.json()["id"])


def _wait(srv: Running, run_id: int, done: Any, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = _get(srv, f"/v1/evals/{run_id}")
        if done(run):
            return dict(run)
        if time.monotonic() > deadline:
            raise RuntimeError(f"eval run {run_id} did not get there: {run}")
        time.sleep(0.5)


def _computing(run: dict[str, Any]) -> bool:
    if run["status"] in ("succeeded", "failed", "cancelled"):
        raise RuntimeError(f"the eval ended before the measurement: {run['status']} {run['error']}")
    return any(s["done"] > 0 for s in run["progress"])


def _measure(srv: Running, n: int, clients: int, seed: int) -> float:
    """Registrations per second for n fresh artifacts (parents first, level by level)."""
    levels: dict[int, list[bytes]] = {}
    for lvl, reg in hub_shape(n, seed=seed):
        body = sign_statement(registration_statement(reg), srv.signer).to_bytes()
        levels.setdefault(lvl, []).append(body)
    t0 = time.perf_counter()
    for lvl in sorted(levels):
        post_all(srv.url, srv.token, levels[lvl], clients)
    return n / (time.perf_counter() - t0)


def _start_worker(srv: Running) -> subprocess.Popen[bytes] | None:
    """PostgreSQL has no local worker: start one, on this host, as a GPU box would run it."""
    env = dict(
        line.split("=", 1)
        for line in Path(f"/proc/{srv.proc.pid}/environ").read_text().split("\0")
        if "=" in line
    )
    if "STUDBOOK_DATABASE_URL" not in env:
        return None  # SQLite: `serve` runs its own
    log = open(srv.data_dir / "worker.log", "wb")  # noqa: SIM115 (the child keeps it)
    return subprocess.Popen(
        [sys.executable, "-m", "registry.cli", "worker"], env=env, stdout=log, stderr=log
    )


def run(db: str, n: int, clients: list[int]) -> None:
    with server(db) as srv:
        worker = _start_worker(srv)
        try:
            _bench(srv, db, n, clients)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(60)


def _bench(srv: Running, db: str, n: int, clients: list[int]) -> None:
    seed = 100
    for k in clients:
        seed += 3
        idle_before = _measure(srv, n, k, seed)
        run_id = _submit(srv, LONG_EVAL)
        _wait(srv, run_id, _computing)
        load_before = os.getloadavg()[0]
        during = _measure(srv, n, k, seed + 1)
        load_after = os.getloadavg()[0]
        still = _get(srv, f"/v1/evals/{run_id}")
        if still["status"] != "running":
            raise RuntimeError(f"the eval stopped during the measurement: {still['status']}")
        httpx.delete(
            srv.url + f"/v1/evals/{run_id}", headers={"Authorization": f"Bearer {srv.token}"}
        )
        _wait(srv, run_id, lambda r: r["status"] in ("cancelled", "failed", "succeeded"))
        idle_after = _measure(srv, n, k, seed + 2)
        idle = (idle_before + idle_after) / 2
        print(
            f"{db:9s} {k} client(s): idle {idle_before:6.0f}/s and {idle_after:6.0f}/s, "
            f"during an eval {during:6.0f}/s = {during / idle - 1:+.0%} "
            f"(load average {load_before:.1f} -> {load_after:.1f})",
            flush=True,
        )
    run_id = _submit(srv, SMALL_EVAL)
    done = _wait(srv, run_id, lambda r: r["status"] in ("cancelled", "failed", "succeeded"))
    t = done["timings"]
    print(
        f"{db:9s} digits (default preset, 3 seeds) through the service: {done['status']}, "
        f"queued {t.get('queued_s', 0):.1f} s, eval {t.get('eval_s', 0):.1f} s, "
        f"registration of {len(done['artifacts'] or [])} artifacts + result "
        f"{t.get('register_s', 0):.1f} s, total {t.get('run_s', 0):.1f} s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=3000, help="registrations per measurement")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--db", default="sqlite,postgres")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    for db in args.db.split(","):
        run(db, args.n, [int(c) for c in args.clients.split(",")])


if __name__ == "__main__":
    main()
