"""Ingest throughput while an eval runs, against the idle figure, on the same server.

An eval is CPU-heavy and long; the registry must keep ingesting at speed meanwhile. This starts a
real `studbook serve` (SQLite: with its local worker, the default deployment; PostgreSQL: plus a
`studbook worker` process on the same machine, the worst case of a worker sharing the API's
host), queues a long digits eval, and once it computes, measures signed registrations per second
through the HTTP API in alternating windows on fresh artifacts: idle (the eval process paused
with SIGSTOP, holding its memory but no CPU) and during the eval (resumed; how far it got across
each window is reported, since at idle priority ingest comes first). Each busy window is compared
with the idle windows just before and after it: alternating on one server cancels most of the
drift of a shared machine that separate idle and busy runs would mix into the figure. The eval
is then cancelled, and a small one is run to the end to report how long an eval takes through
the service.

    python bench/ingest_during_eval.py [--n 1000] [--rounds 5] [--clients 1,8]
        [--db sqlite,postgres] [--eval-nice N] [--no-small-eval]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
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
        [sys.executable, "-m", "registry.commands", "worker"], env=env, stdout=log, stderr=log
    )


def run(db: str, n: int, clients: list[int], rounds: int, nice: int | None, small: bool) -> None:
    extra = {"STUDBOOK_EVAL_NICE": str(nice)} if nice is not None else None
    with server(db, extra_env=extra) as srv:
        worker = _start_worker(srv)
        try:
            _bench(srv, db, n, clients, rounds, small)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(60)


def _eval_process(srv: Running) -> int:
    """The eval's own process (a child of the worker on this host)."""
    out = subprocess.run(
        ["pgrep", "-f", f"registry.evals.child {srv.data_dir.resolve()}"],
        capture_output=True,
        text=True,
    )
    pids = [int(p) for p in out.stdout.split()]
    if len(pids) != 1:
        raise RuntimeError(f"expected one eval process, found {pids}")
    return pids[0]


def _done(run: dict[str, Any]) -> int:
    return sum(int(s["done"]) for s in run["progress"])


def _bench(srv: Running, db: str, n: int, clients: list[int], rounds: int, small: bool) -> None:
    seed = 100
    for k in clients:
        run_id = _submit(srv, LONG_EVAL)
        _wait(srv, run_id, _computing)
        pid = _eval_process(srv)
        idle: list[float] = []
        during: list[float] = []
        loads: list[float] = []
        units: list[int] = []  # eval progress (epochs) made across each busy window
        try:
            for i in range(rounds + 1):
                os.kill(pid, signal.SIGSTOP)  # idle: the eval holds its memory, uses no CPU
                seed += 1
                idle.append(_measure(srv, n, k, seed))
                os.kill(pid, signal.SIGCONT)
                if i == rounds:
                    break
                time.sleep(2)  # back up to speed
                before = _done(_get(srv, f"/v1/evals/{run_id}"))
                seed += 1
                during.append(_measure(srv, n, k, seed))
                loads.append(os.getloadavg()[0])
                time.sleep(2.5)  # a heartbeat carries the progress made meanwhile
                run = _get(srv, f"/v1/evals/{run_id}")
                if run["status"] != "running":
                    raise RuntimeError(f"the eval stopped during the measurement: {run}")
                units.append(_done(run) - before)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            httpx.delete(
                srv.url + f"/v1/evals/{run_id}", headers={"Authorization": f"Bearer {srv.token}"}
            )
            _wait(srv, run_id, lambda r: r["status"] in ("cancelled", "failed", "succeeded"))
        # Each busy window against the idle windows on either side of it: drift cancels out.
        ratios = [d / ((idle[i] + idle[i + 1]) / 2) for i, d in enumerate(during)]
        print(
            f"{db:9s} {k} client(s): during an eval / idle = {statistics.median(ratios) - 1:+.0%} "
            f"(median of {rounds} windows of {n}, each against the idle windows around it: "
            f"{', '.join(f'{r - 1:+.0%}' for r in ratios)}); idle "
            f"{', '.join(f'{x:.0f}' for x in idle)}/s; during "
            f"{', '.join(f'{x:.0f}' for x in during)}/s; eval epochs done across each busy "
            f"window: {', '.join(map(str, units))}; load average "
            f"{min(loads):.1f}-{max(loads):.1f}",
            flush=True,
        )
    if not small:
        return
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
    ap.add_argument("--n", type=int, default=1000, help="registrations per window")
    ap.add_argument("--rounds", type=int, default=5, help="busy windows (between idle ones)")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument(
        "--eval-nice", type=int, default=None, help="niceness of eval processes (default: 10)"
    )
    ap.add_argument(
        "--no-small-eval", action="store_true", help="skip timing a small eval to the end"
    )
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    for db in args.db.split(","):
        clients = [int(c) for c in args.clients.split(",")]
        run(db, args.n, clients, args.rounds, args.eval_nice, not args.no_small_eval)


if __name__ == "__main__":
    main()
