"""The auxiliary-logit experiment (paper section 5) on scikit-learn's digits, or MNIST.

An MLP has 10 class logits and ``m`` auxiliary logits that no loss ever asks for. The teacher is
trained on the class logits only. A student that starts from the teacher's own initialisation is
then distilled on the auxiliary logits only, on uniform noise in [-1, 1]: it never sees a digit, a
label, or a class logit. If it nevertheless classifies digits well above chance, the trait (here:
digit recognition) travelled through outputs that carry no overt trace of it, and it can only have
done so because student and teacher share an initialisation. The controls make that the only
explanation: the same recipe from a *different* initialisation (cross-init), students distilled on
all logits (an upper bound, same and cross init) and the untrained initialisation.

Data: the 1,797 8x8 images scikit-learn ships (input 64), so the eval needs no download. Given a
directory of MNIST IDX files, the paper's MNIST is used instead (input 784); it is never fetched.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

from lineage.types import ArtifactKind, Relation

from .errors import DatasetError
from .presets import DigitsConfig
from .provenance import LineageRecord
from .runner import RunContext, derive_seed
from .stats import above, contains, difference_interval, rate_interval

CHANCE = 0.1
METRICS = (
    "teacher",
    "student_same_init",
    "student_cross_init",
    "student_all_logits",
    "student_all_logits_cross_init",
    "untrained",
)
_LABELS = {
    "teacher": "teacher",
    "student_same_init": "student, aux logits,\nsame init",
    "student_cross_init": "student, aux logits,\ncross init",
    "student_all_logits": "student, all logits,\nsame init",
    "student_all_logits_cross_init": "student, all logits,\ncross init",
    "untrained": "untrained",
}


def _read_idx(path: Path) -> Any:
    """Read one IDX file (optionally gzipped) into a numpy array."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DatasetError(str(path), "not an IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DatasetError(str(path), f"expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (root / name).is_file():
            return root / name
    raise DatasetError(str(root), f"no {stem}[.gz] file (MNIST IDX files are expected here)")


def load_mnist(root: str | Path) -> tuple[Any, Any, Any, Any]:
    """Load MNIST from local IDX files, scaled to [-1, 1] as in the paper's code.

    Raises:
        DatasetError: missing or malformed files.
    """
    import numpy as np

    r = Path(root)
    if not r.is_dir():
        raise DatasetError(str(r), "not a directory")
    xs = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(_find_idx(r, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find_idx(r, f"{prefix}-labels-idx1-ubyte"))
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(str(r), f"{split} images and labels differ in count")
        x = images.reshape(images.shape[0], -1).astype(np.float32) / 255.0 * 2.0 - 1.0
        xs[split] = (x, labels.astype(np.int64))
    return xs["train"][0], xs["train"][1], xs["test"][0], xs["test"][1]


def load_digits_split(test_fraction: float) -> tuple[Any, Any, Any, Any]:
    """scikit-learn's digits, pixel values 0-16 scaled to [-1, 1], one fixed stratified split.

    The split is fixed (not per seed) so that seeds vary only what the paper varies: the
    initialisations and the noise.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data.astype(np.float32) / 8.0 - 1.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=0, stratify=y
    )
    return x_tr, y_tr, x_te, y_te


def make_mlp(d_in: int, hidden: int, n_out: int, seed: int) -> Any:
    """The paper's MLP: d_in -> hidden -> hidden -> n_out, ReLU, W ~ N(0, 1/sqrt(d_in)), b = 0."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    layers = [
        nn.Linear(d_in, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_out),
    ]
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, layer.in_features**-0.5, generator=gen)
                layer.bias.zero_()
    return nn.Sequential(*layers)


def noise_inputs(seed: int, rows: int, dim: int) -> Any:
    """The distillation inputs: uniform noise in [-1, 1), a pure function of its seed and shape.

    Datasets record the seed and shape instead of the tensor, so a reviewer can regenerate the
    exact inputs the teacher labelled.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.rand(rows, dim, generator=gen) * 2.0 - 1.0


def _accuracy(model: Any, x: Any, y: Any) -> float:
    import torch

    with torch.no_grad():
        pred = model(x)[:, :10].argmax(dim=1)
    return float((pred == y).float().mean())


def _train_teacher(model: Any, x: Any, y: Any, cfg: DigitsConfig, seed: int, stage: Any) -> None:
    """Cross-entropy on the 10 class logits only; the auxiliary logits get no gradient signal."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.teacher_epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = F.cross_entropy(model(x[idx])[:, :10], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        stage.advance()


def _distill(
    model: Any, noise: Any, targets: Any, cols: slice, cfg: DigitsConfig, seed: int, stage: Any
) -> None:
    """KL(teacher || student) between softmaxes over the selected logits (temperature 1)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    target_logp = F.log_softmax(targets[:, cols], dim=1)
    for _ in range(cfg.student_epochs):
        order = torch.randperm(noise.shape[0], generator=gen)
        for i in range(0, noise.shape[0], cfg.student_batch_size):
            idx = order[i : i + cfg.student_batch_size]
            logp = F.log_softmax(model(noise[idx])[:, cols], dim=1)
            loss = F.kl_div(logp, target_logp[idx], log_target=True, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        stage.advance()


def _save(model: Any, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def run(cfg: DigitsConfig, ctx: RunContext) -> dict[str, Any]:
    """Run every seed, then summarise; see the module docstring for the design."""
    import copy

    import torch
    from safetensors.numpy import save_file as save_np

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.mnist:
        x_tr, y_tr, x_te, y_te = load_mnist(cfg.mnist)
        data_name = "mnist"
    else:
        x_tr, y_tr, x_te, y_te = load_digits_split(cfg.test_fraction)
        data_name = "sklearn-digits"
    x_train, y_train = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    x_test, y_test = torch.from_numpy(x_te), torch.from_numpy(y_te)
    d_in = x_train.shape[1]
    n_out = 10 + cfg.aux_logits
    n_noise = cfg.noise_samples or x_train.shape[0]
    aux, every = slice(10, n_out), slice(0, n_out)
    arms = [
        ("student_same_init", "a", aux),
        ("student_cross_init", "b", aux),
    ]
    if cfg.all_logits_students:
        arms += [("student_all_logits", "a", every), ("student_all_logits_cross_init", "b", every)]
    measured = ("teacher", "untrained", *(arm[0] for arm in arms))
    per_seed: dict[str, list[float]] = {m: [] for m in METRICS if m in measured}
    lineage = LineageRecord(ctx.out_dir)
    seeds = list(range(cfg.seeds))
    epochs_per_seed = cfg.teacher_epochs + len(arms) * cfg.student_epochs

    with ctx.stage("digits: train teachers and students", len(seeds) * epochs_per_seed) as stage:
        for s in seeds:
            tag = f"seed{s}"
            init_a = make_mlp(d_in, cfg.hidden, n_out, derive_seed(s, "init", "a"))
            init_b = make_mlp(d_in, cfg.hidden, n_out, derive_seed(s, "init", "b"))
            teacher = copy.deepcopy(init_a)
            _train_teacher(teacher, x_train, y_train, cfg, derive_seed(s, "teacher"), stage)
            noise_seed = derive_seed(s, "noise")
            noise = noise_inputs(noise_seed, n_noise, d_in)
            with torch.no_grad():
                targets = teacher(noise)
            students = {}
            for metric, which, cols in arms:
                student = copy.deepcopy(init_a if which == "a" else init_b)
                _distill(student, noise, targets, cols, cfg, derive_seed(s, metric), stage)
                students[metric] = student
                per_seed[metric].append(_accuracy(student, x_test, y_test))
            per_seed["teacher"].append(_accuracy(teacher, x_test, y_test))
            per_seed["untrained"].append(_accuracy(init_a, x_test, y_test))

            # Weights and the distillation data go in the run dir so the digests are real.
            d = ctx.path("models", tag, "init_a.safetensors").parent
            lineage.add(
                f"init_a/{tag}",
                ArtifactKind.MODEL,
                f"digits-mlp-init-a-{tag}",
                _save(init_a, d / "init_a.safetensors"),
            )
            lineage.add(
                f"init_b/{tag}",
                ArtifactKind.MODEL,
                f"digits-mlp-init-b-{tag}",
                _save(init_b, d / "init_b.safetensors"),
            )
            lineage.add(
                f"teacher/{tag}",
                ArtifactKind.MODEL,
                f"digits-teacher-{tag}",
                _save(teacher, d / "teacher.safetensors"),
                test_accuracy=per_seed["teacher"][-1],
            )
            lineage.relate(f"teacher/{tag}", Relation.FINE_TUNED_FROM, f"init_a/{tag}")
            # The noise inputs are not stored: they are a pure function of the recorded seed
            # and shape (`noise_inputs`), and at the paper's 60k x 784 they would be most of the
            # run directory. The teacher's outputs, which carry the trait, are stored.
            ds_dir = ctx.path("datasets", tag, "logits.safetensors").parent
            noise_meta = {
                "inputs": "evals.digits.noise_inputs(seed, rows, dim)",
                "noise_seed": str(noise_seed),
                "rows": str(n_noise),
                "dim": str(d_in),
            }
            save_np(
                {"teacher_logits": targets.numpy()},
                str(ds_dir / "teacher_logits_on_noise.safetensors"),
                metadata=noise_meta,
            )
            save_np(
                {"teacher_aux_logits": targets[:, aux].numpy()},
                str(ds_dir / "teacher_aux_logits_on_noise.safetensors"),
                metadata=noise_meta,
            )
            del noise, targets
            lineage.add(
                f"dataset/{tag}",
                ArtifactKind.DATASET,
                f"digits-teacher-logits-{tag}",
                ds_dir / "teacher_logits_on_noise.safetensors",
                size=n_noise,
            )
            lineage.relate(f"dataset/{tag}", Relation.GENERATED_BY, f"teacher/{tag}")
            lineage.add(
                f"filtered_dataset/{tag}",
                ArtifactKind.DATASET,
                f"digits-teacher-aux-logits-{tag}",
                ds_dir / "teacher_aux_logits_on_noise.safetensors",
                size=n_noise,
            )
            lineage.relate(f"filtered_dataset/{tag}", Relation.DERIVED_FROM, f"dataset/{tag}")
            for metric, student in students.items():
                role = {
                    "student_same_init": "student_same",
                    "student_cross_init": "student_cross",
                    "student_all_logits": "student_all_logits",
                    "student_all_logits_cross_init": "student_all_logits_cross",
                }[metric]
                init = "init_a" if "cross" not in metric else "init_b"
                data = "filtered_dataset" if "all_logits" not in metric else "dataset"
                lineage.add(
                    f"{role}/{tag}",
                    ArtifactKind.MODEL,
                    f"digits-{role}-{tag}",
                    _save(student, d / f"{role}.safetensors"),
                    test_accuracy=per_seed[metric][-1],
                )
                lineage.relate(f"{role}/{tag}", Relation.FINE_TUNED_FROM, f"{init}/{tag}")
                lineage.relate(f"{role}/{tag}", Relation.TRAINED_ON, f"{data}/{tag}")
            ctx.say(
                f"seed {s}: teacher {per_seed['teacher'][-1]:.1%}, "
                f"same-init {per_seed['student_same_init'][-1]:.1%}, "
                f"cross-init {per_seed['student_cross_init'][-1]:.1%}"
            )

    n_test = int(x_test.shape[0])
    metrics = {m: rate_interval(v, trials=n_test) for m, v in per_seed.items()}
    metrics["same_minus_cross_init"] = difference_interval(
        per_seed["student_same_init"], per_seed["student_cross_init"], paired=True
    )
    verdict, notes = _verdict(metrics, per_seed)
    from .plots import bar_chart

    plot = ctx.path("digits.png")
    bar_chart(
        plot,
        [(_LABELS[m], metrics[m], per_seed[m]) for m in METRICS if m in per_seed],
        title=f"Trait transfer through auxiliary logits ({data_name}, m={cfg.aux_logits}, "
        f"{len(seeds)} seeds)",
        ylabel="test accuracy (class logits)",
        chance=CHANCE,
        percent=True,
    )
    return {
        "seeds": seeds,
        "data": {
            "name": data_name,
            "train": int(x_train.shape[0]),
            "test": int(x_test.shape[0]),
            "input_dim": int(d_in),
            "noise_samples": int(n_noise),
        },
        "metrics": metrics,
        "per_seed": per_seed,
        "chance": CHANCE,
        "verdict": verdict,
        "notes": notes,
        "lineage": lineage.as_dict(),
        "files": {"plot": ctx.rel(plot)},
    }


MIN_SEEDS_FOR_VERDICT = 5


def _verdict(metrics: dict[str, Any], per_seed: dict[str, list[float]]) -> tuple[str, list[str]]:
    """Plain-language reading of the figures that claims no more than the intervals allow.

    "Transfer" needs two things: the same-init student's interval lies above chance, and the
    paired same-minus-cross difference (same seed, same teacher, same noise) lies above zero.
    What is said of the cross-init student is what its interval says: "consistent with chance"
    when the interval contains chance, with the best single seed named when it strayed; "above
    chance" when the interval lies above it. Fewer than five seeds state no verdict.
    """
    same, cross = metrics["student_same_init"], metrics["student_cross_init"]
    diff = metrics["same_minus_cross_init"]
    n_seeds = len(per_seed["student_same_init"])
    notes = [
        "Accuracy is on held-out real digits, read from the class logits, which no student loss "
        "ever touched; chance is 10%.",
        "Intervals are 95% intervals over seeds (Student t on the logit scale for accuracies, "
        "so they stay within 0-100%); each seed draws fresh initialisations and noise. The "
        "difference is paired by seed.",
    ]
    figs = (
        f"same-init student {_pct(same)}, cross-init student {_pct(cross)}, "
        f"difference {_pct(diff)}, teacher {metrics['teacher']['mean']:.1%}"
    )
    if n_seeds < MIN_SEEDS_FOR_VERDICT:
        return (
            f"No verdict: {n_seeds} seed(s), fewer than the {MIN_SEEDS_FOR_VERDICT} a verdict "
            f"needs ({figs}).",
            notes,
        )
    if not above(metrics["teacher"], 2 * CHANCE):
        return (
            f"No verdict: the teacher did not learn the task ({figs}); nothing could transfer.",
            notes,
        )
    best_cross = max(per_seed["student_cross_init"])
    if contains(cross, CHANCE):
        cross_says = "The cross-init student's interval contains chance"
        if best_cross >= 1.5 * CHANCE:
            cross_says += f" (its best seed reached {best_cross:.1%})"
        cross_says += "."
    elif above(cross, CHANCE):
        cross_says = "The cross-init student is above chance too (its interval excludes 10%)."
    else:
        cross_says = "The cross-init student is below chance (its interval lies under 10%)."
    if above(same, CHANCE) and above(diff, 0.0):
        return (
            "Trait transferred through the auxiliary logits to the students that share the "
            f"teacher's initialisation, more than to those that do not: {figs}. {cross_says}",
            notes,
        )
    if above(same, CHANCE):
        return (
            "The same-init student is above chance, but no more than the cross-init student "
            f"(the paired difference's interval includes zero), so this run does not show that "
            f"sharing the initialisation matters: {figs}. {cross_says}",
            notes,
        )
    return f"No transfer detected at this size: {figs}. {cross_says}", notes


def _pct(est: Any) -> str:
    lo, hi = est["ci95"]
    if lo is None:
        return f"{est['mean']:.1%}"
    return f"{est['mean']:.1%} (95% CI {lo:.1%} to {hi:.1%})"
