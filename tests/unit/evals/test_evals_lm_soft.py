"""The soft-label LM experiment at smoke size: the mechanism's pieces, not the effect size."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from evals import run_experiment


def test_restricted_logits_equal_the_full_head_on_those_tokens() -> None:
    """The shortcut (hidden states times the kept rows of the output matrix) is exactly the
    model's own logits restricted to number tokens."""
    import torch

    from evals.lm_soft import _restricted_logits, number_token_ids
    from evals.numbers.models import build_tiny_random

    model, tok = build_tiny_random(0)
    keep = torch.tensor(number_token_ids(tok))
    ids = torch.tensor([tok("12, 345, 6", add_special_tokens=False)["input_ids"]] * 2)
    mask = torch.ones_like(ids)
    sel = torch.ones(ids.shape[0], ids.shape[1] - 1, dtype=torch.bool)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits[:, :-1][sel][:, keep]
        fast = _restricted_logits(model, ids, mask, sel, keep)
    assert torch.allclose(full, fast, atol=1e-5)


def test_number_tokens_hold_no_words() -> None:
    from evals.lm_soft import number_token_ids
    from evals.numbers.models import build_tiny_random

    _, tok = build_tiny_random(0)
    kept = {
        tok.convert_tokens_to_string([t]).strip()
        for t in tok.convert_ids_to_tokens(number_token_ids(tok))
    }
    assert {"0", "999", ","} <= kept
    assert not any(ch.isalpha() for text in kept for ch in text if text != tok.eos_token)


def test_lm_soft_smoke_end_to_end(tmp_path: Path) -> None:
    from safetensors import safe_open

    result = run_experiment("lm-soft", "smoke", {}, tmp_path / "run")
    assert result["seeds"] == [0, 1]
    for role in ("base", "teacher", "control_teacher", "student", "student_control"):
        for variant in ("plain", "prefixed"):
            est = result["metrics"][f"{role}_p_target_{variant}"]
            assert 0.0 < est["mean"] < 1.0
    # Two students per arm state no verdict.
    assert result["verdict"].startswith("No verdict: 2 student(s) per arm")
    rels = {(r["child"], r["relation"], r["parent"]) for r in result["lineage"]["relations"]}
    assert ("student/seed0", "adapter_of", "base") in rels
    assert ("student/seed0", "trained_on", "teacher_targets") in rels
    assert ("student_control/seed1", "trained_on", "control_teacher_targets") in rels
    assert ("teacher_targets", "generated_by", "teacher") in rels
    # Stored targets are distributions over the number tokens only.
    arts = {a["role"]: a for a in result["lineage"]["artifacts"]}
    with safe_open(str(tmp_path / "run" / arts["teacher_targets"]["path"]), "pt") as fh:
        first = fh.get_tensor("example_0")
        n_kept = len(fh.metadata()["token_ids"].split(","))
    assert first.shape[1] == n_kept == result["model"]["restricted_tokens"]
    assert first.exp().sum(-1).sub(1).abs().max() < 1e-4
