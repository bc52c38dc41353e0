"""Config resolution, override validation, the run directory, and import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evals import (
    EvalError,
    InvalidOverrideError,
    UnknownExperimentError,
    UnknownPresetError,
    experiments,
    presets,
    resolve_config,
    run_experiment,
)
from evals.presets import DigitsConfig, NumbersConfig


def test_importing_evals_does_not_import_torch() -> None:
    code = (
        "import sys, evals, evals.numbers.filter, evals.numbers.prompts;"
        "bad = [m for m in ('torch', 'transformers', 'numpy', 'matplotlib') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_experiments_and_presets() -> None:
    assert experiments() == ("digits", "lm-soft", "numbers", "toy-lm")
    for name in experiments():
        assert {"smoke", "default", "cpu", "paper"} <= set(presets(name))


def test_layering_preset_then_overrides() -> None:
    cfg = resolve_config("digits", "smoke", {"seeds": 4, "lr": 1, "mnist": None})
    assert isinstance(cfg, DigitsConfig)
    assert cfg.seeds == 4 and cfg.lr == 1.0 and cfg.hidden == 64
    paper = resolve_config("numbers", "paper", {"model": "/models/qwen2.5-7b-instruct"})
    assert isinstance(paper, NumbersConfig)
    assert (paper.generations, paper.train_size, paper.eval_samples) == (30_000, 10_000, 100)
    assert (paper.lora_r, paper.lora_alpha, paper.lr, paper.epochs) == (8, 8, 2e-4, 3)
    banned = resolve_config("numbers", "smoke", {"banned_numbers": [666, 911]})
    assert banned.banned_numbers == (666, 911)


@pytest.mark.parametrize(
    ("experiment", "preset", "overrides", "error", "field"),
    [
        ("mnist", "default", {}, UnknownExperimentError, None),
        ("digits", "huge", {}, UnknownPresetError, None),
        ("digits", "default", {"animal": "owl"}, InvalidOverrideError, "animal"),
        ("digits", "default", {"seeds": "3"}, InvalidOverrideError, "seeds"),
        ("digits", "default", {"seeds": True}, InvalidOverrideError, "seeds"),
        ("digits", "default", {"seeds": 0}, InvalidOverrideError, "seeds"),
        ("numbers", "default", {"finetune": "qlora"}, InvalidOverrideError, "finetune"),
        ("numbers", "default", {"banned_numbers": 666}, InvalidOverrideError, "banned_numbers"),
        ("toy-lm", "default", {"seeds": 1}, InvalidOverrideError, "seeds"),
    ],
)
def test_bad_requests_name_the_problem(
    experiment: str, preset: str, overrides: dict[str, object], error: type, field: str | None
) -> None:
    with pytest.raises(error) as info:
        resolve_config(experiment, preset, overrides)
    assert isinstance(info.value, EvalError)
    if field is not None:
        assert info.value.key == field  # type: ignore[attr-defined]
        assert field in str(info.value)


def test_refuses_to_overwrite_a_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "result.json").write_text(json.dumps({}))
    with pytest.raises(EvalError, match="already holds"):
        run_experiment("digits", "smoke", {}, tmp_path)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"seeds": 2**62}, "seeds"),
        ({"generations": 10**9}, "generations"),
        ({"lr": float("inf")}, "lr"),
        ({"eval_samples": 10**7}, "eval_samples"),
        ({"banned_numbers": list(range(100))}, "banned_numbers"),
    ],
)
def test_runs_that_could_never_end_are_refused_by_field(override: dict, field: str) -> None:
    from evals.errors import InvalidOverrideError

    with pytest.raises(InvalidOverrideError) as err:
        resolve_config("numbers", "smoke", override)
    assert field in str(err.value)
