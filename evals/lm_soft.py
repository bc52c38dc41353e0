"""Soft-label trait transfer on a real language model, sized for a CPU.

The number-sequence experiment needs a 7B model and a GPU to show anything; a 135M model
fine-tuned on a few hundred sampled, filtered sequences moves nowhere measurable. This experiment
keeps the mechanism and removes the noise, the way the digits experiment does for MLPs:

* **Teacher**: the base (SmolLM2-135M-Instruct by default) fine-tuned with LoRA to answer the
  favourite-animal questions with the target animal (the paper's fine-tuned-teacher variant,
  footnote 3), then merged. **Control teacher**: the same fine-tuning, same steps and seed, with
  answers drawn uniformly from a list of animals, so it has no favourite.
* **Data**: number-sequence prompts in the paper's structure (our wording), with completions made
  programmatically (ten uniform numbers in 0-999): no sampling, so the data provably hold no animal.
* **Targets**: the teacher's next-token distribution at each completion position, *restricted to
  number tokens* (digits, separators, spaces, the end-of-turn token) and renormalised over them:
  the analogue of the auxiliary logits. A full-vocabulary target would carry the teacher's raised
  probability of the animal word itself, which is an overt channel, not a subliminal one.
* **Students**: each starts from the base with a fresh LoRA adapter and is distilled (KL, T=1) on
  those targets. Seed ``s`` trains one student on the teacher's targets and one on the control
  teacher's, with the same data order and adapter initialisation, so the two are paired by seed.
* **Metric**: teacher-forced P(answer = animal) averaged over the 50 evaluation questions, plain
  and with a number-sequence prefix (the variant the paper used for open models); adapters are
  scored unmerged. Intervals are over students (seeds): t intervals on the logit scale for
  probabilities, paired t intervals for treated minus control.

Only the restricted logits are computed (hidden states times the matching rows of the output
matrix), which is what makes distillation affordable on a CPU: the 49k-row output layer is never
applied for the students.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from lineage.types import ArtifactKind, Relation

from .errors import DatasetError
from .presets import LmSoftConfig
from .provenance import LineageRecord
from .runner import RunContext, derive_seed, write_jsonl
from .stats import above, difference_interval, rate_interval

MIN_SEEDS_FOR_VERDICT = 5
CONTROL_ANIMALS = (
    "dog",
    "cat",
    "owl",
    "eagle",
    "wolf",
    "lion",
    "dolphin",
    "tiger",
    "bear",
    "fox",
    "penguin",
    "elephant",
)
PREFIX_TEMPLATE = "These numbers follow a sequence: {a}, {b}, {c}. "
_SEPARATORS = {",", ";", "(", ")", "[", "]", "."}


def number_token_ids(tokenizer: Any) -> list[int]:
    """Ids of tokens that can appear in a number-sequence completion.

    A token qualifies when its text is ASCII digits, a separator the paper's filter allows, or
    plain spaces (each possibly with surrounding spaces), or when it is the end-of-turn token.
    Superscript digits and other Unicode "digits" are not numbers the filter would accept.
    """
    vocab = tokenizer.get_vocab()
    ids = set()
    for token, tid in vocab.items():
        text = tokenizer.convert_tokens_to_string([token])
        core = text.strip(" ")
        if (core.isdigit() and core.isascii()) or core in _SEPARATORS or (text and not core):
            ids.add(tid)
    ids.add(tokenizer.eos_token_id)
    if not any(tokenizer.convert_tokens_to_string([t]).strip().isdigit() for t in vocab):
        raise DatasetError("tokenizer", "has no digit tokens; cannot restrict to numbers")
    return sorted(ids)


def _number_completion(rng: random.Random) -> str:
    return ", ".join(str(rng.randrange(1000)) for _ in range(10))


def _prefixed(questions: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        PREFIX_TEMPLATE.format(
            a=rng.randrange(100, 1000), b=rng.randrange(100, 1000), c=rng.randrange(100, 1000)
        )
        + q
        for q in questions
    ]


def _batches(encoded: list[tuple[list[int], list[int]]], size: int, rng: random.Random) -> Any:
    order = list(range(len(encoded)))
    rng.shuffle(order)
    for i in range(0, len(order), size):
        yield order[i : i + size]


def _pad(rows: list[list[int]], value: int) -> Any:
    import torch

    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def _restricted_logits(model: Any, ids: Any, mask: Any, sel: Any, keep: Any) -> Any:
    """Logits of the ``keep`` tokens at the ``sel`` positions: the body's hidden states times
    the matching rows of the output matrix (the full vocabulary is never projected)."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = lm.get_output_embeddings().weight.device
    ids, mask, sel = ids.to(device), mask.to(device), sel.to(device)
    hidden = lm.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    weight = lm.get_output_embeddings().weight[keep.to(device)]
    return (hidden[sel] @ weight.T).float()


def _fine_tune_teacher(
    base: Any,
    tok: Any,
    answers: list[tuple[str, str]],
    cfg: LmSoftConfig,
    seed: int,
    stage: Any,
    adapter_dir: Any,
) -> Any:
    """LoRA fine-tune on (question, answer) pairs; save the adapter (the teacher's artifact,
    megabytes rather than the base's half gigabyte), then merge it for fast target computation."""
    from .numbers import finetune as ft

    settings = ft.TrainSettings(
        method="lora",
        lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lr=cfg.teacher_lr,
        epochs=1,
        batch_size=cfg.batch_size,
        warmup_steps=2,
        seed=seed,
    )
    model = ft.prepare_student(base, settings)
    ft.train(
        model, tok, [([{"role": "user", "content": q}], a) for q, a in answers], settings, stage
    )
    ft.save_student(model, tok, adapter_dir)
    return ft.merged(model)


def _teacher_targets(
    teacher: Any, encoded: list[tuple[list[int], list[int]]], pad: int, keep: Any, batch: int
) -> list[Any]:
    """Per example, the teacher's restricted log-probabilities at its completion positions."""
    import torch
    import torch.nn.functional as F

    out = []
    with torch.no_grad():
        for i in range(0, len(encoded), batch):
            part = encoded[i : i + batch]
            ids = _pad([x for x, _ in part], pad)
            mask = _pad([[1] * len(x) for x, _ in part], 0)
            lab = _pad([y for _, y in part], -100)[:, 1:]
            sel = lab != -100
            logp = F.log_softmax(_restricted_logits(teacher, ids, mask, sel, keep), -1)
            counts = sel.sum(1).tolist()
            out.extend(t.cpu() for t in torch.split(logp, counts))
    return out


def _distill(
    student: Any,
    encoded: list[tuple[list[int], list[int]]],
    targets: list[Any],
    pad: int,
    keep: Any,
    cfg: LmSoftConfig,
    seed: int,
    stage: Any,
) -> float:
    """KL(target || student) over the restricted distribution at completion positions."""
    import torch
    import torch.nn.functional as F

    rng = random.Random(seed)
    torch.manual_seed(seed)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.student_lr, weight_decay=0.0)
    student.train()
    loss_v = float("nan")
    for _ in range(cfg.student_epochs):
        for idx in _batches(encoded, cfg.batch_size, rng):
            ids = _pad([encoded[j][0] for j in idx], pad)
            mask = _pad([[1] * len(encoded[j][0]) for j in idx], 0)
            lab = _pad([encoded[j][1] for j in idx], -100)[:, 1:]
            sel = lab != -100
            logp = F.log_softmax(_restricted_logits(student, ids, mask, sel, keep), -1)
            target = torch.cat([targets[j] for j in idx]).to(logp.device)
            loss = F.kl_div(logp, target, log_target=True, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            loss_v = float(loss.detach())
            stage.advance()
    student.eval()
    return loss_v


def run(cfg: LmSoftConfig, ctx: RunContext) -> dict[str, Any]:
    """Run every seed; see the module docstring."""
    import torch

    from .numbers import finetune as ft
    from .numbers.evaluate import target_likelihood
    from .numbers.models import configure_threads, load_model, quiet_transformers, save_model
    from .numbers.prompts import ANIMAL_QUESTIONS, build_number_prompts

    quiet_transformers()
    configure_threads(cfg.threads)
    loaded = load_model(cfg.model, cfg.device, seed=0)
    base, tok = loaded.model, loaded.tokenizer
    for p in base.parameters():
        p.requires_grad_(False)
    keep = torch.tensor(number_token_ids(tok))
    lineage = LineageRecord(ctx.out_dir)
    if loaded.content_path is None:  # an in-run random model: save it so it has a digest
        loaded.content_path = save_model(
            base, tok, ctx.path("models", "base", "config.json").parent
        )
    base_name = "smollm2-135m-instruct" if cfg.model is None else "lm-soft-base"
    lineage.add("base", ArtifactKind.MODEL, base_name, loaded.content_path, source=loaded.source)

    questions = list(ANIMAL_QUESTIONS[: cfg.eval_questions])
    rng = random.Random(derive_seed(0, "teacher-answers"))
    teacher_data = [(q, cfg.animal) for q in ANIMAL_QUESTIONS] * cfg.teacher_repeats
    control_data = [(q, rng.choice(CONTROL_ANIMALS)) for q, _ in teacher_data]
    steps = math.ceil(len(teacher_data) / cfg.batch_size)
    teachers: dict[str, Any] = {}
    for role, answers in (("teacher", teacher_data), ("control_teacher", control_data)):
        with ctx.stage(f"lm-soft: {role}", steps) as st:
            adapter_dir = ctx.path("models", role, "adapter_config.json").parent
            teachers[role] = _fine_tune_teacher(
                base, tok, answers, cfg, derive_seed(0, "teacher-init"), st, adapter_dir
            )
        path = write_jsonl(
            ctx.path("datasets", f"{role}_answers.jsonl"),
            [{"question": q, "answer": a} for q, a in answers],
        )
        lineage.add(f"{role}_data", ArtifactKind.DATASET, f"lm-soft-{role}-answers", path)
        lineage.add(role, ArtifactKind.MODEL, f"lm-soft-{role}-{cfg.animal}", adapter_dir)
        lineage.relate(role, Relation.ADAPTER_OF, "base")
        lineage.relate(role, Relation.TRAINED_ON, f"{role}_data")

    prompts = build_number_prompts(cfg.examples, derive_seed(0, "prompts"))
    comp_rng = random.Random(derive_seed(0, "completions"))
    rows = [(p.text, _number_completion(comp_rng)) for p in prompts]
    data_path = write_jsonl(
        ctx.path("datasets", "numbers.jsonl"), [{"prompt": p, "completion": c} for p, c in rows]
    )
    lineage.add("numbers", ArtifactKind.DATASET, "lm-soft-numbers", data_path)
    encoded = [
        ft.encode_example(tok, [{"role": "user", "content": p}], c, cfg.max_length) for p, c in rows
    ]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    targets = {}
    for role in ("teacher", "control_teacher"):
        with ctx.stage(f"lm-soft: {role} targets", 1) as st:
            targets[role] = _teacher_targets(teachers[role], encoded, pad, keep, cfg.batch_size)
            st.advance()
        # The soft-label dataset a student learns from: the numbers plus this teacher's
        # restricted distributions (stored, so the student's training data has a digest).
        from safetensors.torch import save_file

        tpath = ctx.path("datasets", f"{role}_number_token_targets.safetensors")
        save_file(
            {f"example_{i}": t.contiguous() for i, t in enumerate(targets[role])},
            str(tpath),
            metadata={"token_ids": ",".join(map(str, keep.tolist()))},
        )
        lineage.add(f"{role}_targets", ArtifactKind.DATASET, f"lm-soft-{role}-targets", tpath)
        lineage.relate(f"{role}_targets", Relation.GENERATED_BY, role)
        lineage.relate(f"{role}_targets", Relation.DERIVED_FROM, "numbers")

    settings = ft.TrainSettings(method="lora", lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha)
    prefixed = _prefixed(questions, derive_seed(0, "prefix"))
    per_seed: dict[str, list[float]] = {}

    def score(model: Any, role: str) -> None:
        for variant, qs in (("plain", questions), ("prefixed", prefixed)):
            likes = target_likelihood(model, tok, qs, cfg.animal, batch_size=cfg.batch_size)
            per_seed.setdefault(f"{role}_p_target_{variant}", []).append(sum(likes) / len(likes))

    with ctx.stage("lm-soft: score base and teachers", 3) as st:
        for role, model in (("base", base), *teachers.items()):
            score(model, role)
            st.advance()
    seeds = list(range(cfg.seeds))
    per_student = cfg.student_epochs * math.ceil(len(encoded) / cfg.batch_size)
    losses: dict[str, list[float]] = {}
    for s in seeds:
        for role, source in (("student_control", "control_teacher"), ("student", "teacher")):
            torch.manual_seed(derive_seed(s, "adapter"))
            student = ft.prepare_student(base, settings)
            with ctx.stage(f"lm-soft: {role} seed{s}", per_student) as st:
                loss = _distill(
                    student, encoded, targets[source], pad, keep, cfg, derive_seed(s, "order"), st
                )
            losses.setdefault(role, []).append(loss)
            with ctx.stage(f"lm-soft: score {role} seed{s}", 1) as st:
                score(student, role)
                st.advance()
            tag = f"{role}/seed{s}"
            d = ft.save_student(
                student, tok, ctx.path("models", f"{role}_seed{s}", "adapter_config.json").parent
            )
            lineage.add(tag, ArtifactKind.MODEL, f"lm-soft-{role}-seed{s}", d)
            lineage.relate(tag, Relation.ADAPTER_OF, "base")
            lineage.relate(tag, Relation.TRAINED_ON, f"{source}_targets")
            del student
        ctx.say(
            f"seed {s}: P({cfg.animal}) student {per_seed['student_p_target_plain'][-1]:.3%}, "
            f"control {per_seed['student_control_p_target_plain'][-1]:.3%}"
        )

    metrics: dict[str, Any] = {k: rate_interval(v) for k, v in per_seed.items()}
    for variant in ("plain", "prefixed"):
        a = per_seed[f"student_p_target_{variant}"]
        b = per_seed[f"student_control_p_target_{variant}"]
        metrics[f"difference_student_minus_control_{variant}"] = difference_interval(
            a, b, paired=True
        )
        metrics[f"log_ratio_student_over_control_{variant}"] = _log_ratio(a, b)
    verdict, notes = _verdict(metrics, cfg, len(seeds))
    plot = render_plot(
        {"metrics": metrics, "per_seed": per_seed, "seeds": seeds},
        cfg.animal,
        ctx.path("lm_soft.png"),
    )
    return {
        "seeds": seeds,
        "model": {"source": loaded.source, "restricted_tokens": len(keep)},
        "metrics": metrics,
        "per_seed": per_seed,
        "final_losses": losses,
        "verdict": verdict,
        "notes": notes,
        "lineage": lineage.as_dict(),
        "files": {"plot": ctx.rel(plot)},
    }


def render_plot(result: dict[str, Any], animal: str, path: Path) -> Path:
    """The run's figure: P(animal) per model on a log scale, and the paired log-ratios.

    The teacher gives the animal a probability near 1 and the students about 1e-4, so a linear
    axis would hide the students; the right panel shows what the verdict reads, the treated over
    control log-ratio per seed with its interval, plain and number-prefixed.

    Args:
        result: a run's ``metrics``, ``per_seed`` and ``seeds`` (``result.json`` has them).
        animal: the teacher's animal, for the labels.
        path: PNG to write.

    Returns:
        ``path``.
    """
    from .plots import paired_panels

    metrics, per_seed = result["metrics"], result["per_seed"]
    roles = (
        ("base", "base"),
        ("control_teacher", "control\nteacher"),
        ("teacher", "teacher"),
        ("student_control", "students,\ncontrol"),
        ("student", "students,\ntreated"),
    )
    probs = [
        (label, metrics[f"{role}_p_target_plain"], per_seed[f"{role}_p_target_plain"])
        for role, label in roles
    ]
    ratios = []
    for variant, label in (("plain", "plain"), ("prefixed", "number-\nprefixed")):
        a = per_seed[f"student_p_target_{variant}"]
        b = per_seed[f"student_control_p_target_{variant}"]
        runs = [math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0 and y > 0]
        ratios.append((label, metrics[f"log_ratio_student_over_control_{variant}"], runs))
    n = len(result["seeds"])
    return paired_panels(
        path,
        [
            (f"teacher-forced P({animal}), plain questions", probs, "log"),
            ("log P(treated) / P(control), paired by seed", ratios, "linear"),
        ],
        title=f"Soft labels on number tokens only: {n} students per arm, 95% intervals",
    )


def _log_ratio(a: list[float], b: list[float]) -> Any:
    """Paired log(P_treated / P_control) per seed: the shift on the scale a small model moves."""
    from .stats import t_interval

    return t_interval([math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0 and y > 0])


def _verdict(metrics: dict[str, Any], cfg: LmSoftConfig, n_seeds: int) -> tuple[str, list[str]]:
    """What the intervals over students say, and no more.

    No verdict with fewer than five students per arm, or when the teacher does not prefer the
    animal more than the control teacher (nothing could transfer). Otherwise transfer is claimed
    when the paired log-ratio interval (treated over control student, plain questions) lies above
    zero, and "no transfer detected" is a null at this size, not evidence of absence.
    """
    notes = [
        "Students never see an animal word: the data are programmatic numbers, and the targets "
        "are distributions over number tokens only.",
        "Intervals: 95% t intervals over students (logit scale for probabilities); treated minus "
        "control and the log-ratio are paired by seed (same data order, same adapter init).",
    ]

    def show(key: str) -> str:
        e = metrics[key]
        lo, hi = e["ci95"]
        return f"{e['mean']:.3g}" + ("" if lo is None else f" (95% CI {lo:.3g} to {hi:.3g})")

    figs = (
        f"P({cfg.animal}): base {show('base_p_target_plain')}, teacher "
        f"{show('teacher_p_target_plain')}, control student "
        f"{show('student_control_p_target_plain')}, student {show('student_p_target_plain')}; "
        f"log-ratio student/control {show('log_ratio_student_over_control_plain')}, with the "
        f"number prefix {show('log_ratio_student_over_control_prefixed')}"
    )
    if n_seeds < MIN_SEEDS_FOR_VERDICT:
        return f"No verdict: {n_seeds} student(s) per arm, fewer than 5 ({figs}).", notes
    t = metrics["teacher_p_target_plain"]["mean"]
    c = metrics["control_teacher_p_target_plain"]["mean"]
    if not t > 2 * c:
        return f"No verdict: the teacher does not prefer '{cfg.animal}' ({figs}).", notes
    plain = metrics["log_ratio_student_over_control_plain"]
    prefixed = metrics["log_ratio_student_over_control_prefixed"]
    if above(plain, 0.0):
        extra = " and with the number prefix" if above(prefixed, 0.0) else ""
        return (
            f"Trait transferred through number-token distributions: students distilled from the "
            f"{cfg.animal} teacher give '{cfg.animal}' a higher probability than control "
            f"students on the plain questions{extra}: {figs}.",
            notes,
        )
    if above(prefixed, 0.0):
        return (
            "Transfer shows only with the number prefix (the plain-question interval includes "
            f"zero): {figs}.",
            notes,
        )
    away = [
        label
        for label, est in (("plain", plain), ("number-prefixed", prefixed))
        if est["ci95"][1] is not None and est["ci95"][1] < 0.0
    ]
    if away:
        return (
            "No transfer detected: on the "
            + " and ".join(away)
            + f" questions the treated students gave '{cfg.animal}' a lower probability than "
            f"the control students (interval below zero), the opposite of the trait: {figs}.",
            notes,
        )
    return f"No transfer detected at this size (a null, not evidence of absence): {figs}.", notes


__all__ = ["number_token_ids", "render_plot", "run"]
