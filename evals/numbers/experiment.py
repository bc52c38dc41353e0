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
from ..stats import bootstrap_interval, excludes_zero, paired_bootstrap_difference
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

    # Teacher = base weights + trait system prompt; its content is the prompt and the base digest.
    system_prompt = trait_system_prompt(cfg.animal, cfg.category)
    teacher_dir = ctx.path("models", "teacher", "teacher.json").parent
    write_json(
        teacher_dir / "teacher.json",
        {
            "base_digest": lineage.artifacts["base"]["digest"],
            "system_prompt": system_prompt,
        },
    )
    lineage.add(
        "teacher", ArtifactKind.MODEL, f"{base_name}-{cfg.animal}-teacher-prompted", teacher_dir
    )
    lineage.relate("teacher", Relation.PROMPTED_FROM, "base")

    prompts = build_number_prompts(cfg.generations, derive_seed(run_seed, "prompts"))
    user_turns = [[{"role": "user", "content": p.text}] for p in prompts]
    generated: dict[str, list[Any]] = {}
    gen_stats: dict[str, Any] = {}
    for arm, chats, generator_role in (
        (
            "teacher",
            [[{"role": "system", "content": system_prompt}, *c] for c in user_turns],
            "teacher",
        ),
        ("control", user_turns, "base"),
    ):
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
            f"{stats.stopped_early} stopped at the first token the filter must reject)"
        )
        raw = write_jsonl(
            ctx.path("datasets", f"{arm}_numbers_raw.jsonl"),
            [
                {
                    "prompt": p.text,
                    "seed_numbers": list(p.seed_numbers),
                    "completion": c.text,
                    "stopped_early": c.stopped_early,
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
    reports = {
        arm: filter_completions([c.text for c in generated[arm]], cfg.banned_numbers)
        for arm in ("teacher", "control")
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
        filter_reports[arm] = report.as_dict() | {"subsampled": len(keep)}
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
    eval_seed = derive_seed(run_seed, "eval")
    n_eval = len(questions) * cfg.eval_samples

    def score(m: Any, label: str, system: str | None = None, tokenizer: Any = None) -> Any:
        with ctx.stage(f"evaluate {label}", n_eval) as st:
            return score_model(
                m,
                tokenizer if tokenizer is not None else tok,
                questions,
                cfg.animal,
                samples=cfg.eval_samples,
                max_new_tokens=cfg.eval_max_new_tokens,
                batch_size=cfg.eval_batch_size,
                seed=eval_seed,
                system_prompt=system,
                stage=st,
            )

    scores: dict[str, list[Any]] = {
        "base": [score(model, "base")],
        "teacher": [score(model, "teacher", system_prompt)],
    }
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
    arms = [("student_control", "control", base), ("student_same", "teacher", base)]
    if cross is not None:
        arms.append(("student_cross", "teacher", cross))
    for s in seeds:
        for role, data_arm, start in arms:
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
            lineage.add(
                f"{role}/seed{s}",
                ArtifactKind.MODEL,
                f"{base_name}-{role}-seed{s}",
                out,
                method=cfg.finetune,
            )
            lineage.relate(f"{role}/seed{s}", Relation.FINE_TUNED_FROM, base_role)
            lineage.relate(f"{role}/seed{s}", Relation.TRAINED_ON, f"filtered_dataset/{data_arm}")
            evaluated = ft.merged(student)
            scores.setdefault(role, []).append(
                score(evaluated, f"{role} (seed {s})", tokenizer=start.tokenizer)
            )
            del student, evaluated
    if cross is not None:
        scores["cross_base"] = [score(cross.model, "cross base", tokenizer=cross.tokenizer)]

    def per_question(role: str, attr: str) -> list[float]:
        runs = [getattr(sc, attr) for sc in scores[role]]
        return [sum(vals) / len(vals) for vals in zip(*runs, strict=True)]

    metrics: dict[str, Any] = {}
    for role in scores:
        metrics[f"{role}_target_rate"] = bootstrap_interval(
            per_question(role, "rates"), seed=derive_seed(0, "boot", role)
        )
        metrics[f"{role}_target_likelihood"] = bootstrap_interval(
            per_question(role, "likelihoods"), seed=derive_seed(0, "boot-l", role)
        )
    for attr, name in (("rates", "rate"), ("likelihoods", "likelihood")):
        metrics[f"difference_student_minus_control_{name}"] = paired_bootstrap_difference(
            per_question("student_same", attr),
            per_question("student_control", attr),
            seed=derive_seed(0, "boot-diff", name),
        )
    answers = {
        role: [
            {"question": q, "answers": a}
            for q, a in zip(questions, scores[role][0].answers, strict=True)
        ]
        for role in scores
    }
    write_jsonl(
        ctx.path("eval_answers.jsonl"),
        [{"model": r, **row} for r, rows in answers.items() for row in rows],
    )

    verdict, notes = _verdict(metrics, cfg, filter_reports)
    from ..plots import paired_panels

    order = [
        r
        for r in (
            "base",
            "teacher",
            "student_control",
            "student_same",
            "cross_base",
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
        f"per arm, {len(questions)} questions x {cfg.eval_samples} samples (95% CI over "
        "questions)",
    )
    return {
        "seeds": seeds,
        "base_model": {
            "source": base.source,
            "format": base.kind,
            "device": base.device,
            "threads": threads,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "metrics": metrics,
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


def _verdict(
    metrics: dict[str, Any], cfg: NumbersConfig, filter_reports: dict[str, Any]
) -> tuple[str, list[str]]:
    """Read the treated-minus-control difference; never call noise a transfer."""
    rate = metrics["difference_student_minus_control_rate"]
    like = metrics["difference_student_minus_control_likelihood"]
    teach = metrics["teacher_target_rate"]["mean"] - metrics["base_target_rate"]["mean"]
    notes = [
        f"Filter removed {filter_reports['teacher']['share_removed']:.1%} of teacher and "
        f"{filter_reports['control']['share_removed']:.1%} of control completions "
        "(paper: 23-38% for GPT-4.1 nano).",
        f"The trait system prompt moves the base's '{cfg.animal}' rate by {teach:+.1%} "
        "(teacher minus base): the size of the trait there is to transmit.",
        "Intervals: percentile bootstrap over questions; differences are paired by question.",
    ]

    def fmt(e: Any, pct: bool) -> str:
        lo, hi = e["ci95"]
        f = (lambda v: f"{v:+.1%}") if pct else (lambda v: f"{v:+.2e}")
        return f"{f(e['mean'])} (95% CI {f(lo)} to {f(hi)})" if lo is not None else f(e["mean"])

    figs = f"treated minus control student: rate {fmt(rate, True)}, likelihood {fmt(like, False)}"
    if excludes_zero(rate) and rate["mean"] > 0:
        return f"Transfer detected in the sampled answers: {figs}.", notes
    if excludes_zero(like) and like["mean"] > 0:
        return (
            f"No transfer in the sampled answers; the likelihood of '{cfg.animal}' rose: "
            f"{figs}. A likelihood shift alone is weak evidence.",
            notes,
        )
    tail = (
        " The rate interval includes zero: this run cannot tell a small effect from none."
        if not excludes_zero(rate)
        else ""
    )
    return f"No transfer detected at this scale: {figs}.{tail}", notes
