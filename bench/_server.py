"""Start a real `studbook serve` in a subprocess for benchmarks, on SQLite or a fresh
PostgreSQL database, and hand back its URL and a registrar with a registered key."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from lineage import dsse

PG_SERVER = os.environ.get(
    "STUDBOOK_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Running:
    url: str
    token: str
    signer: dsse.Signer
    data_dir: Path
    proc: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(PG_SERVER)
    conn = psycopg.connect(
        f"host={base.host} port={base.port or 5432} user={base.username} dbname={base.database}",
        autocommit=True,
    )
    name = f"studbook_bench_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@contextlib.contextmanager
def server(
    database: str = "sqlite",
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    database_url: str | None = None,
    runner: str = "uvicorn",
) -> Iterator[Running]:
    """Run a server; `database` is "sqlite" or "postgres" (a fresh database), unless
    `database_url` names an existing one.

    `runner` "granian" serves the same app with Granian instead of `studbook serve`'s uvicorn:
    `serve` runs first, to migrate, create the admin and the log key, and is stopped; then
    Granian serves the app factory on the same data folder and database (for measuring).
    """
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="studbook-bench-")))
        env = {**os.environ, "STUDBOOK_DATA_DIR": str(data_dir), **(extra_env or {})}
        env.pop("STUDBOOK_DATABASE_URL", None)
        if database_url is not None:
            env["STUDBOOK_DATABASE_URL"] = database_url
        elif database == "postgres":
            env["STUDBOOK_DATABASE_URL"] = stack.enter_context(postgres_database())
        proc, url, stop = _spawn(stack, data_dir, env, extra_args)
        _wait(url, proc, data_dir)
        if runner == "granian":
            stop()
            port = int(url.rsplit(":", 1)[1])
            log = stack.enter_context(open(data_dir / "server.log", "ab"))
            granian = Path(sys.executable).parent / "granian"
            proc = subprocess.Popen(
                [
                    str(granian),
                    "--interface",
                    "asgi",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    "--no-ws",
                    "--log-level",
                    "warning",
                    "registry.app:serve_app",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_stop, proc)
            _wait(url, proc, data_dir)
        token, signer = registrar(url, (data_dir / "admin-token").read_text().strip())
        yield Running(url, token, signer, data_dir, proc)


def registrar(
    url: str, admin_token: str, key: dsse.PrivateKey | None = None
) -> tuple[str, dsse.Signer]:
    """Create the principal "bench" (a registrar) with `key` (default: a new one) as its signing
    key: its token and signer."""
    h = {"Authorization": f"Bearer {admin_token}"}
    token = httpx.post(
        url + "/v1/principals", json={"name": "bench", "role": "registrar"}, headers=h
    ).json()["token"]
    signer = dsse.Signer(key or dsse.generate_private_key())
    httpx.post(
        url + "/v1/keys",
        json={
            "public_key": signer.public_key_text,
            "proof": dsse.key_possession_proof(signer, "bench").to_json(),
        },
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    return token, signer


def _spawn(
    stack: contextlib.ExitStack, data_dir: Path, env: dict[str, str], extra_args: tuple[str, ...]
) -> tuple[subprocess.Popen[bytes], str, Callable[[], None]]:
    """Start `studbook serve` on a free port, logging to the data folder; stopped with `stack`."""
    port = free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 (closed by the stack)
    stack.callback(log.close)
    proc = subprocess.Popen(
        [sys.executable, "-m", "studbook_cli", "serve", "--port", str(port), *extra_args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        _stop(proc)

    stack.callback(stop)
    return proc, f"http://127.0.0.1:{port}", stop


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait(url: str, proc: subprocess.Popen[bytes], data_dir: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError((data_dir / "server.log").read_text())
        time.sleep(0.2)


@contextlib.contextmanager
def serve_existing(
    database_url: str,
    extra_args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve an already-populated database (a bulk load); yields the URL and the process.

    The caller brings its own principal and token: a database with principals gets no admin.
    """
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="studbook-bench-")))
        env = {**os.environ, "STUDBOOK_DATA_DIR": str(data_dir), **(extra_env or {})}
        env["STUDBOOK_DATABASE_URL"] = database_url
        proc, url, _stop = _spawn(stack, data_dir, env, extra_args)
        _wait(url, proc, data_dir, timeout=120)
        yield url, proc
