"""Digits experiment: structure of the run directory and basic sanity (not the effect size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from evals import run_experiment
from evals.digits import METRICS
from lineage.digests import artifact_digest


def test_digits_smoke_run(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    result = run_experiment(
        "digits", "smoke", {}, tmp_path / "run", progress=lambda s, d, t: calls.append((s, d, t))
    )
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert on_disk["experiment"] == "digits" and on_disk["seeds"] == [0, 1]
    assert on_disk["versions"]["torch"]
    for name in METRICS:
        est = on_disk["metrics"][name]
        assert 0.0 <= est["mean"] <= 1.0 and len(est["ci95"]) == 2
    # Sanity that holds at any size: the teacher learns, the untrained model does not.
    assert on_disk["metrics"]["teacher"]["mean"] > 0.6
    assert on_disk["metrics"]["untrained"]["mean"] < 0.35
    assert on_disk["verdict"]
    assert (tmp_path / "run" / on_disk["files"]["plot"]).stat().st_size > 10_000
    # Progress reached the end of the stage.
    assert calls and calls[-1][1] == calls[-1][2]
    # Lineage digests are real content digests of files in the run directory.
    arts = {a["role"]: a for a in on_disk["lineage"]["artifacts"]}
    student = arts["student_same/seed0"]
    assert student["digest"] == artifact_digest(tmp_path / "run" / student["path"])
    rels = {(r["child"], r["relation"], r["parent"]) for r in on_disk["lineage"]["relations"]}
    assert ("student_same/seed0", "fine_tuned_from", "init_a/seed0") in rels
    assert ("student_cross/seed0", "fine_tuned_from", "init_b/seed0") in rels
    assert ("student_same/seed0", "trained_on", "filtered_dataset/seed0") in rels
    assert ("dataset/seed0", "generated_by", "teacher/seed0") in rels


def test_mnist_idx_loader(tmp_path: Path) -> None:
    import gzip
    import struct

    from evals.digits import load_mnist
    from evals.errors import DatasetError

    def write(name: str, dims: tuple[int, ...], payload: bytes) -> None:
        header = b"\x00\x00\x08" + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as fh:
            fh.write(header + payload)

    for prefix, n in (("train", 3), ("t10k", 2)):
        write(f"{prefix}-images-idx3-ubyte", (n, 28, 28), bytes([255]) * (n * 784))
        write(f"{prefix}-labels-idx1-ubyte", (n,), bytes(range(n)))
    x_tr, y_tr, x_te, _ = load_mnist(tmp_path)
    assert x_tr.shape == (3, 784) and x_te.shape == (2, 784)
    assert float(x_tr.max()) == 1.0 and list(y_tr) == [0, 1, 2]
    with pytest.raises(DatasetError):
        load_mnist(tmp_path / "missing")


def test_result_is_accepted_by_the_lineage_eval_statement(tmp_path: Path) -> None:
    """The registry signs results with ``lineage.evalresult``; a run's file must pass its parser."""
    evalresult = pytest.importorskip("lineage.evalresult")
    result = json.loads(json.dumps(run_experiment("digits", "smoke", {}, tmp_path / "run")))
    statement = evalresult.eval_result_statement(result, "local-1")
    claim = evalresult.parse_eval_result(statement)
    assert {s.role for s in claim.subjects} >= {"teacher/seed0", "student_same/seed0"}
    regs = evalresult.run_registrations(result, run_id="local-1", version="run-1")
    assert len(regs) == len(result["lineage"]["artifacts"])
