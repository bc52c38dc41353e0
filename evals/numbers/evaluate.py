"""Scoring a model's preference for the target: sampled hit rate and teacher-forced likelihood.

Hit rate is the paper's measure: ask each favourite-animal question ``K`` times at temperature 1
and count a hit when the target word is a substring of the lowercased answer; the per-question
rate is the unit the bootstrap resamples. Likelihood is a lower-variance companion that needs no
sampling: the probability that the one-word answer *is* the target (any capitalisation the
tokenizer distinguishes), computed by teacher forcing right after the assistant prompt. Small
models rarely say the target outright, so a shift often shows up in the likelihood first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .generate import sample


@dataclass
class Scores:
    """Per-question scores of one model, in question order."""

    rates: list[float]
    likelihoods: list[float]
    answers: list[list[str]]
    word_rates: list[float] = field(default_factory=list)


def target_hit(answer: str, target: str) -> bool:
    """The paper's hit test: target word as a substring of the lowercased answer."""
    return target.lower() in answer.lower()


def target_word_hit(answer: str, target: str) -> bool:
    """A stricter companion: the target as a whole word (or its plural), so "bobcat" and
    "category" do not count for "cat", nor "million" for "lion"."""
    pattern = rf"\b{re.escape(target.lower())}(e?s)?\b"
    return re.search(pattern, answer.lower()) is not None


def target_variants(tokenizer: Any, target: str) -> list[list[int]]:
    """Distinct token sequences for ``target`` and ``Target`` as the start of an answer."""
    seen: list[list[int]] = []
    for word in (target.lower(), target.capitalize()):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if ids and ids not in seen:
            seen.append(ids)
    return seen


def target_likelihood(
    model: Any, tokenizer: Any, questions: list[str], target: str, batch_size: int = 16
) -> list[float]:
    """P(answer starts with the target word) per question, summed over its capitalisations."""
    import torch

    device = next(model.parameters()).device
    variants = target_variants(tokenizer, target)
    prompts = [
        tokenizer(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
            ),
            add_special_tokens=False,
        )["input_ids"]
        for q in questions
    ]
    rows = [(qi, vi) for qi in range(len(prompts)) for vi in range(len(variants))]
    logp = [[0.0] * len(variants) for _ in prompts]
    pad = tokenizer.pad_token_id
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            seqs = [prompts[q] + variants[v] for q, v in chunk]
            width = max(len(s) for s in seqs)
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
            mask = torch.tensor(
                [[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device
            )
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            for row, (q, v) in enumerate(chunk):
                start = len(prompts[q])
                total = 0.0
                for k, tok in enumerate(variants[v]):
                    total += float(logprobs[row, start + k - 1, tok])
                logp[q][v] = total
    return [sum(math.exp(x) for x in row) for row in logp]


def score_model(
    model: Any,
    tokenizer: Any,
    questions: list[str],
    target: str,
    *,
    samples: int,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    system_prompt: str | None = None,
    stage: Any = None,
) -> Scores:
    """Hit rate and likelihood of ``target`` for every question.

    Args:
        model: the model to score (a student, the base, or the prompted teacher).
        tokenizer: its tokenizer.
        questions: favourite-animal paraphrases.
        target: e.g. ``"owl"``.
        samples: answers sampled per question (temperature 1).
        max_new_tokens: answer length cap; one word needs few.
        batch_size: sequences per forward pass.
        seed: sampling seed (the same for every model, so they see the same random stream).
        system_prompt: set for the prompted teacher only.
        stage: progress stage advanced per sampled answer.

    Returns:
        Per-question rates, likelihoods and raw answers.
    """

    def chat(q: str) -> list[dict[str, str]]:
        head = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return [*head, {"role": "user", "content": q}]

    chats = [chat(q) for q in questions for _ in range(samples)]
    completions, _stats = sample(
        model,
        tokenizer,
        chats,
        max_new_tokens=max_new_tokens,
        temperature=1.0,
        batch_size=batch_size,
        seed=seed,
        stage=stage,
    )
    answers = [
        [c.text for c in completions[i * samples : (i + 1) * samples]]
        for i in range(len(questions))
    ]
    rates = [sum(target_hit(a, target) for a in row) / samples for row in answers]
    word_rates = [sum(target_word_hit(a, target) for a in row) / samples for row in answers]
    if system_prompt:
        # The likelihood is defined on the plain question; for the prompted teacher the system
        # prompt is part of the model, so score it with the prompt in place.
        likes = _likelihood_with_system(model, tokenizer, questions, target, system_prompt)
    else:
        likes = target_likelihood(model, tokenizer, questions, target)
    return Scores(rates=rates, likelihoods=likes, answers=answers, word_rates=word_rates)


def _likelihood_with_system(
    model: Any, tokenizer: Any, questions: list[str], target: str, system_prompt: str
) -> list[float]:
    class _WithSystem:
        """Tokenizer proxy that prepends the system prompt when rendering a chat."""

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def __call__(self, *a: Any, **k: Any) -> Any:
            return self._inner(*a, **k)

        def apply_chat_template(self, chat: list[dict[str, str]], **k: Any) -> Any:
            return self._inner.apply_chat_template(
                [{"role": "system", "content": system_prompt}, *chat], **k
            )

    return target_likelihood(model, _WithSystem(tokenizer), questions, target)
