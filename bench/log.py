"""The transparency log in the database at 1,000,000 leaves: append cost and proof latency.

For each database (SQLite file, fresh PostgreSQL database):

1. bulk-loads a log of N leaves (default 1,000,000): N attestation rows, their entries, the 2N
   complete-subtree nodes (computed with `lineage.merkle.MemoryTree`) and the head, as the
   registry would hold them after N accepted envelopes (not timed as an append figure);
2. appends K more leaves, each in its own write transaction with its attestation row, through
   the registry's `log.service.append` (what the ingest hook runs), and prints appends/s and
   the append's own latency;
3. ingests R real signed registrations through `attestations.submit` (verify, handler, hooks,
   commit) and prints how much of each the log append took, then ingests from several threads
   with the log on and switched off: appends must not be the bottleneck of ingest. (On
   PostgreSQL the head lock is held from the append to the commit, so concurrent ingest is
   capped near 1 / (append + commit); the figure shows what that costs on this machine.)
4. times inclusion and consistency proofs at the full size for random leaves and sizes: the node
   read alone (one query, then the folds), the whole service answer (head, entry, nodes, signed
   checkpoint), and, with --http, the answer through a real `studbook serve` (HTTP included).

Latencies are wall time on whatever the machine is doing; the CPU time of the benchmark thread is
printed beside them, since on a shared host the wall p99 includes other processes' time slices.

    python bench/log.py [--leaves 1000000] [--db sqlite,postgres] [--appends 2000]
                        [--ingest 300] [--samples 2000] [--http]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import free_port, postgres_database
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import dsse
from lineage.merkle import (
    consistency_proof_plan,
    inclusion_proof_plan,
    leaf_hash,
    new_nodes_for_append,
    root_plan,
)
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, Registration
from registry.app import create_app
from registry.attestations import service as attestations
from registry.auth import Caller, Role
from registry.db import begin_write, make_engine, upgrade
from registry.log import service as log
from registry.log.leaf import entry_bytes, envelope_digest
from registry.models import Attestation
from registry.settings import Settings

_BATCH = 50_000


class Clock:
    """Wall and thread-CPU time of repeated sections."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @contextlib.contextmanager
    def time(self) -> Iterator[None]:
        w, c = time.perf_counter(), time.thread_time()
        yield
        self.cpu.append(time.thread_time() - c)
        self.wall.append(time.perf_counter() - w)

    def __str__(self) -> str:
        w = statistics.quantiles(self.wall, n=100, method="inclusive")
        c = statistics.quantiles(self.cpu, n=100, method="inclusive")
        return (
            f"wall p50 {w[49] * 1e3:6.3f} ms  p99 {w[98] * 1e3:7.3f} ms   "
            f"cpu p50 {c[49] * 1e3:6.3f} ms  p99 {c[98] * 1e3:6.3f} ms"
        )


def synthetic_envelope(i: int, keyid: str) -> dict[str, Any]:
    """An envelope-shaped object of realistic size (not a valid signature: never replayed)."""
    payload = hashlib.sha512(b"%d" % i).hexdigest()
    return {
        "payload": payload * 3,
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": keyid, "sig": payload[:88]}],
    }


def bulk_load(engine: Engine, n: int, keyid: str, principal_id: int) -> float:
    """Write a log of n leaves straight into the tables; returns seconds taken."""
    start = time.perf_counter()
    newest: dict[int, tuple[int, bytes]] = {}  # an append reads only each level's newest node

    def left(level: int, idx: int) -> bytes:
        assert newest[level][0] == idx
        return newest[level][1]

    pg = engine.dialect.name == "postgresql"
    now = datetime.now(UTC)
    for lo in range(0, n, _BATCH):
        atts, entries, nodes = [], [], []
        for i in range(lo, min(n, lo + _BATCH)):
            env = synthetic_envelope(i, keyid)
            entry = entry_bytes(env)
            for level, idx, h in new_nodes_for_append(i, leaf_hash(entry), left):
                newest[level] = (idx, h)
                nodes.append((level, idx, h))
            atts.append((i + 1, hashlib.sha256(b"p%d" % i).hexdigest(), env, now))
            entries.append((i, i + 1, envelope_digest(entry), entry))
        if pg:
            _copy_pg(engine, keyid, principal_id, atts, entries, nodes)
        else:
            with engine.begin() as conn:
                conn.execute(
                    insert(Attestation.__table__),  # type: ignore[attr-defined]
                    [
                        {
                            "id": a,
                            "payload_digest": d,
                            "predicate_type": "bench",
                            "envelope": e,
                            "signer_keyid": keyid,
                            "principal_id": principal_id,
                            "received_at": t,
                        }
                        for a, d, e, t in atts
                    ],
                )
                conn.exec_driver_sql(
                    "INSERT INTO log_entries (idx, attestation_id, envelope_digest, entry) "
                    "VALUES (?, ?, ?, ?)",
                    entries,
                )
                conn.exec_driver_sql(
                    "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes
                )
        print(f"  loaded {min(n, lo + _BATCH):,} leaves", end="\r", flush=True)
    frontier = b"".join(
        newest[level][1] for level in range(n.bit_length() - 1, -1, -1) if n >> level & 1
    )
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE log_head SET size = :n, frontier = :f WHERE id = 1"),
            {"n": n, "f": frontier},
        )
        if pg:
            conn.exec_driver_sql("SELECT setval('attestations_id_seq', %(n)s)", {"n": n})
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
    print()
    return time.perf_counter() - start


def _copy_pg(
    engine: Engine,
    keyid: str,
    principal_id: int,
    atts: list[Any],
    entries: list[Any],
    nodes: list[Any],
) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(
            "COPY attestations (id, payload_digest, predicate_type, envelope, signer_keyid, "
            "principal_id, received_at) FROM STDIN"
        ) as cp:
            for a, d, e, t in atts:
                cp.write_row((a, d, "bench", json.dumps(e), keyid, principal_id, t))
        with cur.copy(
            "COPY log_entries (idx, attestation_id, envelope_digest, entry) FROM STDIN"
        ) as cp:
            for row in entries:
                cp.write_row(row)
        with cur.copy("COPY log_nodes (level, idx, hash) FROM STDIN") as cp:
            for row in nodes:
                cp.write_row(row)
        raw.commit()
    finally:
        raw.close()


def bench_appends(
    engine: Engine, notary: log.Notary, k: int, keyid: str, principal_id: int
) -> None:
    """K appends, one write transaction each, with their attestation rows."""
    txn, append = Clock(), Clock()
    wall = time.perf_counter()
    for j in range(k):
        env = synthetic_envelope(10**9 + j, keyid)
        with txn.time(), Session(engine) as session:
            begin_write(session)
            att_id = session.execute(
                insert(Attestation.__table__)  # type: ignore[attr-defined]
                .values(
                    payload_digest=hashlib.sha256(b"a%d" % j).hexdigest(),
                    predicate_type="bench",
                    envelope=env,
                    signer_keyid=keyid,
                    principal_id=principal_id,
                    received_at=datetime.now(UTC),
                )
                .returning(Attestation.__table__.c.id)  # type: ignore[attr-defined]
            ).scalar_one()
            with append.time():
                log.append(session, att_id, entry_bytes(env), notary)
            session.commit()
    wall = time.perf_counter() - wall
    print(f"appends: {k:,} transactions (attestation row + append + commit)")
    print(f"  throughput          {k / wall:8.0f} appends/s (one writer, one commit each)")
    print(f"  transaction         {txn}")
    print(f"  log.append itself   {append}")


def bench_ingest(
    engine: Engine, settings: Settings, r: int, principal_id: int, threads: int
) -> None:
    """R real submissions; the share of each that the log hook took."""
    create_app(settings, engine=engine)  # installs every domain's hooks, as a server does
    signer = dsse.Signer(dsse.generate_private_key())
    with Session(engine) as session:
        begin_write(session)
        session.execute(
            text(
                "INSERT INTO keys (keyid, public_key, principal_id, created_at) "
                "VALUES (:k, :p, :pid, :t)"
            ),
            {
                "k": signer.keyid,
                "p": dsse.public_key_b64(signer.public_key),
                "pid": principal_id,
                "t": datetime.now(UTC),
            },
        )
        session.commit()
    caller = Caller(principal_id, "bench", Role.REGISTRAR)
    envs = [
        sign_statement(
            registration_statement(
                Registration(
                    ArtifactRef(
                        ArtifactKind.MODEL,
                        f"bench/ingest{i}",
                        "1",
                        hashlib.sha256(b"i%d" % i).hexdigest(),
                    ),
                    (),
                    {},
                )
            ),
            signer,
        ).to_json()
        for i in range(r)
    ]
    hook_clock, submit_clock = Clock(), Clock()
    index = attestations.AFTER_ACCEPT.index(log._after_accept)

    def timed(*args: Any) -> None:
        with hook_clock.time():
            log._after_accept(*args)

    attestations.AFTER_ACCEPT[index] = timed
    try:
        for env in envs:
            with submit_clock.time(), Session(engine, expire_on_commit=False) as session:
                attestations.submit(session, caller, env)
    finally:
        attestations.AFTER_ACCEPT[index] = log._after_accept
    share = sum(hook_clock.wall) / sum(submit_clock.wall)
    print(f"ingest: {r} signed registrations through attestations.submit, one client")
    print(f"  submit (whole)      {submit_clock}")
    print(f"  of which log hook   {hook_clock}")
    print(f"  log share of ingest wall time: {share:.1%}")
    signed = [
        sign_statement(
            registration_statement(
                Registration(
                    ArtifactRef(
                        ArtifactKind.MODEL,
                        f"bench/conc{i}",
                        "1",
                        hashlib.sha256(b"c%d" % i).hexdigest(),
                    ),
                    (),
                    {},
                )
            ),
            signer,
        ).to_json()
        for i in range(2 * r)
    ]
    with_log = concurrent_ingest(engine, caller, signed[:r], threads)
    attestations.AFTER_ACCEPT.remove(log._after_accept)  # the same ingest, log switched off
    try:
        without = concurrent_ingest(engine, caller, signed[r:], threads)
    finally:
        attestations.AFTER_ACCEPT.insert(index, log._after_accept)
    print(
        f"  {threads} concurrent clients: {with_log:.0f} submits/s with the log, "
        f"{without:.0f}/s with it switched off ({with_log / without:.0%})"
    )


def concurrent_ingest(engine: Engine, caller: Caller, envs: list[Any], threads: int) -> float:
    """Submits per second from `threads` clients (in-process, no HTTP)."""
    from concurrent.futures import ThreadPoolExecutor

    def submit(env: Any) -> None:
        with Session(engine, expire_on_commit=False) as session:
            attestations.submit(session, caller, env)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(submit, envs))
    return len(envs) / (time.perf_counter() - start)


def bench_proofs(engine: Engine, notary: log.Notary, samples: int, rng: random.Random) -> None:
    with Session(engine) as session:
        n = log.tree_size(session)
    reads, answers, cons_reads, cons_answers, checkpoints = (Clock() for _ in range(5))
    nodes_read: list[int] = []
    for _ in range(samples):
        i = rng.randrange(n)
        plan = inclusion_proof_plan(i, n)
        nodes_read.append(sum(len(g) for g in plan + root_plan(n)))
        with reads.time(), Session(engine) as session:
            log._resolve(session, [plan, root_plan(n)])
        with answers.time(), Session(engine) as session:
            log.inclusion(session, notary, index=i)
        m = rng.randrange(1, n)
        with cons_reads.time(), Session(engine) as session:
            log._resolve(session, [consistency_proof_plan(m, n), root_plan(n)])
        with cons_answers.time(), Session(engine) as session:
            log.consistency(session, notary, m, n)
        with checkpoints.time(), Session(engine) as session:
            log.signed_checkpoint(session, notary)
    print(f"proofs at size {n:,} ({samples:,} random leaves / old sizes; new session each)")
    print(f"  nodes per inclusion proof + root: mean {statistics.mean(nodes_read):.1f}")
    print(f"  inclusion, node read + folds   {reads}")
    print(f"  inclusion, whole answer        {answers}")
    print(f"  consistency, node read + folds {cons_reads}")
    print(f"  consistency, whole answer      {cons_answers}")
    print(f"  signed checkpoint              {checkpoints}")


def bench_http(url: str, data_dir: Path, samples: int, rng: random.Random, n: int) -> None:
    import subprocess

    import httpx

    port = free_port()
    env = {**os.environ, "STUDBOOK_DATA_DIR": str(data_dir), "STUDBOOK_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "studbook_cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        clock = Clock()
        with httpx.Client(base_url=base) as http:
            for _ in range(samples):
                i = rng.randrange(n)
                with clock.time():
                    http.get("/v1/log/proof/inclusion", params={"index": i}).raise_for_status()
        print(f"  inclusion over HTTP (studbook serve, keep-alive client) {clock}")
    finally:
        proc.terminate()
        proc.wait(15)


def run(db: str, args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="studbook-log-")))
        if db == "postgres":
            url = stack.enter_context(postgres_database())
        else:
            url = f"sqlite:///{data_dir / 'studbook.db'}"
        print(f"== {db}")
        upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        settings = Settings(data_dir=data_dir, database_url=url)
        notary = log.install(engine, settings)
        signer = dsse.Signer(dsse.generate_private_key())
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO principals (id, name, role, created_at) "
                    "VALUES (1, 'b', 'registrar', :t)"
                ),
                {"t": datetime.now(UTC)},
            )
            conn.execute(
                text(
                    "INSERT INTO keys (keyid, public_key, principal_id, created_at) "
                    "VALUES (:k, :p, 1, :t)"
                ),
                {
                    "k": signer.keyid,
                    "p": dsse.public_key_b64(signer.public_key),
                    "t": datetime.now(UTC),
                },
            )
        took = bulk_load(engine, args.leaves, signer.keyid, 1)
        print(f"bulk load of {args.leaves:,} leaves: {took:.0f} s (setup, not an append figure)")
        bench_appends(engine, notary, args.appends, signer.keyid, 1)
        bench_ingest(engine, settings, args.ingest, 1, args.threads)
        bench_proofs(engine, notary, args.samples, rng)
        if args.http:
            with Session(engine) as session:
                n = log.tree_size(session)
            bench_http(url, data_dir, args.samples, rng, n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--ingest", type=int, default=300)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8, help="Concurrent ingest clients.")
    parser.add_argument("--http", action="store_true", help="Also time proofs through a server.")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("alembic").setLevel(logging.WARNING)
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; Python {platform.python_version()}"
    )
    for db in args.db.split(","):
        run(db, args)


if __name__ == "__main__":
    main()
