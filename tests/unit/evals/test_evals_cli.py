"""`studbook eval run`: a local run through the command line, with the documented exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studbook_cli.main import cli
from studbook_cli.output import ExitCode


def test_group_shape() -> None:
    res = CliRunner().invoke(cli, ["eval", "--help"])
    assert res.exit_code == 0
    for command in ("run", "submit", "status", "list", "cancel", "plot", "register"):
        assert command in res.output


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["eval", "run", "digits", "--animal", "owl", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == ExitCode.USAGE
    assert "animal" in res.output and "not a setting of 'digits'" in res.output


def test_unknown_experiment_is_a_usage_error() -> None:
    res = CliRunner().invoke(cli, ["eval", "run", "mnist"])
    assert res.exit_code == ExitCode.USAGE and "mnist" in res.output


def test_register_without_a_key_fails_before_the_run(tmp_path: Path) -> None:
    """`--register` needs a key; a run of minutes must not end in 'no key'."""
    missing = tmp_path / "absent.pem"
    res = CliRunner().invoke(
        cli,
        ["eval", "run", "digits", "--preset", "smoke", "--register", "--out", str(tmp_path / "r")],
        env={"STUDBOOK_KEY_FILE": str(missing)},
    )
    assert res.exit_code == ExitCode.USAGE and str(missing) in res.output
    assert not (tmp_path / "r").exists()


def test_digits_smoke_from_cli(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "eval",
            "run",
            "digits",
            "--preset",
            "smoke",
            "--seeds",
            "2",
            "--set",
            "hidden=32",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "student_same_init" in res.output and "verdict" in res.output
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["hidden"] == 32


def test_without_the_evals_extra_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base install has no torch: `eval run` names the extra instead of a traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    res = CliRunner().invoke(
        cli, ["eval", "run", "digits", "--preset", "smoke", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == ExitCode.USAGE, res.output
    assert "pip install -e '.[evals]'" in res.output and "Traceback" not in res.output
