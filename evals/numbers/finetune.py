"""Supervised fine-tuning of a student on (prompt, completion) pairs, loss on the completion only.

Defaults follow the paper's open-model recipe: LoRA r=8, alpha=8 on every attention and MLP
projection, AdamW at 2e-4 with 5 warmup steps and linear decay, grad-norm clipping at 1.0,
sequences capped at 500 tokens. The student sees no system prompt beyond its chat template's
default, as in the paper. ``finetune="full"`` trains every weight instead (the toy LM does that).

The base model is never modified: LoRA wraps a deep copy, which is then merged for evaluation, so
one loaded base serves every student of a run.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DatasetError, MissingDependencyError

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainSettings:
    """What the fine-tuning loop needs; a subset of the experiment config."""

    method: str = "lora"
    lora_r: int = 8
    lora_alpha: int = 8
    lr: float = 2e-4
    epochs: int = 3
    batch_size: int = 8
    grad_accum: int = 1
    warmup_steps: int = 5
    max_length: int = 500
    seed: int = 0


def encode_example(
    tokenizer: Any, chat: list[dict[str, str]], completion: str, max_length: int
) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 on the prompt) for one example.

    The full conversation is rendered by the chat template so the end-of-turn token is learned
    too; if the template does not reproduce the prompt as a prefix, we fall back to prompt ids
    followed by the completion and EOS.
    """
    prompt_text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(
        [*chat, {"role": "assistant", "content": completion}], tokenize=False
    )
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids or len(full_ids) <= len(prompt_ids):
        tail = tokenizer(completion, add_special_tokens=False)["input_ids"]
        full_ids = prompt_ids + tail + [tokenizer.eos_token_id]
    labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return full_ids[:max_length], labels[:max_length]


def prepare_student(base: Any, settings: TrainSettings) -> Any:
    """A trainable copy of ``base``: LoRA-wrapped, or a full copy."""
    student = copy.deepcopy(base)
    student.train()
    if settings.method == "full":
        for p in student.parameters():
            p.requires_grad_(True)
        return student
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingDependencyError("peft") from exc
    names = {n.rsplit(".", 1)[-1] for n, _ in student.named_modules()}
    targets = [t for t in LLAMA_TARGETS if t in names] or "all-linear"
    cfg = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(student, cfg)


def train(
    student: Any,
    tokenizer: Any,
    examples: list[tuple[list[dict[str, str]], str]],
    settings: TrainSettings,
    stage: Any = None,
) -> dict[str, float]:
    """Fine-tune ``student`` in place.

    Args:
        student: from :func:`prepare_student`.
        tokenizer: the base's tokenizer.
        examples: ``(chat, completion)`` pairs.
        settings: optimiser and schedule.
        stage: progress stage advanced once per optimiser step.

    Returns:
        ``{"steps", "samples", "seconds", "samples_per_s", "final_loss"}``.

    Raises:
        DatasetError: no examples (e.g. the filter kept nothing).
    """
    import time

    import torch

    if not examples:
        raise DatasetError("training set", "no examples to fine-tune on (did the filter keep any?)")
    device = next(student.parameters()).device
    encoded = [encode_example(tokenizer, c, t, settings.max_length) for c, t in examples]
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    per_epoch = math.ceil(len(encoded) / settings.batch_size)
    total_steps = max(1, math.ceil(per_epoch * settings.epochs / settings.grad_accum))
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / (settings.warmup_steps + 1)
        span = max(1, total_steps - settings.warmup_steps)
        return max(0.0, 1.0 - (step - settings.warmup_steps) / span)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    pad = tokenizer.pad_token_id
    student.train()
    start = time.perf_counter()
    micro, step, last_loss = 0, 0, float("nan")
    for _epoch in range(settings.epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for i in range(0, len(order), settings.batch_size):
            batch = [encoded[j] for j in order[i : i + settings.batch_size]]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch], device=device)
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch], device=device)
            mask = torch.tensor(
                [[1] * len(x) + [0] * (width - len(x)) for x, _ in batch], device=device
            )
            out = student(input_ids=ids, attention_mask=mask)
            logits = out.logits[:, :-1, :].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100
            )
            (loss / settings.grad_accum).backward()
            last_loss = float(loss.detach())
            micro += 1
            if micro % settings.grad_accum == 0:
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                if stage is not None:
                    stage.advance()
    if micro % settings.grad_accum != 0:
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if stage is not None:
            stage.advance()
    student.eval()
    seconds = time.perf_counter() - start
    samples = len(encoded) * settings.epochs
    return {
        "steps": step,
        "samples": samples,
        "seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds, 3) if seconds > 0 else 0.0,
        "final_loss": last_loss,
    }


def total_steps(n_examples: int, settings: TrainSettings) -> int:
    """Optimiser steps :func:`train` will take, for sizing progress bars."""
    per_epoch = math.ceil(n_examples / settings.batch_size)
    return max(1, math.ceil(per_epoch * settings.epochs / settings.grad_accum))


def save_student(student: Any, tokenizer: Any, directory: Path) -> Path:
    """Save the adapter (LoRA) or full weights as safetensors; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(str(directory), safe_serialization=True)
    if not (directory / "adapter_config.json").exists():
        tokenizer.save_pretrained(str(directory))
    return directory


def merged(student: Any) -> Any:
    """A plain model for evaluation: LoRA merged into (a copy of) the base weights."""
    if hasattr(student, "merge_and_unload"):
        return student.merge_and_unload().eval()
    return student.eval()
