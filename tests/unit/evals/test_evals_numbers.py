"""The number-sequence experiment end to end on a tiny random-weight model (smoke preset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from evals import run_experiment
from evals.numbers.filter import check_completion
from lineage.digests import artifact_digest


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_numbers_smoke_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_experiment(
        "numbers", "smoke", {"animal": "owl", "cross_model": "tiny-random"}, out
    )
    metrics = result["metrics"]
    for role in (
        "base",
        "teacher",
        "student_control",
        "student_same",
        "cross_base",
        "student_cross",
        "student_cross_control",
    ):
        for kind in (
            "target_rate",
            "target_likelihood",
            "target_word_rate",
            "target_rate_prefixed",
        ):
            est = metrics[f"{role}_{kind}"]
            assert 0.0 <= est["mean"] <= 1.0 and len(est["ci95"]) == 2
    assert "difference_student_minus_control_rate" in metrics
    assert "difference_cross_student_minus_control_rate" in metrics
    # One student per arm: figures, but no verdict.
    assert result["verdict"].startswith("No verdict: 1 student(s) per arm")
    assert result["filter"]["teacher"]["truncated"] == result["generation"]["teacher"]["truncated"]
    # Filtered datasets hold only completions that pass the filter, and prompts without the trait.
    for arm in ("teacher", "control"):
        rows = _jsonl(out / "datasets" / f"{arm}_numbers_filtered.jsonl")
        assert rows and all(check_completion(str(r["completion"])).kept for r in rows)
        raw = _jsonl(out / "datasets" / f"{arm}_numbers_raw.jsonl")
        assert len(raw) == result["config"]["generations"]
        assert result["filter"][arm]["total"] == len(raw)
    teacher = json.loads((out / "models" / "teacher" / "teacher.json").read_text())
    assert "You love owls." in teacher["system_prompt"]
    arts = {a["role"]: a for a in result["lineage"]["artifacts"]}
    adapter = out / "models" / "student_same_seed0" / "adapter_model.safetensors"
    assert adapter.exists()
    assert arts["student_same/seed0"]["digest"] == artifact_digest(adapter.parent)
    rels = {(r["child"], r["relation"], r["parent"]) for r in result["lineage"]["relations"]}
    assert {
        ("teacher", "prompted_from", "base"),
        ("dataset/teacher", "generated_by", "teacher"),
        ("dataset/control", "generated_by", "base"),
        ("filtered_dataset/teacher", "derived_from", "dataset/teacher"),
        ("student_same/seed0", "adapter_of", "base"),
        ("student_same/seed0", "trained_on", "filtered_dataset/teacher"),
        ("student_control/seed0", "trained_on", "filtered_dataset/control"),
        ("student_cross/seed0", "adapter_of", "cross_base"),
        ("student_cross_control/seed0", "trained_on", "filtered_dataset/control"),
        ("student_cross/seed0", "trained_on", "filtered_dataset/teacher"),
    } <= rels
    assert arts["cross_base"]["digest"] != arts["base"]["digest"]
    assert (out / result["files"]["plot"]).exists()
    assert result["generation"]["teacher"]["tokens_per_s"] > 0
