"""Reliability under concurrent writers and under `kill -9`, on SQLite and PostgreSQL.

Two experiments against a real `studbook serve` per database:

1. **Concurrent writers.** 16 clients post 2,000 signed registrations at once (each client's
   lane mixes new roots and fine-tunes of artifacts it registered earlier, so parents exist and
   writers contend on the log and the graph). Afterwards every acknowledged write must be in
   the database and provable in the log at the index its answer gave, nothing may have been
   refused but for a reason the client caused, and `studbook log audit` must pass.
2. **`kill -9` mid-ingest.** Clients post registrations; at a random moment the server gets
   SIGKILL (no shutdown handler, no flush), is restarted on the same data, and every write that
   had been acknowledged must still be there at its index; `studbook log audit` (entries,
   nodes, signatures, rebuilt tables, and consistency with a checkpoint saved before the kill)
   must pass, and ingest must carry on.

Prints the figures (throughput, latency percentiles, counts) and the machine's load; exits 1 if
any promise was broken.

    nice python bench/reliability.py [--db sqlite,postgres] [--clients 16] [--n 2000]
                                     [--kills 2] [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _server import free_port, postgres_database

from lineage import dsse
from lineage.digests import opaque_digest
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation


@dataclass
class Deployment:
    """One data folder and database, served by one `studbook serve` process at a time."""

    data_dir: Path
    database_url: str | None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "STUDBOOK_DATA_DIR": str(self.data_dir)}
        env.pop("STUDBOOK_DATABASE_URL", None)
        if self.database_url:
            env["STUDBOOK_DATABASE_URL"] = self.database_url
        # The SQLite deployment would start a local eval worker; none is needed here.
        env["STUDBOOK_EVAL_LOCAL_WORKER"] = "false"
        return env

    def start(self) -> None:
        self.starts += 1
        with open(self.data_dir / f"server-{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "studbook_cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                logs = sorted(self.data_dir.glob("server-*.log"))
                raise RuntimeError(logs[-1].read_text(errors="replace"))
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def registrar(self, name: str) -> tuple[dict[str, str], dsse.Signer]:
        admin = (self.data_dir / "admin-token").read_text().strip()
        r = httpx.post(
            self.url + "/v1/principals",
            json={"name": name, "role": "registrar"},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        signer = dsse.Signer(dsse.generate_private_key())
        httpx.post(
            self.url + "/v1/keys",
            json={
                "public_key": signer.public_key_text,
                "proof": dsse.key_possession_proof(signer, name).to_json(),
            },
            headers=headers,
            timeout=30,
        ).raise_for_status()
        return headers, signer

    def audit(self, checkpoints: list[str]) -> tuple[bool, str]:
        """`studbook log audit` against the database, with the saved checkpoints."""
        args = [sys.executable, "-m", "studbook_cli", "log", "audit", "--json"]
        for i, text in enumerate(checkpoints):
            path = self.data_dir / f"checkpoint-{i}.txt"
            path.write_text(text)
            args += ["--checkpoint", str(path)]
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=1800)
        return out.returncode == 0, (out.stdout + out.stderr).strip()


@contextlib.contextmanager
def deployment(database: str) -> Iterator[Deployment]:
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="studbook-rel-")))
        url = stack.enter_context(postgres_database()) if database == "postgres" else None
        dep = Deployment(data_dir, url)
        stack.callback(dep.stop)
        dep.start()
        yield dep


def lanes_of(signer: dsse.Signer, n: int, clients: int, tag: str) -> list[list[dict[str, Any]]]:
    """n signed registrations in `clients` lanes; in each lane every third one fine-tunes the
    lane's previous artifact (sent earlier by the same client, so accepted first)."""
    lanes: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
    previous: list[str | None] = [None] * clients
    for i in range(n):
        c = i % clients
        label = f"rel-{tag}/c{c}/m{i}"
        digest = opaque_digest(f"reliability:{tag}:{i}")
        parents: tuple[ParentLink, ...] = ()
        if previous[c] is not None and len(lanes[c]) % 3 == 2:
            parents = (ParentLink(Relation.FINE_TUNED_FROM, previous[c]),)  # type: ignore[arg-type]
        ref = ArtifactRef(ArtifactKind.MODEL, label, "1", digest)
        statement = registration_statement(Registration(ref, parents, {"i": i}))
        lanes[c].append(sign_statement(statement, signer).to_json())
        previous[c] = digest
    return lanes


def payload_digest(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest()


class Ingest:
    """Clients posting their lanes; records what was acknowledged and what was in flight."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.acked: list[tuple[dict[str, Any], int]] = []  # (envelope, log index)
        self.in_flight: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.latencies: list[float] = []
        self._lock = threading.Lock()

    def run_lane(self, lane: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as http:
            for env in lane:
                t0 = time.perf_counter()
                try:
                    r = http.post("/v1/attestations", json=env)
                except httpx.HTTPError:
                    with self._lock:
                        self.in_flight.append(env)
                    return
                dt = time.perf_counter() - t0
                with self._lock:
                    if r.status_code in (200, 201):
                        self.acked.append((env, r.json()["log_index"]))
                        self.latencies.append(dt)
                    else:
                        self.refused.append(f"{r.status_code}: {r.text[:200]}")
                        return

    def run(self, lanes: list[list[dict[str, Any]]]) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run_lane, args=(lane,)) for lane in lanes]
        for t in threads:
            t.start()
        return threads


def missing_acknowledged(url: str, acked: list[tuple[dict[str, Any], int]]) -> list[str]:
    """Acknowledged envelopes the log cannot prove at the index their answer gave."""
    missing = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for env, index in acked:
            r = http.get("/v1/log/proof/inclusion", params={"payload_digest": payload_digest(env)})
            if r.status_code != 200 or r.json()["log_index"] != index:
                missing.append(f"{payload_digest(env)[:12]} at {index}: {r.status_code}")
    return missing


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def concurrent_writers(database: str, n: int, clients: int) -> bool:
    with deployment(database) as dep:
        headers, signer = dep.registrar("writers")
        lanes = lanes_of(signer, n, clients, "w")
        ingest = Ingest(dep.url, headers)
        t0 = time.perf_counter()
        for t in ingest.run(lanes):
            t.join()
        wall = time.perf_counter() - t0
        missing = missing_acknowledged(dep.url, ingest.acked)
        size = httpx.get(dep.url + "/v1/log", timeout=30).json()["tree_size"]
        audit_ok, audit_text = dep.audit([])
    ok = not missing and not ingest.refused and len(ingest.acked) == n and size == n and audit_ok
    lat = ingest.latencies or [0.0]
    print(
        f"  {database:8s} concurrent: {clients} clients, {len(ingest.acked)}/{n} acknowledged "
        f"in {wall:.1f} s ({len(ingest.acked) / wall:.0f}/s), latency p50 {pct(lat, 0.5):.0f} ms "
        f"p99 {pct(lat, 0.99):.0f} ms max {max(lat) * 1000:.0f} ms; refused {len(ingest.refused)}"
        f", missing after {len(missing)}, log size {size}, log audit "
        f"{'passed' if audit_ok else 'FAILED'}"
    )
    for line in (ingest.refused[:3] + missing[:3]) if not ok else []:
        print("    !", line)
    if not audit_ok:
        print("    ! audit:", audit_text[:2000])
    return ok


def kill_mid_ingest(database: str, clients: int, rng: random.Random, round_: int) -> bool:
    with deployment(database) as dep:
        headers, signer = dep.registrar("bulk")
        lanes = lanes_of(signer, 6000, clients, f"k{round_}")
        ingest = Ingest(dep.url, headers)
        threads = ingest.run(lanes)
        time.sleep(0.5)
        saved = httpx.get(dep.url + "/v1/log/checkpoint", timeout=30).text
        delay = rng.uniform(1.0, 4.0)
        time.sleep(delay)
        dep.kill()
        for t in threads:
            t.join(60)
        acked_at_kill = len(ingest.acked)
        t0 = time.perf_counter()
        dep.start()
        restart_s = time.perf_counter() - t0
        missing = missing_acknowledged(dep.url, ingest.acked)
        size_after = httpx.get(dep.url + "/v1/log", timeout=30).json()["tree_size"]
        audit_ok, audit_text = dep.audit([saved])
        # The answers lost with the process: each envelope is in once or not at all, and
        # re-sending it is safe; then ingest carries on from where it stopped.
        resent_ok = True
        with httpx.Client(base_url=dep.url, headers=headers, timeout=60) as http:
            for env in ingest.in_flight:
                resent_ok &= http.post("/v1/attestations", json=env).status_code in (200, 201)
        size_final = httpx.get(dep.url + "/v1/log", timeout=30).json()["tree_size"]
        final_ok, final_text = dep.audit([saved])
    ok = (
        acked_at_kill > 0
        and not missing
        and not ingest.refused
        and acked_at_kill <= size_after <= acked_at_kill + len(ingest.in_flight)
        and audit_ok
        and resent_ok
        and final_ok
        and size_final == acked_at_kill + len(ingest.in_flight)
    )
    print(
        f"  {database:8s} kill -9 #{round_}: after {0.5 + delay:.1f} s, {acked_at_kill} "
        f"acknowledged, {len(ingest.in_flight)} in flight; after restart ({restart_s:.1f} s) "
        f"log size {size_after}, acknowledged missing {len(missing)}, log audit "
        f"{'passed' if audit_ok else 'FAILED'}; in-flight re-sent "
        f"{'ok' if resent_ok else 'FAILED'}, final size {size_final}, audit "
        f"{'passed' if final_ok else 'FAILED'}"
    )
    for line in ingest.refused[:3] + missing[:3]:
        print("    !", line)
    for text in (audit_text, final_text) if not (audit_ok and final_ok) else ():
        print("    ! audit:", text[:2000])
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=2, help="kill -9 rounds per database")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(
        f"studbook reliability: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, seed {seed}"
    )
    print(f"  load before: {json.dumps(os.getloadavg())}")
    ok = True
    for database in args.db.split(","):
        ok &= concurrent_writers(database, args.n, args.clients)
        for round_ in range(1, args.kills + 1):
            ok &= kill_mid_ingest(database, args.clients, rng, round_)
    print(f"  load after: {json.dumps(os.getloadavg())}")
    print("all promises held" if ok else "A PROMISE WAS BROKEN")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
