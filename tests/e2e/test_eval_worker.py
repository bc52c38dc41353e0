"""`studbook serve` alone runs evals (SQLite: a local worker process beside the API, never in
it), and the CLI queues, follows and registers them; a local run is posted with `--register`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow

SMALL = ("--set", "seeds=2", "--set", "hidden=32", "--set", "noise_samples=1024")


def studbook(
    srv: Server, *args: str, check: bool = True, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**srv.env, "STUDBOOK_URL": srv.url}
    if key is not None:
        env["STUDBOOK_KEY_FILE"] = str(key)
    out = subprocess.run(
        [sys.executable, "-m", "studbook_cli", *args],
        cwd=srv.data_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_serve_alone_runs_an_eval_and_the_cli_follows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDBOOK_EVAL_NICE", "0")  # a test on a shared machine: no handicap
    monkeypatch.setenv("STUDBOOK_EVAL_IDLE_PRIORITY", "false")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # `serve` refuses a data folder others can read
    srv = Server(data, f"sqlite:///{data / 'studbook.db'}")
    srv.start()
    try:
        submitted = studbook(
            srv, "eval", "submit", "digits", "--preset", "smoke", *SMALL, "--watch"
        )
        assert "status: SUCCEEDED" in submitted.stdout, submitted.stdout + srv.log_text()
        assert "--evidence attestation:" in submitted.stdout
        listed = studbook(srv, "eval", "list").stdout
        assert "succeeded" in listed and "digits" in listed
        shown = json.loads(studbook(srv, "eval", "status", "1", "--json").stdout)
        assert shown["status"] == "succeeded" and shown["worker"]
        studbook(srv, "eval", "plot", "1", "--out", str(tmp_path / "digits.png"))
        assert (tmp_path / "digits.png").read_bytes().startswith(b"\x89PNG")

        # The API process itself never loaded torch: the eval ran in the worker's child.
        assert srv.proc is not None
        maps = Path(f"/proc/{srv.proc.pid}/maps").read_text()
        assert "libtorch" not in maps

        # A run made here, posted with the user's own key.
        key = tmp_path / "me.pem"
        studbook(srv, "keygen", "--out", str(key))
        studbook(srv, "keys", "register", key=key)
        out_dir = tmp_path / "local-run"
        local = studbook(
            srv, "eval", "run", "digits", "--preset", "smoke", *SMALL,
            "--out", str(out_dir), "--register", key=key,
        )  # fmt: skip
        att = int(local.stdout.rsplit("attestation:", 1)[1].split(")")[0])
        stored = httpx.get(f"{srv.url}/v1/attestations/{att}", headers=srv.admin_headers).json()
        assert stored["principal"] == "admin"
        assert stored["statement"]["predicate"]["run_id"] == "local:local-run"
    finally:
        srv.stop()
    # The worker notices its server is gone (however it ended) and stops within a poll period.
    deadline = time.monotonic() + 15
    pattern = f"registry.commands worker --parent-pid {srv.proc.pid}"
    while subprocess.run(["pgrep", "-f", pattern], capture_output=True).stdout:
        assert time.monotonic() < deadline, "the local worker outlived its server"
        time.sleep(0.2)
