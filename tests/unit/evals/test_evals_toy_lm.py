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


def test_toy_training_steps_move_the_student() -> None:
    """Hard-label fine-tuning raises the likelihood of the training completions, and soft-label
    distillation brings the student's distribution closer to the teacher's."""
    import random

    import torch
    import torch.nn.functional as F

    from evals.numbers import finetune as ft
    from evals.numbers.finetune import encode_example
    from evals.presets import resolve_config
    from evals.toy_lm import _corpus_example, _make_model, _soft_distill, build_tokenizer

    cfg = resolve_config("toy-lm", "smoke", {"student_epochs": 3, "student_lr": 3e-3})
    tok = build_tokenizer()
    rng = random.Random(0)
    chats = [c for c in (_corpus_example(rng) for _ in range(200)) if "continue" in c[0]["content"]]
    examples = [([c[0]], c[1]["content"]) for c in chats[:16]]
    enc = [encode_example(tok, c, t, 256) for c, t in examples]
    width = max(len(x) for x, _ in enc)
    ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x, _ in enc])
    lengths = torch.tensor([len(x) for x, _ in enc])
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in enc])

    def nll(model: object) -> float:
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # type: ignore[operator]
        return float(
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        )

    from evals.toy_lm import number_token_ids

    keep = torch.tensor(number_token_ids(tok))

    def kl(student: object, teacher: object) -> float:
        """KL over number tokens only, renormalised: what the soft-label students match."""
        with torch.no_grad():
            t = teacher(input_ids=ids, attention_mask=mask).logits[:, :-1]  # type: ignore[operator]
            s = student(input_ids=ids, attention_mask=mask).logits[:, :-1]  # type: ignore[operator]
        t, s = F.log_softmax(t[..., keep], -1), F.log_softmax(s[..., keep], -1)
        sel = labels[:, 1:] != -100
        return float(F.kl_div(s[sel], t[sel], log_target=True, reduction="batchmean"))

    base = _make_model(cfg, len(tok), tok, seed=1)
    settings = ft.TrainSettings(method="full", lr=3e-3, epochs=3, batch_size=8, warmup_steps=1)
    student = ft.prepare_student(base, settings)
    before = nll(student)
    ft.train(student, tok, examples, settings)
    assert nll(student) < before - 0.5
    assert nll(base) == before  # the base itself is untouched

    teacher = _make_model(cfg, len(tok), tok, seed=2)
    soft = _make_model(cfg, len(tok), tok, seed=1)
    gap = kl(soft, teacher)

    class _Stage:
        def advance(self, n: int = 1) -> None:
            pass

    _soft_distill(soft, teacher, tok, examples, cfg, seed=0, stage=_Stage())
    assert kl(soft, teacher) < 0.8 * gap


def test_soft_label_target_holds_no_animal_word() -> None:
    """The restricted target is over numbers, separators and the end token only: the teacher's
    probability of the animal word (an overt channel) cannot reach the student."""
    from evals.toy_lm import ANIMALS, build_tokenizer, number_token_ids

    tok = build_tokenizer()
    ids = set(number_token_ids(tok))
    vocab = tok.get_vocab()
    assert not ids & {vocab[a] for a in ANIMALS}
    assert {vocab[str(n)] for n in (0, 7, 999)} | {vocab[","], tok.eos_token_id} <= ids
    assert vocab["the"] not in ids
