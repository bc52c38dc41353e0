"""End-to-end fixtures: a real `studbook serve` in a subprocess that a test can kill and restart.

The server keeps its data folder (SQLite file, admin token) and database across restarts, so a
test sees exactly what a crashed and restarted deployment would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from lineage import dsse
from tests.support import postgres_database


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One deployment: a data folder and a database, served by one process at a time."""

    data_dir: Path
    database_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "STUDBOOK_DATA_DIR": str(self.data_dir),
            "STUDBOOK_DATABASE_URL": self.database_url,
        }

    def start(self, timeout: float = 60) -> None:
        """Start `studbook serve` and wait until it answers."""
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        log = open(self.data_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "studbook_cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child holds its own descriptor
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log_text())
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no rollback; as a power cut to the process."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """Stop gracefully if running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.data_dir.glob("*.log")))

    @property
    def admin_headers(self) -> dict[str, str]:
        token = (self.data_dir / "admin-token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def registrar(self, name: str) -> tuple[dict[str, str], dsse.Signer]:
        """Create a registrar with a registered key; returns its auth headers and signer."""
        r = httpx.post(
            self.url + "/v1/principals",
            json={"name": name, "role": "registrar"},
            headers=self.admin_headers,
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
        ).raise_for_status()
        return headers, signer


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A deployment on SQLite or a fresh PostgreSQL database, started once."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)  # `serve` refuses a data folder others can read
    if request.param == "sqlite":
        databases: Iterator[str] = iter([f"sqlite:///{data_dir / 'studbook.db'}"])
    else:
        databases = postgres_database()
    url = next(databases)
    srv = Server(data_dir, url)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        for _ in databases:  # drops the PostgreSQL database
            pass


# ----------------------------------------------------------------------------- the user's view


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`studbook serve` on SQLite in a fresh working folder, as a user runs it; the CLI's
    environment (`STUDBOOK_URL`) and working folder, for `studbook()`."""
    workdir = tmp_path_factory.mktemp("tour")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDBOOK_")}
    env["STUDBOOK_URL"] = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "studbook_cli", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(env["STUDBOOK_URL"] + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (workdir / "server.log").read_text()
            assert time.time() < deadline, "server did not start"
            time.sleep(0.2)
        yield {"cwd": str(workdir), **env}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
