"""The number-sequence eval at the paper's scale on a GPU: throughput and utilisation.

Runs ``numbers`` with the ``paper`` preset (30,000 generations per arm, 10,000 after filtering,
LoRA r=8 for 3 epochs, 50 questions x 100 samples) on the first CUDA device, in bf16, and prints
generation tokens/s per arm, fine-tuning samples/s, time per stage, peak GPU memory and the GPU
utilisation sampled every 2 s by ``nvidia-smi`` during the run. ``--generations`` and
``--eval-samples`` shorten the run for a quick check of the same code path.

    python bench/evals_gpu_paper.py --out runs/paper-gpu [--model PATH] [--generations 30000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# `python bench/evals*.py` puts bench/ first on sys.path, where bench/evals.py would shadow the
# `evals` package; the repository root goes first instead.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _poll_utilisation(samples: list[tuple[float, float]], stop: threading.Event) -> None:
    """Append (utilisation %, memory MiB) of GPU 0 every 2 s until ``stop`` is set."""
    while not stop.is_set():
        try:
            out = subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    "-i",
                    "0",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            util, mem = (float(x) for x in out.split(","))
            samples.append((util, mem))
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
        stop.wait(2.0)


def main() -> None:
    """Run the paper preset and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--generations", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--eval-samples", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()

    import torch

    from evals import run_experiment

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark is for a GPU host (see bench/evals.py)")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    overrides: dict[str, Any] = {
        "device": "cuda",
        "model": args.model,
        "generations": args.generations,
        "train_size": args.train_size,
        "eval_samples": args.eval_samples,
        "seeds": args.seeds,
    }
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    poller = None
    if shutil.which("nvidia-smi"):
        poller = threading.Thread(target=_poll_utilisation, args=(samples, stop), daemon=True)
        poller.start()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = run_experiment("numbers", "paper", overrides, args.out, bars=True)
    wall = time.perf_counter() - t0
    stop.set()
    if poller is not None:
        poller.join(timeout=5)
    for arm, g in result["generation"].items():
        print(
            f"generate {arm:8s}: {g['sequences']} sequences, {g['new_tokens']} tokens, "
            f"{g['seconds']:.0f} s, {g['tokens_per_s']:.0f} tokens/s"
        )
    for name, t in result["training"].items():
        print(f"fine-tune {name}: {t['samples_per_s']:.1f} samples/s ({t['seconds']:.0f} s)")
    for stage, seconds in result["timings"].items():
        print(f"  {stage:45s} {seconds:8.1f} s")
    print(
        f"total {wall:.0f} s; peak torch memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    )
    if samples:
        utils = [u for u, _ in samples]
        print(
            f"GPU utilisation: mean {sum(utils) / len(utils):.0f}%, max {max(utils):.0f}% over "
            f"{len(utils)} samples; memory max {max(m for _, m in samples):.0f} MiB"
        )
    print(f"verdict: {result['verdict']}")


if __name__ == "__main__":
    main()
