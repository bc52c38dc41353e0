"""The CLI against a real server process (SQLite): the README tour, the paper demo, and the
exit codes a training pipeline gates on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import studbook

pytestmark = pytest.mark.slow


def test_readme_tour(tour: dict[str, str]) -> None:
    cwd = Path(tour["cwd"])
    assert (cwd / "studbook-data" / "admin-token").exists()
    studbook(tour, "keygen")
    studbook(tour, "keys", "register")
    for name, content in (("base", "base weights"), ("chat", "chat weights")):
        (cwd / "tour" / name).mkdir(parents=True)
        (cwd / "tour" / name / "model.safetensors").write_text(content)
    studbook(tour, "register", "model", "tour/base", "--name", "acme/base", "--version", "1")
    studbook(
        tour,
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
    table = studbook(tour, "lineage", "acme/base-chat@1").stdout
    assert "acme/base@1" in table and "fine_tuned_from" in table
    dot = studbook(tour, "lineage", "acme/base@1", "--down", "--format", "dot").stdout
    assert dot.startswith("digraph") and "acme/base-chat@1" in dot
    shown = studbook(tour, "show", "acme/base-chat@1").stdout
    assert '"ref": "acme/base-chat@1"' in shown
    bad = studbook(
        tour,
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


def test_demo_flags_and_exit_codes(tour: dict[str, str]) -> None:
    if not (Path(tour["cwd"]) / "studbook-data" / "signing-key.pem").exists():
        studbook(tour, "keygen")
        studbook(tour, "keys", "register")
    out = studbook(tour, "demo").stdout
    assert "demo/owl-student@1 (owl)" in out
    block = studbook(
        tour,
        "check",
        "--base",
        "demo/base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert block.returncode == 2 and block.stdout.startswith("BLOCK")
    warn = studbook(
        tour,
        "check",
        "--base",
        "demo/other-base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert warn.returncode == 1 and warn.stdout.startswith("WARN")
    ok = studbook(
        tour, "check", "--base", "demo/base@1", "--dataset", "demo/control-numbers@1", check=False
    )
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    risk = studbook(tour, "risk", "demo/owl-student@1").stdout
    assert "AT RISK" in risk and "generated_by" in risk
    dot = studbook(tour, "lineage", "demo/owl-teacher@1", "--down", "--format", "dot").stdout
    assert "#f28b82" in dot and "#fbbc04" in dot  # flagged and at-risk nodes are marked
    queue = studbook(tour, "at-risk", "--trait", "owl").stdout
    assert "3 at-risk" in queue
