"""The ``studbook eval`` command group."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evals.cli import eval_cli


def test_group_shape() -> None:
    assert isinstance(eval_cli, click.Group) and eval_cli.name == "eval"
    assert "run" in eval_cli.commands


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        eval_cli, ["run", "digits", "--animal", "owl", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 1
    assert "animal" in res.output and "not a setting of 'digits'" in res.output


def test_unknown_experiment_is_rejected() -> None:
    res = CliRunner().invoke(eval_cli, ["run", "mnist"])
    assert res.exit_code == 2 and "mnist" in res.output


def test_digits_smoke_from_cli(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        eval_cli,
        [
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
