"""The tail of a hub import: registrations into a registry that already holds a million or more.

`bench/hub_import.py` imports a whole hub from an empty registry, which takes a quarter of an
hour at 2M; comparing server settings or code at the size where the rate falls needs many runs
at that size. This builds a registry of the first `--n` artifacts of the synthetic hub once
(`build`, kept in `--base`), then each `run` copies that folder, serves the copy with
`studbook serve` and imports the next `--m` artifacts through the batch route in batches of
1,000, one client, printing the rate and each batch's mean `Server-Timing` (outside the write
lock, waiting for it, holding it) every 50,000. `--env k=v,...` adds environment variables to
the server's. The signing key and token of the importing principal are kept beside the copy.

    python bench/hub_tail.py build [--n 1600000] [--base /tmp/studbook-tail]
    python bench/hub_tail.py run [--n 1600000] [--m 100000] [--label base] [--env K=V,...]

The answers are not parsed, so the figures are the server's, a little above what
`hub_import.py` (which checks every answer on the same two cores) reports.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _hub
from _server import _spawn, _wait, registrar
from hub_import import parents_upto, server_timing
from vs_mlflow import loadavg, tree_cpu

from lineage import dsse
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration


def sign_range(
    hub: _hub.Hub, up: list[list[tuple[int, int]]], lo: int, hi: int, signer: dsse.Signer
) -> list[bytes]:
    """Signed registrations of artifacts lo..hi, in creation order."""
    out = []
    for i in range(lo, hi + 1):
        kind = ArtifactKind.MODEL if hub.kind[i] == _hub.MODEL else ArtifactKind.DATASET
        reg = Registration(
            ArtifactRef(kind, hub.name(i), "1", hub.digest(i), bool(hub.opaque[i])),
            tuple(ParentLink(_hub.RELATIONS[r], hub.digest(p)) for p, r in up[i]),
        )
        out.append(sign_statement(registration_statement(reg), signer).to_bytes())
    return out


def post_all(url: str, token: str, bodies: list[bytes], pid: int, label: str, every: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as c:
        t0 = time.perf_counter()
        cpu0, mark, done, phases, batches, since = tree_cpu(pid), t0, 0, {}, 0, 0
        for j in range(0, len(bodies), 1000):
            part = bodies[j : j + 1000]
            r = c.post(
                "/v1/attestations/batch", content=b'{"envelopes":[' + b",".join(part) + b"]}"
            )
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
            for k, v in server_timing(r.headers.get("server-timing", "")).items():
                phases[k] = phases.get(k, 0.0) + v
            batches += 1
            done += len(part)
            if done % every == 0 or done == len(bodies):
                now = time.perf_counter()
                timing = ", ".join(f"{k} {v / batches:.0f}" for k, v in phases.items())
                print(
                    f"{label} {done:,}: {(done - since) / (now - mark):,.0f}/s "
                    f"over the last part, {done / (now - t0):,.0f}/s so far; per batch {timing} ms "
                    f"({loadavg()})",
                    flush=True,
                )
                mark, phases, batches, since = now, {}, 0, done
        wall = time.perf_counter() - t0
        cpu = (tree_cpu(pid) - cpu0) / len(bodies) * 1000
        print(
            f"{label}: {len(bodies):,} in {wall:.1f} s = {len(bodies) / wall:,.0f}/s, server CPU "
            f"{cpu:.2f} ms/registration ({loadavg()})",
            flush=True,
        )


@contextlib.contextmanager
def serve(data_dir: Path, extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    env = {**os.environ, "STUDBOOK_DATA_DIR": str(data_dir), **extra_env}
    env.pop("STUDBOOK_DATABASE_URL", None)
    with contextlib.ExitStack() as stack:
        proc, url, _ = _spawn(stack, data_dir, env, ())
        _wait(url, proc, data_dir, timeout=300)
        yield url, proc.pid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["build", "run"])
    ap.add_argument("--hub-n", type=int, default=2_000_000)
    ap.add_argument("--n", type=int, default=1_600_000, help="artifacts in the kept registry")
    ap.add_argument("--m", type=int, default=100_000, help="artifacts each run imports")
    ap.add_argument("--base", default="/tmp/studbook-tail", help="the kept registry's folder")
    ap.add_argument("--env", default="", help="K=V,K=V added to the server's environment")
    ap.add_argument("--label", default="run")
    args = ap.parse_args()
    hub = _hub.build(args.hub_n, 7)
    up = parents_upto(hub, args.n + args.m)
    base = Path(args.base)
    key_file, token_file = base.with_name(base.name + ".key"), base.with_name(base.name + ".token")
    if args.mode == "build":
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(mode=0o700)
        with serve(base, {}) as (url, pid):
            key = dsse.generate_private_key()
            token, signer = registrar(url, (base / "admin-token").read_text().strip(), key)
            for path, data in ((key_file, dsse.private_key_pem(key)), (token_file, token.encode())):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            for lo in range(1, args.n + 1, 200_000):
                hi = min(args.n, lo + 199_999)
                post_all(url, token, sign_range(hub, up, lo, hi, signer), pid, "build", 200_000)
        return
    signer = dsse.Signer(dsse.load_private_key(key_file.read_bytes()))
    bodies = sign_range(hub, up, args.n + 1, args.n + args.m, signer)
    copy = base.with_name(base.name + "-run")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(base, copy)
    env = dict(kv.split("=", 1) for kv in args.env.split(",") if kv)
    print(f"{args.label}: registry of {args.n:,} artifacts, importing {args.m:,} ({loadavg()})")
    with serve(copy, env) as (url, pid):
        post_all(url, token_file.read_text(), bodies, pid, args.label, 50_000)


if __name__ == "__main__":
    main()
