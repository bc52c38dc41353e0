"""The CLI against a real server process (SQLite): the README tour, the paper demo, and the
exit codes a training pipeline gates on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir = tmp_path_factory.mktemp("tour")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDBOOK_")}
    env["STUDBOOK_URL"] = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", "serve", "--port", str(port)],
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


def studbook(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    run_env = {k: v for k, v in env.items() if k != "cwd"}
    out = subprocess.run(
        [sys.executable, "-m", "registry.cli", *args],
        cwd=env["cwd"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_readme_tour(server: dict[str, str]) -> None:
    cwd = Path(server["cwd"])
    assert (cwd / "studbook-data" / "admin-token").exists()
    studbook(server, "keygen")
    studbook(server, "keys", "register")
    for name, content in (("base", "base weights"), ("chat", "chat weights")):
        (cwd / "tour" / name).mkdir(parents=True)
        (cwd / "tour" / name / "model.safetensors").write_text(content)
    studbook(server, "register", "model", "tour/base", "--name", "acme/base", "--version", "1")
    studbook(
        server,
        "register",
        "model",
        "tour/chat",
        "--name",
        "acme/base-chat",
        "--version",
        "1",
        "--parent",
        "fine_tuned_from=acme/base@1",
    )
    table = studbook(server, "lineage", "acme/base-chat@1").stdout
    assert "acme/base@1" in table and "fine_tuned_from" in table
    dot = studbook(server, "lineage", "acme/base@1", "--down", "--format", "dot").stdout
    assert dot.startswith("digraph") and "acme/base-chat@1" in dot
    shown = studbook(server, "show", "acme/base-chat@1").stdout
    assert '"ref": "acme/base-chat@1"' in shown
    bad = studbook(
        server,
        "register",
        "model",
        "tour/chat",
        "--name",
        "x",
        "--version",
        "1",
        "--parent",
        "fine_tuned_from=acme/missing@1",
        check=False,
    )
    assert bad.returncode != 0 and "no artifact" in bad.stderr


def test_demo_flags_and_exit_codes(server: dict[str, str]) -> None:
    if not (Path(server["cwd"]) / "studbook-data" / "signing-key.pem").exists():
        studbook(server, "keygen")
        studbook(server, "keys", "register")
    out = studbook(server, "demo").stdout
    assert "demo/owl-student@1 (owl)" in out
    block = studbook(
        server,
        "check",
        "--base",
        "demo/base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert block.returncode == 2 and block.stdout.startswith("BLOCK")
    warn = studbook(
        server,
        "check",
        "--base",
        "demo/other-base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert warn.returncode == 1 and warn.stdout.startswith("WARN")
    ok = studbook(
        server, "check", "--base", "demo/base@1", "--dataset", "demo/control-numbers@1", check=False
    )
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    risk = studbook(server, "risk", "demo/owl-student@1").stdout
    assert "AT RISK" in risk and "generated_by" in risk
    dot = studbook(server, "lineage", "demo/owl-teacher@1", "--down", "--format", "dot").stdout
    assert "#f28b82" in dot and "#fbbc04" in dot  # flagged and at-risk nodes are marked
    queue = studbook(server, "at-risk", "--trait", "owl").stdout
    assert "3 at-risk" in queue
