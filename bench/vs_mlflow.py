"""Studbook against MLflow's model registry, side by side in one run, on the same workload.

MLflow is what most teams already run to keep track of models, and its registry is what Studbook
is compared with: a registered model with tags is the nearest thing MLflow has to a lineage
record, so each artifact is one `registered-models/create` carrying its parent and relation as
tags (unsigned), against one signed DSSE registration in Studbook (verified, logged in the
transparency log, indexed for the risk rule). The workload, per repeat:

1. 1,000 models in a chain-and-fan-out shape, parent(i) = i - U{1..8}, from one client;
2. 1,000 more from 8 client threads, each a fine-tune of one of the first 1,000
   (parent(i) = i - 1000 - U{0..7}), so parents always exist;
3. 200 ten-level ancestry queries: Studbook answers with one lineage call, MLflow with ten
   `registered-models/get` calls following the parent tag;
4. 200 children queries: Studbook's lineage one level down, MLflow's `registered-models/search`
   filtered on the parent tag;
5. Studbook only: 2,000 more (each a fine-tune of one of the first 2,000) through
   `POST /v1/attestations/batch`, 1,000 signed envelopes a request, against MLflow's best rate of
   steps 1 and 2 (MLflow has no bulk route for registered models).

Every answer is checked against the shape, and server CPU per registration is read from /proc
for the server's whole process tree. Envelopes and request bodies are built before the clock
starts: the client signs 10,000+ envelopes/s, so the servers are what is measured. MLflow runs
`mlflow server` on SQLite with `--workers 1` (its fastest single-process setting), Studbook
`studbook serve` on SQLite. Repeats are interleaved (MLflow, Studbook, MLflow, ...).

    pip install -e '.[bench]'      # MLflow
    python bench/vs_mlflow.py [--n 1000] [--threads 8] [--queries 200] [--repeats 3]

On a shared machine, run it under `nice` and read the load averages it prints with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _server import free_port, server

from lineage.digests import opaque_digest
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation

DEPTH = 10


def loadavg() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and all its descendants, from /proc."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    total = 0
    for p, t in ticks.items():
        q = p
        while q > 1:
            if q == pid:
                total += t
                break
            q = parent.get(q, 0)
    return total / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- the workload


@dataclass
class Shape:
    """Artifact i's parent (None for the root), and what the queries expect."""

    n: int
    parent: list[int | None]
    ancestry_probes: list[int]
    children_probes: list[int]

    def chain(self, i: int) -> list[int]:
        out, here = [], self.parent[i]
        while here is not None and len(out) < DEPTH:
            out.append(here)
            here = self.parent[here]
        return out

    def children(self, i: int) -> set[int]:
        return {j for j, p in enumerate(self.parent) if p == i}


def make_shape(n: int, queries: int, seed: int) -> Shape:
    rng = random.Random(seed)
    parent: list[int | None] = [None]
    for i in range(1, n):
        parent.append(max(0, i - rng.randint(1, 8)))
    for i in range(n, 2 * n):
        parent.append(max(0, i - n - rng.randint(0, 7)))
    shape = Shape(2 * n, parent, [], [])
    deep = [i for i in range(n) if len(shape.chain(i)) == DEPTH]
    shape.ancestry_probes = [rng.choice(deep) for _ in range(queries)]
    shape.children_probes = [rng.randrange(n) for _ in range(queries)]
    return shape


def name(seed: int, i: int) -> str:
    """The artifact's name (MLflow allows no '/' in names, so none here)."""
    return f"bench-vs{seed}-m{i}"


# ----------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One registry's figures from one repeat."""

    single_per_s: float = 0.0
    threads_per_s: float = 0.0
    cpu_ms_per_reg: float = 0.0
    ancestry_ms: list[float] = field(default_factory=list)
    children_ms: list[float] = field(default_factory=list)
    calls_per_ancestry: float = 0.0
    batch_per_s: float = 0.0  # Studbook only: the same registrations through the batch route
    batch_cpu_ms_per_reg: float = 0.0


def post_all(
    url: str, headers: dict[str, str], bodies: list[tuple[str, bytes]], threads: int
) -> float:
    """POST every (path, body); returns the wall time. Any non-2xx answer stops the bench."""

    def worker(part: list[tuple[str, bytes]]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            for path, body in part:
                r = c.post(path, content=body)
                if r.status_code >= 300:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")

    t0 = time.perf_counter()
    if threads == 1:
        worker(bodies)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(worker, [bodies[k::threads] for k in range(threads)]))
    return time.perf_counter() - t0


def timed(
    fn: Callable[[int], Any], probes: list[int], check: Callable[[int, Any], None]
) -> list[float]:
    out = []
    for i in probes:
        t0 = time.perf_counter()
        answer = fn(i)
        out.append((time.perf_counter() - t0) * 1000)
        check(i, answer)
    return out


# ----------------------------------------------------------------------------- MLflow


@contextlib.contextmanager
def mlflow_server(tmp: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    if exe is None:
        raise SystemExit("MLflow is not installed: pip install -e '.[bench]'")
    port = free_port()
    log = open(tmp / "mlflow.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            exe,
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'mlflow.db'}",
            "--default-artifact-root",
            str(tmp / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError((tmp / "mlflow.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_mlflow(shape: Shape, n: int, threads: int, seed: int) -> Run:
    import json

    run = Run()
    api = "/api/2.0/mlflow/registered-models"
    with (
        tempfile.TemporaryDirectory(prefix="studbook-vs-mlflow-") as d,
        mlflow_server(Path(d)) as (
            url,
            proc,
        ),
    ):

        def body(i: int) -> tuple[str, bytes]:
            p = shape.parent[i]
            tags = [{"key": "studbook.digest", "value": opaque_digest(f"vs:{seed}:{i}")}]
            if p is not None:
                tags += [
                    {"key": "studbook.parent", "value": name(seed, p)},
                    {"key": "studbook.relation", "value": Relation.FINE_TUNED_FROM.value},
                ]
            return f"{api}/create", json.dumps({"name": name(seed, i), "tags": tags}).encode()

        headers = {"Content-Type": "application/json"}
        first = [body(i) for i in range(n)]
        rest = [body(i) for i in range(n, 2 * n)]
        cpu0 = tree_cpu(proc.pid)
        wall = post_all(url, headers, first, 1)
        cpu1 = tree_cpu(proc.pid)
        run.single_per_s = n / wall
        run.threads_per_s = n / post_all(url, headers, rest, threads)
        cpu2 = tree_cpu(proc.pid)
        run.cpu_ms_per_reg = (cpu2 - cpu0) / (2 * n) * 1000
        del cpu1
        with httpx.Client(base_url=url, timeout=60) as c:
            calls = [0]

            def ancestry(i: int) -> list[str]:
                out, here = [], name(seed, i)
                for _ in range(DEPTH):
                    r = c.get(f"{api}/get", params={"name": here})
                    calls[0] += 1
                    r.raise_for_status()
                    tags = {
                        t["key"]: t["value"] for t in r.json()["registered_model"].get("tags", [])
                    }
                    if "studbook.parent" not in tags:
                        break
                    here = tags["studbook.parent"]
                    out.append(here)
                return out

            def children(i: int) -> set[str]:
                found: set[str] = set()
                token = None
                while True:
                    params = {
                        "filter": f"tags.`studbook.parent` = '{name(seed, i)}'",
                        "max_results": 1000,
                    }
                    if token:
                        params["page_token"] = token
                    r = c.get(f"{api}/search", params=params)
                    r.raise_for_status()
                    data = r.json()
                    found |= {m["name"] for m in data.get("registered_models", [])}
                    token = data.get("next_page_token")
                    if not token:
                        return found

            def check_ancestry(i: int, got: list[str]) -> None:
                if got != [name(seed, j) for j in shape.chain(i)]:
                    raise RuntimeError(f"MLflow ancestry of {i} is wrong: {got}")

            def check_children(i: int, got: set[str]) -> None:
                if got != {name(seed, j) for j in shape.children(i)}:
                    raise RuntimeError(f"MLflow children of {i} are wrong: {got}")

            run.ancestry_ms = timed(ancestry, shape.ancestry_probes, check_ancestry)
            run.calls_per_ancestry = calls[0] / len(shape.ancestry_probes)
            run.children_ms = timed(children, shape.children_probes, check_children)
    return run


# ----------------------------------------------------------------------------- Studbook


def run_studbook(
    shape: Shape, n: int, threads: int, seed: int, server_args: tuple[str, ...]
) -> Run:
    run = Run()
    with server("sqlite", extra_args=server_args) as srv:
        digest = [opaque_digest(f"vs:{seed}:{i}") for i in range(4 * n)]

        def body(i: int) -> tuple[str, bytes]:
            p = shape.parent[i] if i < 2 * n else i - 2 * n
            parents = () if p is None else (ParentLink(Relation.FINE_TUNED_FROM, digest[p]),)
            reg = Registration(
                ArtifactRef(ArtifactKind.MODEL, name(seed, i), "1", digest[i]), parents
            )
            env = sign_statement(registration_statement(reg), srv.signer)
            return "/v1/attestations", env.to_bytes()

        headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}
        first = [body(i) for i in range(n)]
        rest = [body(i) for i in range(n, 2 * n)]
        cpu0 = tree_cpu(srv.proc.pid)
        run.single_per_s = n / post_all(srv.url, headers, first, 1)
        run.threads_per_s = n / post_all(srv.url, headers, rest, threads)
        run.cpu_ms_per_reg = (tree_cpu(srv.proc.pid) - cpu0) / (2 * n) * 1000
        with httpx.Client(base_url=srv.url, headers=headers, timeout=60) as c:

            def lineage(i: int, direction: str, depth: int) -> Any:
                r = c.get(
                    f"/v1/artifacts/sha256:{digest[i]}/lineage",
                    params={"direction": direction, "depth": depth},
                )
                r.raise_for_status()
                return r.json()

            def check_ancestry(i: int, got: Any) -> None:
                nodes = {x["artifact"]["digest"] for x in got["nodes"]} - {digest[i]}
                if nodes != {digest[j] for j in shape.chain(i)}:
                    raise RuntimeError(f"Studbook ancestry of {i} is wrong")

            def check_children(i: int, got: Any) -> None:
                nodes = {x["artifact"]["digest"] for x in got["nodes"]} - {digest[i]}
                if nodes != {digest[j] for j in shape.children(i)}:
                    raise RuntimeError(f"Studbook children of {i} are wrong")

            run.ancestry_ms = timed(
                lambda i: lineage(i, "up", DEPTH), shape.ancestry_probes, check_ancestry
            )
            run.calls_per_ancestry = 1
            run.children_ms = timed(
                lambda i: lineage(i, "down", 1), shape.children_probes, check_children
            )
            bulk = [body(i)[1] for i in range(2 * n, 4 * n)]
            cpu0 = tree_cpu(srv.proc.pid)
            t0 = time.perf_counter()
            for k in range(0, len(bulk), 1000):
                part = bulk[k : k + 1000]
                r = c.post(
                    "/v1/attestations/batch",
                    content=b'{"envelopes":[' + b",".join(part) + b"]}",
                    timeout=600,
                )
                if r.status_code != 201 or r.json()["created"] != len(part):
                    raise RuntimeError(f"batch: {r.status_code} {r.text[:300]}")
            run.batch_per_s = len(bulk) / (time.perf_counter() - t0)
            run.batch_cpu_ms_per_reg = (tree_cpu(srv.proc.pid) - cpu0) / len(bulk) * 1000
    return run


# ----------------------------------------------------------------------------- table


def span(xs: list[float], fmt: str = "{:.0f}") -> str:
    lo, hi = min(xs), max(xs)
    return (
        fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"
    )


def ratio(num: list[float], den: list[float]) -> str:
    rs = [a / b for a, b in zip(num, den, strict=True)]
    return span(rs, "{:.1f}") + "x"


def table(ml: list[Run], sb: list[Run], threads: int) -> str:
    med = statistics.median

    def row(label: str, m: list[float], b: list[float], fmt: str, unit: str, faster: str) -> str:
        r = ratio(b, m) if faster == "higher" else ratio(m, b)
        return f"| {label} | {span(m, fmt)}{unit} | {span(b, fmt)}{unit} | {r} |"

    calls = med([r.calls_per_ancestry for r in ml])
    return "\n".join(
        [
            "| | MLflow (unsigned) | Studbook (signed) | ratio |",
            "|---|---|---|---|",
            row(
                "registrations/s, one client",
                [r.single_per_s for r in ml],
                [r.single_per_s for r in sb],
                "{:.0f}",
                "",
                "higher",
            ),
            row(
                f"registrations/s, {threads} client threads",
                [r.threads_per_s for r in ml],
                [r.threads_per_s for r in sb],
                "{:.0f}",
                "",
                "higher",
            ),
            row(
                "registrations/s, Studbook's batch route (MLflow: its best rate above)",
                [max(r.single_per_s, r.threads_per_s) for r in ml],
                [r.batch_per_s for r in sb],
                "{:.0f}",
                "",
                "higher",
            ),
            f"| server CPU per registration, batch route | | "
            f"{span([r.batch_cpu_ms_per_reg for r in sb], '{:.2f}')} ms | |",
            row(
                "server CPU per registration",
                [r.cpu_ms_per_reg for r in ml],
                [r.cpu_ms_per_reg for r in sb],
                "{:.1f}",
                " ms",
                "lower",
            ),
            row(
                f"10-level ancestry, p50 (MLflow: {calls:.0f} calls; Studbook: one)",
                [med(r.ancestry_ms) for r in ml],
                [med(r.ancestry_ms) for r in sb],
                "{:.1f}",
                " ms",
                "lower",
            ),
            row(
                "children of a model, p50",
                [med(r.children_ms) for r in ml],
                [med(r.children_ms) for r in sb],
                "{:.1f}",
                " ms",
                "lower",
            ),
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="artifacts per phase (default 1000)")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--studbook-args", default="", help="extra `studbook serve` arguments, space-separated"
    )
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {loadavg()}",
        flush=True,
    )
    ml: list[Run] = []
    sb: list[Run] = []
    for rep in range(args.repeats):
        shape = make_shape(args.n, args.queries, args.seed + rep)
        for who in ("MLflow", "Studbook"):
            before = loadavg()
            if who == "MLflow":
                r = run_mlflow(shape, args.n, args.threads, args.seed + rep)
            else:
                extra = tuple(args.studbook_args.split())
                r = run_studbook(shape, args.n, args.threads, args.seed + rep, extra)
            (ml if who == "MLflow" else sb).append(r)
            print(
                f"repeat {rep + 1} {who:8s}: {r.single_per_s:6.0f}/s one client, "
                f"{r.threads_per_s:6.0f}/s {args.threads} threads, server CPU "
                f"{r.cpu_ms_per_reg:.2f} ms/registration, ancestry p50 "
                f"{statistics.median(r.ancestry_ms):.1f} ms, children p50 "
                f"{statistics.median(r.children_ms):.1f} ms"
                + (
                    f", batch route {r.batch_per_s:.0f}/s at {r.batch_cpu_ms_per_reg:.2f} ms CPU"
                    if r.batch_per_s
                    else ""
                )
                + f"  ({before} -> {loadavg()})",
                flush=True,
            )
    print()
    print(table(ml, sb, args.threads))
    print(f"\nevery answer checked against the shape; {loadavg()}")


if __name__ == "__main__":
    main()
