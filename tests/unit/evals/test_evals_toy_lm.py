"""The toy-LM experiment end to end at smoke size: structure, not effect size."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from evals import run_experiment


def test_toy_lm_smoke_end_to_end(tmp_path: Path) -> None:
    result = run_experiment("toy-lm", "smoke", {}, tmp_path / "run")
    assert result["seeds"] == [0, 1]
    metrics = result["metrics"]
    for role in ("base", "teacher", "student_control", "student_same", "student_cross"):
        est = metrics[f"{role}_target_rate"]
        assert 0.0 <= est["mean"] <= 1.0
    assert result["verdict"]
    rels = {(r["child"], r["relation"], r["parent"]) for r in result["lineage"]["relations"]}
    assert ("teacher/seed0", "fine_tuned_from", "base/seed0") in rels
    assert ("dataset/teacher/seed0", "generated_by", "teacher/seed0") in rels
    assert (tmp_path / "run" / "toy_lm.png").exists()
