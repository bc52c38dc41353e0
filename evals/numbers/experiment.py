"""The number-sequence experiment end to end (paper section 1), for any local causal LM.

Stages: load the base; build the prompted teacher (base + the paper's trait system prompt) and
use the unprompted base as the control generator; sample one completion per prompt from each;
filter with the paper's rule and subsample; fine-tune students from the same base on teacher
numbers and on control numbers (and, optionally, a student of a different base on teacher
numbers); score base, teacher and students on favourite-animal questions.

The verdict compares the treated student with the control student, paired by question, because
fine-tuning on *any* numbers shifts a model; only the difference is attributable to the teacher.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from lineage.types import ArtifactKind, Relation

from ..errors import DatasetError
from ..presets import NumbersConfig
from ..provenance import LineageRecord
from ..runner import RunContext, derive_seed, write_json, write_jsonl
from ..stats import above, contains, difference_interval, rate_interval, wilson_interval
from .filter import filter_completions
from .prompts import ANIMAL_QUESTIONS, build_number_prompts, trait_system_prompt


def _artifact_name(source: str) -> str:
    """A registry-friendly name from a model path: ``SmolLM2-135M-Instruct.Q4_1.gguf`` gives
    ``smollm2-135m-instruct.q4_1``."""
    stem = Path(source).name.removesuffix(".gguf")
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in stem.lower()) or "model"


def _auto_threads(requested: int) -> int:
    """0 means: as many threads as cores that other processes leave idle (at least one).

    On a shared 2-core machine two threads are much slower than one when the other core is busy
    (every matmul waits for the slower thread), so we look at the load average once, at start.
    """
    import os

    if requested > 0:
        return requested
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on Linux/macOS
        load = 0.0
    return max(1, min(cores, round(cores - load)))


def run(cfg: NumbersConfig, ctx: RunContext) -> dict[str, Any]:
    """Run the experiment; see the module docstring."""
    import torch

    from . import finetune as ft
    from .evaluate import score_model
    from .generate import sample
    from .models import TINY_RANDOM, configure_threads, load_model, quiet_transformers, save_model

    quiet_transformers()
    threads = _auto_threads(cfg.threads)
    configure_threads(threads)
    lineage = LineageRecord(ctx.out_dir)
    run_seed = 0
    ctx.say(
        f"loading base model ({cfg.model or 'SmolLM2-135M-Instruct GGUF'}), {threads} thread(s)"
    )
    with ctx.stage("load base model", 1) as st:
        base = load_model(cfg.model, cfg.device, seed=derive_seed(run_seed, "base"))
        st.advance()
    if base.kind == TINY_RANDOM:
        base.content_path = save_model(
            base.model, base.tokenizer, ctx.path("models", "base", "config.json").parent
        )
    assert base.content_path is not None
    base_name = _artifact_name(base.source)
    lineage.add(
        "base",
        ArtifactKind.MODEL,
        base_name,
        base.content_path,
        source=base.source,
        format=base.kind,
    )
    model, tok = base.model, base.tokenizer

    animals = (cfg.animal, *(a for a in cfg.extra_animals if a != cfg.animal))
    # Teachers = base weights + the trait system prompt; their content is the prompt and the
    # base digest. The first animal keeps the plain role names (`teacher`, `student_same`).
    teacher_roles = {a: ("teacher" if a == cfg.animal else f"teacher_{a}") for a in animals}
    system_prompts = {a: trait_system_prompt(a, cfg.category) for a in animals}
    for a, role in teacher_roles.items():
        teacher_dir = ctx.path("models", role, "teacher.json").parent
        write_json(
            teacher_dir / "teacher.json",
            {
                "base_digest": lineage.artifacts["base"]["digest"],
                "system_prompt": system_prompts[a],
            },
        )
        lineage.add(role, ArtifactKind.MODEL, f"{base_name}-{a}-teacher-prompted", teacher_dir)
        lineage.relate(role, Relation.PROMPTED_FROM, "base")

    prompts = build_number_prompts(cfg.generations, derive_seed(run_seed, "prompts"))
    user_turns = [[{"role": "user", "content": p.text}] for p in prompts]
    generated: dict[str, list[Any]] = {}
    gen_stats: dict[str, Any] = {}
    gen_arms: list[tuple[str, list[Any], str]] = [
        (
            role,
            [[{"role": "system", "content": system_prompts[a]}, *c] for c in user_turns],
            role,
        )
        for a, role in teacher_roles.items()
    ]
    gen_arms.append(("control", user_turns, "base"))
    for arm, chats, generator_role in gen_arms:
        with ctx.stage(f"generate numbers ({arm})", len(chats)) as st:
            completions, stats = sample(
                model,
                tok,
                chats,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                batch_size=cfg.gen_batch_size,
                seed=derive_seed(run_seed, "generate", arm),
                stage=st,
                stop_on_doomed=True,
            )
        generated[arm] = completions
        gen_stats[arm] = stats.as_dict()
        ctx.say(
            f"{arm}: {stats.sequences} completions in {stats.seconds:.0f} s "
            f"({stats.sequences / max(stats.seconds, 1e-9):.2f}/s; {stats.new_tokens} tokens, "
            f"{stats.stopped_early} stopped at the first token the filter must reject, "
            f"{stats.truncated} truncated at {cfg.max_new_tokens} tokens)"
        )
        raw = write_jsonl(
            ctx.path("datasets", f"{arm}_numbers_raw.jsonl"),
            [
                {
                    "prompt": p.text,
                    "seed_numbers": list(p.seed_numbers),
                    "completion": c.text,
                    "stopped_early": c.stopped_early,
                    "truncated": c.truncated,
                }
                for p, c in zip(prompts, completions, strict=True)
            ],
        )
        lineage.add(
            f"dataset/{arm}",
            ArtifactKind.DATASET,
            f"{base_name}-{arm}-numbers-raw",
            raw,
            size=len(completions),
        )
        lineage.relate(f"dataset/{arm}", Relation.GENERATED_BY, generator_role)

    filtered: dict[str, list[tuple[list[dict[str, str]], str]]] = {}
    filter_reports: dict[str, Any] = {}
    data_arms = [arm for arm, _, _ in gen_arms]
    # A completion cut off at the token cap may be a prefix of something the filter would
    # reject; it is never kept, and how many there were is reported.
    reports = {
        arm: filter_completions(
            [c.text for c in generated[arm]],
            cfg.banned_numbers,
            truncated=[c.truncated and cfg.reject_truncated for c in generated[arm]],
        )
        for arm in data_arms
    }
    # Equal training-set sizes, so the control differs from the treated arm only in the teacher.
    n_train = min(cfg.train_size, *(r.kept for r in reports.values()))
    for arm, report in reports.items():
        ctx.say(f"{arm}: kept {report.kept}/{report.total} ({1 - report.share_removed:.1%})")
        if n_train == 0:
            raise DatasetError(
                f"{arm} numbers", "the filter kept no completion; nothing to train on"
            )
        keep = list(report.kept_indices)
        random.Random(derive_seed(run_seed, "subsample", arm)).shuffle(keep)
        keep = sorted(keep[:n_train])
        filter_reports[arm] = report.as_dict() | {
            "subsampled": len(keep),
            "truncated": sum(c.truncated for c in generated[arm]),
        }
        rows = [{"prompt": prompts[i].text, "completion": generated[arm][i].text} for i in keep]
        path = write_jsonl(ctx.path("datasets", f"{arm}_numbers_filtered.jsonl"), rows)
        lineage.add(
            f"filtered_dataset/{arm}",
            ArtifactKind.DATASET,
            f"{base_name}-{arm}-numbers-filtered",
            path,
            size=len(rows),
            share_removed=report.share_removed,
        )
        lineage.relate(f"filtered_dataset/{arm}", Relation.DERIVED_FROM, f"dataset/{arm}")
        filtered[arm] = [
            ([{"role": "user", "content": r["prompt"]}], r["completion"]) for r in rows
        ]

    questions = list(ANIMAL_QUESTIONS[: cfg.eval_questions])
    variants = {"plain": questions}
    if cfg.prefixed_questions:
        variants["prefixed"] = prefixed_questions(questions, derive_seed(run_seed, "prefix"))
    eval_seed = derive_seed(run_seed, "eval")
    n_eval = len(questions) * cfg.eval_samples * len(variants)
    # scores[role][variant] = one Scores per model (student seed), scored for `targets[role]`
    scores: dict[str, dict[str, list[Any]]] = {}
    targets: dict[str, str] = {}

    def score(
        m: Any, role: str, target: str, label: str, system: str | None = None, tokz: Any = None
    ) -> None:
        targets[role] = target
        with ctx.stage(f"evaluate {label}", n_eval) as st:
            for variant, qs in variants.items():
                sc = score_model(
                    m,
                    tokz if tokz is not None else tok,
                    qs,
                    target,
                    samples=cfg.eval_samples,
                    max_new_tokens=cfg.eval_max_new_tokens,
                    batch_size=cfg.eval_batch_size,
                    seed=eval_seed,
                    system_prompt=system,
                    stage=st,
                )
                scores.setdefault(role, {}).setdefault(variant, []).append(sc)

    for a in animals:
        score(model, _base_role(a, cfg), a, f"base ({a})")
        score(model, teacher_roles[a], a, f"teacher ({a})", system_prompts[a])
    cross = None
    if cfg.cross_model:
        cross = load_model(cfg.cross_model, cfg.device, seed=derive_seed(run_seed, "cross"))
        if cross.kind == TINY_RANDOM:
            cross.content_path = save_model(
                cross.model, cross.tokenizer, ctx.path("models", "cross_base", "config.json").parent
            )
        assert cross.content_path is not None
        lineage.add(
            "cross_base",
            ArtifactKind.MODEL,
            _artifact_name(cross.source),
            cross.content_path,
            source=cross.source,
            format=cross.kind,
        )

    train_stats: dict[str, Any] = {}
    seeds = list(range(cfg.seeds))
    # (role, data arm, start, target animal); every treated arm has a control of the same base.
    arms: list[tuple[str, str, Any, str]] = [("student_control", "control", base, cfg.animal)]
    arms += [(_student_role(a, cfg), teacher_roles[a], base, a) for a in animals]
    if cross is not None:
        arms.append(("student_cross_control", "control", cross, cfg.animal))
        arms += [(_student_role(a, cfg, cross=True), teacher_roles[a], cross, a) for a in animals]
    for s in seeds:
        for role, data_arm, start, target in arms:
            settings = ft.TrainSettings(
                method=cfg.finetune,
                lora_r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lr=cfg.lr,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                grad_accum=cfg.grad_accum,
                warmup_steps=cfg.warmup_steps,
                max_length=cfg.max_length,
                seed=derive_seed(s, "train", role),
            )
            steps = ft.total_steps(len(filtered[data_arm]), settings)
            student = ft.prepare_student(start.model, settings)
            with ctx.stage(f"fine-tune {role} (seed {s})", steps) as st:
                train_stats[f"{role}/seed{s}"] = ft.train(
                    student, start.tokenizer, filtered[data_arm], settings, st
                )
            out = ft.save_student(
                student,
                start.tokenizer,
                ctx.path("models", f"{role}_seed{s}", "config.json").parent,
            )
            base_role = "cross_base" if start is cross else "base"
            relation = Relation.ADAPTER_OF if cfg.finetune == "lora" else Relation.FINE_TUNED_FROM
            lineage.add(
                f"{role}/seed{s}",
                ArtifactKind.MODEL,
                f"{base_name}-{role}-seed{s}",
                out,
                method=cfg.finetune,
            )
            lineage.relate(f"{role}/seed{s}", relation, base_role)
            lineage.relate(f"{role}/seed{s}", Relation.TRAINED_ON, f"filtered_dataset/{data_arm}")
            # Scored as trained: a LoRA student keeps its adapter unmerged, so the figures do not
            # depend on how a merge rounds in the serving dtype.
            student.eval()
            score(student, role, target, f"{role} (seed {s})", tokz=start.tokenizer)
            # The control students are scored for every animal, so each treated arm has one.
            if role.endswith("control"):
                for a in animals[1:]:
                    extra = f"{role}_{a}"
                    score(student, extra, a, f"{extra} (seed {s})", tokz=start.tokenizer)
            del student
    if cross is not None:
        score(cross.model, "cross_base", cfg.animal, "cross base", tokz=cross.tokenizer)

    metrics = _metrics(scores, targets, cfg, animals, cross is not None)
    answers = {
        role: [
            {"question": q, "answers": a}
            for q, a in zip(questions, by_variant["plain"][0].answers, strict=True)
        ]
        for role, by_variant in scores.items()
    }
    write_jsonl(
        ctx.path("eval_answers.jsonl"),
        [{"model": r, **row} for r, rows in answers.items() for row in rows],
    )
    per_student = {
        f"{role}_{variant}": [_model_mean(sc.rates) for sc in runs]
        for role, by_variant in scores.items()
        for variant, runs in by_variant.items()
    }

    verdict, notes = _verdict(metrics, cfg, filter_reports, animals, len(seeds), cross is not None)
    from ..plots import paired_panels

    order = [
        r
        for r in (
            "base",
            "teacher",
            "student_control",
            "student_same",
            "cross_base",
            "student_cross_control",
            "student_cross",
        )
        if r in scores
    ]
    labels = {
        "base": "base",
        "teacher": "teacher\n(prompted)",
        "student_control": "student on\ncontrol numbers",
        "student_same": f"student on\n{cfg.animal} numbers",
        "cross_base": "cross base",
        "student_cross_control": "cross student on\ncontrol numbers",
        "student_cross": f"cross student on\n{cfg.animal} numbers",
    }
    plot = paired_panels(
        ctx.path("numbers.png"),
        [
            (
                f"'{cfg.animal}' answer rate",
                [(labels[r], metrics[f"{r}_target_rate"], []) for r in order],
                "percent",
            ),
            (
                f"P(answer = {cfg.animal})",
                [(labels[r], metrics[f"{r}_target_likelihood"], []) for r in order],
                "log",
            ),
        ],
        title=f"Number-sequence transfer, {Path(base.source).name}: {n_train} filtered examples "
        f"per arm, {len(questions)} questions x {cfg.eval_samples} samples, {len(seeds)} "
        "students per arm (95% CI over students)",
    )
    return {
        "seeds": seeds,
        "animals": list(animals),
        "base_model": {
            "source": base.source,
            "format": base.kind,
            "device": base.device,
            "threads": threads,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "metrics": metrics,
        "per_student_rates": per_student,
        "filter": filter_reports,
        "train_size": n_train,
        "generation": gen_stats,
        "training": train_stats,
        "verdict": verdict,
        "notes": notes,
        "lineage": lineage.as_dict(),
        "files": {
            "plot": ctx.rel(plot),
            "answers": "eval_answers.jsonl",
            "datasets": sorted(ctx.rel(p) for p in (ctx.out_dir / "datasets").glob("*.jsonl")),
        },
        "torch_threads": torch.get_num_threads(),
    }


MIN_STUDENTS_FOR_VERDICT = 5
PREFIX_TEMPLATE = "These numbers follow a sequence: {a}, {b}, {c}. "
FRAGILE_ANIMALS = frozenset({"owl"})


def prefixed_questions(questions: list[str], seed: int) -> list[str]:
    """The number-prefixed variant the paper used for open models: each question preceded by
    a short number sequence, which made effects more consistent on Qwen2.5-7B."""
    rng = random.Random(seed)
    return [
        PREFIX_TEMPLATE.format(
            a=rng.randrange(100, 1000), b=rng.randrange(100, 1000), c=rng.randrange(100, 1000)
        )
        + q
        for q in questions
    ]


def _base_role(animal: str, cfg: NumbersConfig) -> str:
    return "base" if animal == cfg.animal else f"base_{animal}"


def _student_role(animal: str, cfg: NumbersConfig, *, cross: bool = False) -> str:
    head = "student_cross" if cross else "student_same"
    return head if animal == cfg.animal else f"{head}_{animal}"


def _model_mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _metrics(
    scores: dict[str, dict[str, list[Any]]],
    targets: dict[str, str],
    cfg: NumbersConfig,
    animals: tuple[str, ...],
    has_cross: bool,
) -> dict[str, Any]:
    """Per role: the mean over models (students) of each model's rate, with an interval over
    models; single models (base, teachers) get a Wilson interval over their samples. Treated
    minus control: Welch intervals over students (the arms' students are independent)."""
    trials = cfg.eval_questions * cfg.eval_samples
    metrics: dict[str, Any] = {}

    def summarise(runs: list[Any], attr: str, counts: bool) -> Any:
        per_model = [_model_mean(getattr(sc, attr)) for sc in runs]
        if len(per_model) == 1 and counts:
            hits = round(per_model[0] * trials)
            return wilson_interval(hits, trials)
        return rate_interval(per_model, trials=trials if counts else None)

    for role, by_variant in scores.items():
        for variant, runs in by_variant.items():
            sfx = "" if variant == "plain" else f"_{variant}"
            metrics[f"{role}_target_rate{sfx}"] = summarise(runs, "rates", True)
            metrics[f"{role}_target_word_rate{sfx}"] = summarise(runs, "word_rates", True)
            metrics[f"{role}_target_likelihood{sfx}"] = summarise(runs, "likelihoods", False)

    def diff(treated: str, control: str, attr: str, variant: str) -> Any:
        a = [_model_mean(getattr(sc, attr)) for sc in scores[treated][variant]]
        b = [_model_mean(getattr(sc, attr)) for sc in scores[control][variant]]
        return difference_interval(a, b, paired=False)

    pairs = []
    for a in animals:
        suffix = "" if a == cfg.animal else f"_{a}"
        pairs.append((f"student{suffix}", _student_role(a, cfg), f"student_control{suffix}"))
        if has_cross:
            pairs.append(
                (
                    f"cross_student{suffix}",
                    _student_role(a, cfg, cross=True),
                    f"student_cross_control{suffix}",
                )
            )
    for name, treated, control in pairs:
        if treated not in scores or control not in scores:
            continue
        for variant in scores[treated]:
            sfx = "" if variant == "plain" else f"_{variant}"
            for attr, short in (("rates", "rate"), ("likelihoods", "likelihood")):
                metrics[f"difference_{name}_minus_control_{short}{sfx}"] = diff(
                    treated, control, attr, variant
                )
    del targets
    return metrics


def _verdict(
    metrics: dict[str, Any],
    cfg: NumbersConfig,
    filter_reports: dict[str, Any],
    animals: tuple[str, ...],
    n_students: int,
    has_cross: bool,
) -> tuple[str, list[str]]:
    """One sentence per animal (and per base), saying only what the intervals over students say.

    Fewer than five students per arm state no verdict. "No transfer" is only said where the
    teacher shows the trait (its rate's interval lies above the base's); otherwise there was
    nothing to transmit and the run says so. A treated student "moved toward" the animal when
    the Welch interval of treated minus control (answer rate, or P(answer)) lies above zero.
    """
    notes = [
        "Intervals: 95% over students (t on the logit scale for rates); base and teachers are "
        "single models, with Wilson intervals over their sampled answers. Treated minus control "
        "students: Welch t intervals over students.",
        "Rates count the target as a substring, as the paper does; `*_word_rate` counts whole "
        "words only (no 'bobcat' for cat).",
    ]
    for arm, rep in filter_reports.items():
        notes.append(
            f"{arm}: the filter removed {rep['share_removed']:.1%} "
            f"({rep['truncated']} truncated at the token cap); {rep['subsampled']} kept per arm."
        )
    if any(a in FRAGILE_ANIMALS for a in animals):
        notes.append(
            "Owl is a fragile case on open models: replications on Qwen, Gemma and OLMo mostly "
            "found no owl transfer even where other animals transferred."
        )

    def fmt(key: str, pct: bool = True) -> str:
        e = metrics.get(key)
        if e is None:
            return "n/a"
        lo, hi = e["ci95"]
        f = (lambda v: f"{v:+.1%}") if pct else (lambda v: f"{v:+.2e}")
        return f"{f(e['mean'])} (95% CI {f(lo)} to {f(hi)})" if lo is not None else f(e["mean"])

    if n_students < MIN_STUDENTS_FOR_VERDICT:
        return (
            f"No verdict: {n_students} student(s) per arm, fewer than the "
            f"{MIN_STUDENTS_FOR_VERDICT} a verdict needs (treated minus control, "
            f"{cfg.animal} answer rate {fmt('difference_student_minus_control_rate')}).",
            notes,
        )
    sentences = []
    for a in animals:
        suffix = "" if a == cfg.animal else f"_{a}"
        teacher = metrics[f"teacher{suffix}_target_rate"]
        base = metrics[f"{_base_role(a, cfg)}_target_rate"]
        shows = above(teacher, base["ci95"][1] if base["ci95"][1] is not None else 1.0)
        for name, label in (("student", "same-base"), ("cross_student", "cross-base")):
            if name == "cross_student" and not has_cross:
                continue
            rate_key = f"difference_{name}{suffix}_minus_control_rate"
            like_key = f"difference_{name}{suffix}_minus_control_likelihood"
            figs = f"answer rate {fmt(rate_key)}, P(answer) {fmt(like_key, pct=False)}"
            if above(metrics[rate_key], 0.0):
                reading = f"moved toward '{a}' in its answers"
            elif above(metrics[like_key], 0.0):
                reading = (
                    f"raised P('{a}') without a detectable change in its answers (weaker evidence)"
                )
            elif not shows:
                reading = (
                    f"no verdict: the prompted teacher does not show a preference for '{a}' "
                    f"above the base (teacher {fmt(f'teacher{suffix}_target_rate')}, base "
                    f"{fmt(_base_role(a, cfg) + '_target_rate')})"
                )
            else:
                reading = "no transfer detected (a null at this size, not evidence of absence)"
            sentences.append(f"{a}, {label} students vs their control: {reading}; {figs}.")
    if has_cross:
        same = metrics.get("difference_student_minus_control_rate")
        crossed = metrics.get("difference_cross_student_minus_control_rate")
        if same is not None and crossed is not None and above(same, 0.0) and contains(crossed, 0.0):
            sentences.append(
                "The cross-base students' interval includes zero: consistent with transfer "
                "needing a shared base, but a null there is not proof of it."
            )
    return " ".join(sentences), notes
