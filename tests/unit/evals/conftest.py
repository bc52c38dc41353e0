"""Fixtures for the evals tests: a tiny word-level Llama saved as a safetensors directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama plus tokenizer, saved the way a user's fine-tune would be."""
    pytest.importorskip("torch")
    from evals.numbers.models import build_tiny_random, save_model

    model, tok = build_tiny_random(seed=0)
    return save_model(model, tok, tmp_path_factory.mktemp("tiny") / "model")
