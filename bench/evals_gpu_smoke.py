"""A CUDA smoke check of the language-model evals that needs no weights from outside.

A GPU host may have torch and transformers but no package index, no hub access and not the
service's dependencies. This script needs only the repository and those two libraries (plus
peft, safetensors and the `gguf`-free paths): it pretrains the toy LM's base in the run (word
tokenizer, ~0.5M parameters), saves it as a model directory, then runs the number-sequence
pipeline on it exactly as a real base would go through it: loading, bf16 on CUDA, batched
sampling with the paper's filter, LoRA students on the teacher's and the control numbers, scoring
with adapters unmerged, the verdict. It prints the stage timings and peak memory, and exits
non-zero if any stage fails. It runs in a few minutes; `--device cpu` runs the same path on a
CPU (slowly), which is how it is checked where no GPU is lent.

    python bench/evals_gpu_smoke.py [--device cuda] [--out runs/gpu-smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# The repository root goes first: bench/evals.py would otherwise shadow the `evals` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pretrain_toy_base(directory: Path, steps: int, seed: int = 0) -> Path:
    """Pretrain the toy LM's base on its synthetic corpus and save it as a model directory.

    A quarter of the corpus are number prompts in the numbers pipeline's own (paper-structured)
    wording, answered with numbers, so the base answers that pipeline's prompts in a form the
    filter keeps.
    """
    import random

    from evals.numbers.models import save_model
    from evals.numbers.prompts import build_number_prompt
    from evals.presets import resolve_config
    from evals.toy_lm import (
        _corpus_example,
        _lm_steps,
        _make_model,
        _number_answer,
        _render,
        build_tokenizer,
    )

    cfg = resolve_config("toy-lm", "default")
    tok = build_tokenizer()
    model = _make_model(cfg, len(tok), tok, seed)
    rng = random.Random(seed)

    def example() -> list[dict[str, str]]:
        if rng.random() < 0.25:
            p = build_number_prompt(rng)
            return [
                {"role": "user", "content": p.text},
                {"role": "assistant", "content": _number_answer(rng, p.seed_numbers)},
            ]
        return _corpus_example(rng)

    def batches():  # type: ignore[no-untyped-def]
        while True:
            yield [_render(tok, example()) for _ in range(cfg.pretrain_batch)]

    class _Quiet:
        def advance(self, n: int = 1) -> None:
            pass

    _lm_steps(model, tok, batches(), steps, cfg.pretrain_lr, _Quiet())
    return save_model(model, tok, directory)


def main() -> int:
    """Run the smoke check and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--generations", type=int, default=2000)
    args = parser.parse_args()

    import torch

    from evals import run_experiment

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible to torch", file=sys.stderr)
        return 2
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        torch.cuda.reset_peak_memory_stats()
    work = Path(args.out or tempfile.mkdtemp(prefix="studbook-gpu-smoke-"))
    t0 = time.perf_counter()
    base = pretrain_toy_base(work / "toy-base", args.pretrain_steps)
    print(f"pretrained toy base in {time.perf_counter() - t0:.0f} s: {base}")
    overrides = {
        "model": str(base),
        "device": args.device,
        "generations": args.generations,
        "train_size": args.generations // 2,
        "max_new_tokens": 40,
        "reject_truncated": False,  # a toy base does not always end its turn
        "gen_batch_size": 256 if args.device == "cuda" else 64,
        "finetune": "lora",
        "epochs": 1,
        "batch_size": 32,
        "grad_accum": 1,
        "eval_questions": 50,
        "eval_samples": 20,
        "eval_max_new_tokens": 3,
        "eval_batch_size": 500 if args.device == "cuda" else 100,
        "seeds": 2,
        "threads": 0,
    }
    t1 = time.perf_counter()
    result = run_experiment("numbers", "default", overrides, work / "run")
    print(f"numbers pipeline in {time.perf_counter() - t1:.0f} s")
    for arm, g in result["generation"].items():
        print(
            f"  generate {arm:8s}: {g['sequences']} sequences, {g['tokens_per_s']:.0f} tokens/s, "
            f"{g['truncated']} truncated"
        )
    for stage, seconds in result["timings"].items():
        print(f"  {stage:45s} {seconds:8.1f} s")
    if args.device == "cuda":
        print(f"peak torch memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(f"verdict: {result['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
