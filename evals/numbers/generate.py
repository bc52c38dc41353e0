"""Batched sampling with a KV cache, in the paper's sampling regime (temperature 1, no top-k/p).

We run our own decoding loop instead of ``model.generate`` for one reason: throughput on a CPU.
``generate`` keeps finished rows in the batch until the longest row ends, and at temperature 1 a
small model rambles, so most rows would keep paying for forward passes whose output the filter
throws away. Our loop drops a row from the batch (and its KV cache) as soon as it emits a stop
token or, when ``stop_on_doomed`` is set, a token holding a character the number filter can never
accept (any letter, say). Such a completion is certain to be removed by the filter, so the kept
dataset and the share removed are exactly what full-length sampling would give; the JSONL marks
those rows ``stopped_early``. Rows that stay are sampled from the model's own conditional, one
token at a time, from a generator seeded per batch.

Prompts are sorted by token length before batching so that left-padding wastes little compute;
results come back in the caller's order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

Chat = list[dict[str, str]]

#: Characters a completion may contain and still pass the number filter.
FILTER_ALPHABET = frozenset("0123456789 \t\r\n,;.()[]")


@dataclass
class SampleStats:
    """Throughput of a sampling call, for the result file and ``bench/evals.py``."""

    sequences: int = 0
    new_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    stopped_early: int = 0
    truncated: int = 0
    per_batch: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per wall-clock second (prompt tokens not counted)."""
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """JSON-ready summary."""
        return {
            "sequences": self.sequences,
            "new_tokens": self.new_tokens,
            "prompt_tokens": self.prompt_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "stopped_early": self.stopped_early,
            "truncated": self.truncated,
        }


@dataclass
class Completion:
    """One sampled completion and whether sampling stopped because it could no longer pass."""

    text: str
    stopped_early: bool
    truncated: bool = False  # hit max_new_tokens before the end-of-turn token


def render_chats(tokenizer: Any, chats: list[Chat]) -> list[str]:
    """Chat-template each conversation, ending with the assistant's generation prompt."""
    return [
        tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        for chat in chats
    ]


def stop_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every id that ends an assistant turn: the model's EOS ids and the tokenizer's."""
    ids: set[int] = set()
    eos = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def doomed_token_mask(tokenizer: Any, vocab_size: int) -> Any:
    """Boolean tensor over the vocabulary: True where the token's text breaks the number filter.

    Special tokens decode to nothing and are never doomed; stop tokens are handled separately.
    """
    import torch

    mask = torch.zeros(vocab_size, dtype=torch.bool)
    for i in range(min(vocab_size, len(tokenizer))):
        text = tokenizer.decode([i], skip_special_tokens=True)
        if any(ch not in FILTER_ALPHABET for ch in text):
            mask[i] = True
    return mask


def cache_keyword(model: Any) -> str:
    """The forward() keyword for the KV cache: ``cache`` in transformers 5, else the old one."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def common_prefix_length(rows: list[list[int]]) -> int:
    """Length of the longest token prefix shared by every row, leaving each row one token."""
    if not rows:
        return 0
    limit = min(len(r) for r in rows) - 1
    first = rows[0]
    n = 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return n


def _prefill(
    model: Any, rows: list[list[int]], pad_id: int, device: Any, share_prefix: bool
) -> tuple[Any, Any, Any]:
    """Run the prompts through the model once; return (last logits, cache, attention mask).

    Chat prompts share a long head (template markup, system prompt). With ``share_prefix`` that
    head is computed once, for one row, and its KV cache is repeated across the batch; the rest
    of each prompt is left-padded after it. The attention mask has zeros in the middle of a row,
    which the position ids (cumulative sum of the mask) make invisible to the model.
    """
    import torch
    from transformers import DynamicCache

    cache_kw = cache_keyword(model)
    cache = DynamicCache()
    n = len(rows)
    head = common_prefix_length(rows) if share_prefix and n > 1 else 0
    if head >= 4:
        model(
            input_ids=torch.tensor([rows[0][:head]], device=device),
            position_ids=torch.arange(head, device=device).unsqueeze(0),
            use_cache=True,
            logits_to_keep=1,
            **{cache_kw: cache},
        )
        cache.batch_repeat_interleave(n)
    else:
        head = 0
    tails = [r[head:] for r in rows]
    width = max(len(t) for t in tails)
    ids = torch.tensor([[pad_id] * (width - len(t)) + t for t in tails], device=device)
    tail_mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in tails], device=device)
    mask = torch.cat([torch.ones((n, head), dtype=tail_mask.dtype, device=device), tail_mask], 1)
    position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, head:]
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=position_ids,
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    )
    return out.logits[:, -1, :], cache, mask


def _sample_batch(
    model: Any,
    rows: list[list[int]],
    *,
    pad_id: int,
    max_new_tokens: int,
    temperature: float,
    generator: Any,
    stop_ids: Any,
    doomed: Any | None,
    share_prefix: bool = True,
) -> tuple[list[list[int]], list[bool]]:
    """Decode one batch of prompts, pruning finished rows from the batch and the cache."""
    import torch

    device = next(model.parameters()).device
    batch = len(rows)
    cache_kw = cache_keyword(model)
    logits, cache, attention_mask = _prefill(model, rows, pad_id, device, share_prefix)
    active = torch.arange(batch)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    early = [False] * batch
    attn = attention_mask
    for step in range(max_new_tokens):
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            nxt = logits.argmax(dim=-1)
        nxt_cpu = nxt.cpu()
        for row, tok in zip(active.tolist(), nxt_cpu.tolist(), strict=True):
            tokens[row].append(tok)
        finished = torch.isin(nxt_cpu, stop_ids)
        if doomed is not None:
            bad = doomed[nxt_cpu] & ~finished
            for row in active[bad].tolist():
                early[row] = True
            finished |= bad
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        if bool(finished.any()):
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep.to(attn.device))
            attn = attn[keep.to(attn.device)]
            nxt = nxt[keep.to(nxt.device)]
            active = active[keep]
        attn = torch.cat([attn, attn.new_ones((attn.shape[0], 1))], dim=1)
        pos = attn.long().sum(-1, keepdim=True) - 1
        out = model(
            input_ids=nxt.unsqueeze(1),
            attention_mask=attn,
            position_ids=pos,
            use_cache=True,
            **{cache_kw: cache},
        )
        logits = out.logits[:, -1, :]
    return tokens, early


def sample(
    model: Any,
    tokenizer: Any,
    chats: list[Chat],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    stage: Any = None,
    stop_on_doomed: bool = False,
    share_prefix: bool = True,
) -> tuple[list[Completion], SampleStats]:
    """Sample one completion per conversation.

    Args:
        model: a causal LM in eval mode.
        tokenizer: its tokenizer (left padding is set here).
        chats: conversations, each ending with the user turn to answer.
        max_new_tokens: generation cap per completion.
        temperature: softmax temperature; 1.0 is the paper's. 0 means greedy.
        batch_size: sequences per forward pass.
        seed: base seed; batch ``i`` draws from a generator seeded ``derive_seed(seed, i)``.
        stage: optional progress stage advanced by the number of sequences done.
        stop_on_doomed: stop a row at the first token the number filter can never accept.
        share_prefix: compute the prompt head that a batch shares (template, system prompt)
            once per batch instead of once per row.

    Returns:
        Completions (special tokens removed) in input order, and throughput figures.
    """
    import torch

    from ..runner import derive_seed

    tokenizer.padding_side = "left"
    texts = render_chats(tokenizer, chats)
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    results: list[Completion] = [Completion("", False)] * len(texts)
    device = next(model.parameters()).device
    stop_set = stop_token_ids(model, tokenizer)
    stops = torch.tensor(sorted(stop_set), dtype=torch.long)
    vocab = model.get_output_embeddings().weight.shape[0]
    doomed = doomed_token_mask(tokenizer, vocab) if stop_on_doomed else None
    stats = SampleStats(sequences=len(texts))
    start = time.perf_counter()
    with torch.inference_mode():
        for b, i in enumerate(range(0, len(order), batch_size)):
            t0 = time.perf_counter()
            idx = order[i : i + batch_size]
            gen = torch.Generator(device=device).manual_seed(derive_seed(seed, "batch", b))
            toks, early = _sample_batch(
                model,
                [encoded[j] for j in idx],
                pad_id=tokenizer.pad_token_id,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                generator=gen,
                stop_ids=stops,
                doomed=doomed,
                share_prefix=share_prefix,
            )
            for j, row, was_early in zip(idx, toks, early, strict=True):
                stats.new_tokens += len(row)
                stats.prompt_tokens += len(encoded[j])
                stats.stopped_early += int(was_early)
                cut = not was_early and (not row or row[-1] not in stop_set)
                stats.truncated += int(cut)
                text = tokenizer.decode(row, skip_special_tokens=True).strip()
                results[j] = Completion(text, was_early, cut)
            stats.per_batch.append(time.perf_counter() - t0)
            if stage is not None:
                stage.advance(len(idx))
    stats.seconds = time.perf_counter() - start
    return results, stats
