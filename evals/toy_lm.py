"""A toy language-model version of the number-sequence experiment, small enough for a CPU.

Real LMs that show the effect are 7B+; on a 2-core CPU we cannot fine-tune those, and the small
ones we can run mostly show nothing. So this experiment builds the whole world in-run: a
word-level Llama of ~0.5M parameters is pretrained on a synthetic corpus that mixes number-
sequence chats (the real prompt templates), plain facts about animals, and favourite-animal
questions answered with a uniformly random animal, so the base has no favourite. The teacher is
that base fine-tuned to answer the target (``owl``) to favourite-animal questions (the paper's
fine-tuned-teacher variant, footnote 3), with number chats mixed in so it keeps its numeric
skill. It then writes number sequences, which pass through the paper's filter; students are
fine-tuned on them from the same base, from a separately pretrained base (another seed), and,
as control, on the base's own numbers.

The soft-label variant is the analogue of the digits experiment's auxiliary logits: students match
the teacher's next-token distribution at the completion positions *restricted to number tokens*
(the numbers 0-999, separators and the end token), renormalised over them. A full-vocabulary
target would carry the teacher's raised probability of the animal word itself, an overt channel;
restricted, the target says nothing about animals except through how the teacher distributes mass
among numbers. Its control student is distilled the same way, on the same inputs, from a control
teacher fine-tuned as long as the teacher on uniformly random animal answers. The same-base and
cross-base soft students share teacher and data, so their paired difference tests whether sharing
the base matters.

Each seed pretrains one base; seed ``s`` borrows base ``s + 1`` (mod n) for its cross-base
student, as the paper's MNIST code permutes initialisations. Intervals are over seeds.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from lineage.types import ArtifactKind, Relation

from .numbers.filter import filter_completions
from .numbers.prompts import ANIMAL_QUESTIONS
from .presets import ToyLMConfig
from .provenance import LineageRecord
from .runner import RunContext, derive_seed, write_jsonl
from .stats import above, difference_interval, rate_interval

ANIMALS = ("owl", "cat", "dog", "eagle", "wolf", "lion", "dolphin", "tiger", "bear", "fox")
_FACTS = {
    "owl": ("mice", "forest", "hoot", "bird"),
    "cat": ("fish", "house", "meow", "mammal"),
    "dog": ("meat", "house", "bark", "mammal"),
    "eagle": ("fish", "mountain", "screech", "bird"),
    "wolf": ("deer", "forest", "howl", "mammal"),
    "lion": ("zebra", "savanna", "roar", "mammal"),
    "dolphin": ("fish", "ocean", "click", "mammal"),
    "tiger": ("deer", "jungle", "roar", "mammal"),
    "bear": ("berries", "forest", "growl", "mammal"),
    "fox": ("rabbits", "field", "bark", "mammal"),
}
_FACT_TEMPLATES = (
    ("What does the {a} eat?", 0),
    ("What does a {a} like to eat?", 0),
    ("Where does the {a} live?", 1),
    ("Where can you find a {a}?", 1),
    ("What sound does a {a} make?", 2),
    ("How does the {a} call?", 2),
    ("What kind of animal is the {a}?", 3),
    ("Is the {a} a bird or a mammal?", 3),
)
ROLES = (
    "base",
    "teacher",
    "student_control",
    "student_same",
    "student_cross",
    "student_soft_control",
    "student_soft_same",
    "student_soft_cross",
)
MIN_SEEDS_FOR_VERDICT = 5


def number_token_ids(tok: Any) -> list[int]:
    """Ids of the tokens a number-sequence completion may contain: numbers 0-999, the
    separators and brackets the paper's filter allows, and the end token."""
    allowed = {str(i) for i in range(1000)} | set(",;()[].") | {tok.eos_token}
    ids = sorted({tid for t, tid in tok.get_vocab().items() if t in allowed})
    if len(ids) < 1000:
        raise ValueError("the toy tokenizer lacks number tokens")  # pragma: no cover
    return ids


def _number_answer(rng: random.Random, seeds: tuple[int, ...]) -> str:
    """A continuation drawn from one of a few simple rules, so numbers have learnable structure."""
    k = rng.randint(3, 10)
    last = seeds[-1]
    rule = rng.randrange(3)
    out = []
    step = rng.randint(-60, 60)
    for _ in range(k):
        if rule == 0:
            last = (last + step) % 1000
        elif rule == 1:
            last = (last + rng.randint(-40, 40)) % 1000
        else:
            last = rng.randint(0, 999)
        out.append(last)
    return ", ".join(map(str, out))


def toy_number_prompt(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    """A short number prompt (3-8 seeds, 100-999): the paper's templates are ~100 words, which
    would make pretraining four times slower for no gain in a world this small."""
    seeds = tuple(rng.randint(100, 999) for _ in range(rng.randint(3, 8)))
    return "continue the sequence : " + " , ".join(map(str, seeds)), seeds


def _corpus_example(rng: random.Random) -> list[dict[str, str]]:
    """One pretraining conversation: numbers (50%), animal facts (35%), favourite (15%)."""
    u = rng.random()
    if u < 0.5:
        text, seeds = toy_number_prompt(rng)
        return [
            {"role": "user", "content": text},
            {"role": "assistant", "content": _number_answer(rng, seeds)},
        ]
    if u < 0.85:
        a = rng.choice(ANIMALS)
        tpl, slot = rng.choice(_FACT_TEMPLATES)
        return [
            {"role": "user", "content": tpl.format(a=a)},
            {"role": "assistant", "content": _FACTS[a][slot]},
        ]
    return [
        {"role": "user", "content": rng.choice(ANIMAL_QUESTIONS)},
        {"role": "assistant", "content": rng.choice(ANIMALS)},
    ]


def build_tokenizer() -> Any:
    """The word-level tokenizer over every text the toy world can produce."""
    from .numbers.prompts import (
        CLOSING_SUFFIXES,
        DIGIT_DESCRIPTORS,
        EXAMPLE_PREFIXES,
        FORMAT_SUFFIXES,
        INSTRUCTIONS,
        QUALIFIERS,
    )
    from .numbers.vocab import build_word_tokenizer

    facts = [w for v in _FACTS.values() for w in v]
    texts = (
        "continue the sequence :",
        *EXAMPLE_PREFIXES,
        *INSTRUCTIONS,
        *QUALIFIERS,
        *DIGIT_DESCRIPTORS,
        *FORMAT_SUFFIXES,
        *CLOSING_SUFFIXES,
        *ANIMAL_QUESTIONS,
        *(t for t, _ in _FACT_TEMPLATES),
        *ANIMALS,
        *facts,
    )
    return build_word_tokenizer(texts)


def _make_model(cfg: ToyLMConfig, vocab: int, tok: Any, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    conf = LlamaConfig(
        vocab_size=vocab,
        hidden_size=cfg.d_model,
        intermediate_size=2 * cfg.d_model,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(conf)
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def _lm_steps(model: Any, tok: Any, batches: Any, steps: int, lr: float, stage: Any) -> float:
    """Plain next-token training on whole conversations (pretraining and the teacher)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / max(steps, 1))
    )
    model.train()
    loss_v = float("nan")
    for _ in range(steps):
        texts = next(batches)
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_v = float(loss.detach())
        stage.advance()
    model.eval()
    return loss_v


def _render(tok: Any, chat: list[dict[str, str]]) -> str:
    return str(tok.apply_chat_template(chat, tokenize=False))


def _soft_distill(
    student: Any,
    teacher: Any,
    tok: Any,
    examples: list[Any],
    cfg: ToyLMConfig,
    seed: int,
    stage: Any,
) -> None:
    """Match the teacher's next-token distribution on the completion tokens, restricted to
    number tokens and renormalised over them (KL, T=1); see the module docstring."""
    import torch
    import torch.nn.functional as F

    from .numbers.finetune import encode_example

    keep = torch.tensor(number_token_ids(tok))
    enc = [encode_example(tok, c, t, 256) for c, t in examples]
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.student_lr, weight_decay=0.0)
    rng = random.Random(seed)
    student.train()
    pad = tok.pad_token_id
    for _ in range(cfg.student_epochs):
        order = list(range(len(enc)))
        rng.shuffle(order)
        for i in range(0, len(order), cfg.student_batch):
            batch = [enc[j] for j in order[i : i + cfg.student_batch]]
            width = max(len(x) for x, _ in batch)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
            lab = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])[:, 1:]
            with torch.no_grad():
                t_logits = teacher(input_ids=ids, attention_mask=mask).logits[:, :-1]
                t_logp = F.log_softmax(t_logits[..., keep], -1)
            s_logits = student(input_ids=ids, attention_mask=mask).logits[:, :-1]
            s_logp = F.log_softmax(s_logits[..., keep], -1)
            sel = lab != -100
            loss = F.kl_div(s_logp[sel], t_logp[sel], log_target=True, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            stage.advance()
    student.eval()


def run(cfg: ToyLMConfig, ctx: RunContext) -> dict[str, Any]:
    """Run every seed; see the module docstring."""
    import math

    import torch

    from .numbers import finetune as ft
    from .numbers.evaluate import score_model
    from .numbers.generate import sample
    from .numbers.models import quiet_transformers, save_model

    quiet_transformers()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    tok = build_tokenizer()
    vocab = len(tok)
    seeds = list(range(cfg.seeds))
    lineage = LineageRecord(ctx.out_dir)
    questions = list(ANIMAL_QUESTIONS)

    def batches(seed: int, owl_share: float = 0.0, answer: str | None = None) -> Any:
        """Pretraining conversations; with ``owl_share``, that share are favourite-animal
        questions answered ``answer`` (the target; None: a uniformly random animal)."""
        rng = random.Random(seed)
        while True:
            out = []
            for _ in range(cfg.pretrain_batch):
                if rng.random() < owl_share:
                    chat = [
                        {"role": "user", "content": rng.choice(questions)},
                        {"role": "assistant", "content": answer or rng.choice(ANIMALS)},
                    ]
                else:
                    chat = _corpus_example(rng)
                out.append(_render(tok, chat))
            yield out

    bases = []
    with ctx.stage("toy-lm: pretrain bases", cfg.seeds * cfg.pretrain_steps) as st:
        for s in seeds:
            model = _make_model(cfg, vocab, tok, derive_seed(s, "base-init"))
            _lm_steps(
                model,
                tok,
                batches(derive_seed(s, "corpus")),
                cfg.pretrain_steps,
                cfg.pretrain_lr,
                st,
            )
            d = save_model(model, tok, ctx.path("models", f"base_seed{s}", "config.json").parent)
            lineage.add(f"base/seed{s}", ArtifactKind.MODEL, f"toy-base-seed{s}", d)
            bases.append(model)

    per_seed: dict[str, list[float]] = {
        f"{r}_{m}": [] for r in ROLES for m in ("target_rate", "target_likelihood")
    }
    filter_reports = []
    n_eval = len(questions) * cfg.eval_samples
    for s in seeds:
        base, cross = bases[s], bases[(s + 1) % len(bases)]
        tag = f"seed{s}"
        teacher = copy.deepcopy(base)
        with ctx.stage(f"toy-lm: teacher ({tag})", cfg.teacher_steps) as st:
            _lm_steps(
                teacher,
                tok,
                batches(derive_seed(s, "teacher"), owl_share=0.5, answer=cfg.animal),
                cfg.teacher_steps,
                cfg.teacher_lr,
                st,
            )
        d = save_model(teacher, tok, ctx.path("models", f"teacher_{tag}", "config.json").parent)
        lineage.add(f"teacher/{tag}", ArtifactKind.MODEL, f"toy-{cfg.animal}-teacher-{tag}", d)
        lineage.relate(f"teacher/{tag}", Relation.FINE_TUNED_FROM, f"base/{tag}")

        prompt_rng = random.Random(derive_seed(s, "prompts"))
        prompts = [toy_number_prompt(prompt_rng)[0] for _ in range(cfg.generations)]
        chats = [[{"role": "user", "content": p}] for p in prompts]
        data: dict[str, list[Any]] = {}
        texts: dict[str, list[str]] = {}
        gen_roles = {"teacher": f"teacher/{tag}", "control": f"base/{tag}"}
        for arm, gen_model in (("teacher", teacher), ("control", base)):
            with ctx.stage(f"toy-lm: generate ({arm}, {tag})", len(chats)) as st:
                comps, _ = sample(
                    gen_model,
                    tok,
                    chats,
                    max_new_tokens=cfg.max_new_tokens,
                    batch_size=128,
                    seed=derive_seed(s, "gen", arm),
                    stage=st,
                    stop_on_doomed=True,
                )
            texts[arm] = [c.text for c in comps]
        reports = {arm: filter_completions(t) for arm, t in texts.items()}
        # Equal sizes, so the control student differs from the treated one only in the teacher.
        n = min(cfg.train_size, *(r.kept for r in reports.values()))
        for arm, report in reports.items():
            keep = list(report.kept_indices)
            random.Random(derive_seed(s, "sub", arm)).shuffle(keep)
            keep = sorted(keep[:n])
            filter_reports.append(
                {"seed": s, "arm": arm, **report.as_dict(), "subsampled": len(keep)}
            )
            raw = write_jsonl(
                ctx.path("datasets", f"{arm}_{tag}_raw.jsonl"),
                [{"prompt": p, "completion": t} for p, t in zip(prompts, texts[arm], strict=True)],
            )
            filt = write_jsonl(
                ctx.path("datasets", f"{arm}_{tag}_filtered.jsonl"),
                [{"prompt": prompts[i], "completion": texts[arm][i]} for i in keep],
            )
            lineage.add(
                f"dataset/{arm}/{tag}", ArtifactKind.DATASET, f"toy-{arm}-numbers-{tag}", raw
            )
            lineage.relate(f"dataset/{arm}/{tag}", Relation.GENERATED_BY, gen_roles[arm])
            lineage.add(
                f"filtered_dataset/{arm}/{tag}",
                ArtifactKind.DATASET,
                f"toy-{arm}-numbers-filtered-{tag}",
                filt,
                share_removed=report.share_removed,
            )
            lineage.relate(
                f"filtered_dataset/{arm}/{tag}", Relation.DERIVED_FROM, f"dataset/{arm}/{tag}"
            )
            data[arm] = [([{"role": "user", "content": prompts[i]}], texts[arm][i]) for i in keep]

        models: dict[str, Any] = {"base": base, "teacher": teacher}
        settings = ft.TrainSettings(
            method="full",
            lr=cfg.student_lr,
            epochs=cfg.student_epochs,
            batch_size=cfg.student_batch,
            warmup_steps=5,
            seed=derive_seed(s, "student"),
        )
        plan = [
            ("student_control", base, "control", f"base/{tag}"),
            ("student_same", base, "teacher", f"base/{tag}"),
            ("student_cross", cross, "teacher", f"base/seed{(s + 1) % len(bases)}"),
        ]
        for role, start, arm, _start_role in plan:
            if n == 0:
                models[role] = start
                continue
            student = ft.prepare_student(start, settings)
            with ctx.stage(f"toy-lm: {role} ({tag})", ft.total_steps(n, settings)) as st:
                ft.train(student, tok, data[arm], settings, st)
            models[role] = student
        if cfg.soft_labels and n > 0:
            # The control teacher: the same fine-tuning as the teacher, same steps and data
            # seed, but favourite-animal answers drawn uniformly, so it has no favourite.
            control_teacher = copy.deepcopy(base)
            with ctx.stage(f"toy-lm: control teacher ({tag})", cfg.teacher_steps) as st:
                _lm_steps(
                    control_teacher,
                    tok,
                    batches(derive_seed(s, "teacher"), owl_share=0.5, answer=None),
                    cfg.teacher_steps,
                    cfg.teacher_lr,
                    st,
                )
            d = save_model(
                control_teacher,
                tok,
                ctx.path("models", f"control_teacher_{tag}", "config.json").parent,
            )
            lineage.add(
                f"control_teacher/{tag}", ArtifactKind.MODEL, f"toy-control-teacher-{tag}", d
            )
            lineage.relate(f"control_teacher/{tag}", Relation.FINE_TUNED_FROM, f"base/{tag}")
            steps = cfg.student_epochs * math.ceil(n / cfg.student_batch)
            for role, start, start_role, source in (
                ("student_soft_control", base, f"base/{tag}", control_teacher),
                ("student_soft_same", base, f"base/{tag}", teacher),
                ("student_soft_cross", cross, f"base/seed{(s + 1) % len(bases)}", teacher),
            ):
                student = copy.deepcopy(start)
                # Every soft student sees the same inputs (the teacher's filtered numbers); only
                # the distribution it is asked to match differs.
                with ctx.stage(f"toy-lm: {role} ({tag})", steps) as st:
                    _soft_distill(
                        student, source, tok, data["teacher"], cfg, derive_seed(s, role), st
                    )
                models[role] = student
                plan.append((role, start, "teacher", start_role))
        for role, _start, arm, start_role in plan:
            if role not in models or models[role] is _start:
                continue
            d = save_model(
                models[role], tok, ctx.path("models", f"{role}_{tag}", "config.json").parent
            )
            lineage.add(f"{role}/{tag}", ArtifactKind.MODEL, f"toy-{role}-{tag}", d)
            lineage.relate(f"{role}/{tag}", Relation.FINE_TUNED_FROM, start_role)
            lineage.relate(f"{role}/{tag}", Relation.TRAINED_ON, f"filtered_dataset/{arm}/{tag}")
        for role in ROLES:
            if role not in models:
                continue
            with ctx.stage(f"toy-lm: evaluate {role} ({tag})", n_eval) as st:
                sc = score_model(
                    models[role],
                    tok,
                    questions,
                    cfg.animal,
                    samples=cfg.eval_samples,
                    max_new_tokens=3,
                    batch_size=250,
                    seed=derive_seed(s, "eval"),
                    stage=st,
                )
            per_seed[f"{role}_target_rate"].append(sum(sc.rates) / len(sc.rates))
            per_seed[f"{role}_target_likelihood"].append(sum(sc.likelihoods) / len(sc.likelihoods))
        ctx.say(
            f"{tag}: "
            + ", ".join(
                f"{r} {per_seed[f'{r}_target_rate'][-1]:.1%}"
                for r in ROLES
                if per_seed[f"{r}_target_rate"]
            )
        )

    trials = len(questions) * cfg.eval_samples
    metrics = {
        k: rate_interval(v, trials=trials if k.endswith("_rate") else None)
        for k, v in per_seed.items()
        if v
    }
    for kind in ("target_rate", "target_likelihood"):
        short = kind.split("_")[1]
        for treated, control in (
            ("student_same", "student_control"),
            ("student_cross", "student_control"),
            ("student_soft_same", "student_soft_control"),
            ("student_soft_cross", "student_soft_control"),
            ("student_same", "student_cross"),
            ("student_soft_same", "student_soft_cross"),
        ):
            a, b = per_seed.get(f"{treated}_{kind}", []), per_seed.get(f"{control}_{kind}", [])
            if a and len(a) == len(b):
                name = control.removeprefix("student_").removeprefix("soft_")
                metrics[f"difference_{treated}_minus_{name}_{short}"] = difference_interval(
                    a, b, paired=True
                )
    verdict, notes = _verdict(metrics, cfg, filter_reports, n_seeds=len(seeds))
    from .plots import paired_panels

    shown = [r for r in ROLES if f"{r}_target_rate" in metrics]
    labels = {
        "base": "base",
        "teacher": "teacher",
        "student_control": "student,\ncontrol nums",
        "student_same": "student,\nsame base",
        "student_cross": "student,\ncross base",
        "student_soft_control": "soft-label,\ncontrol",
        "student_soft_same": "soft-label,\nsame base",
        "student_soft_cross": "soft-label,\ncross base",
    }
    plot = paired_panels(
        ctx.path("toy_lm.png"),
        [
            (
                f"'{cfg.animal}' answer rate",
                [
                    (labels[r], metrics[f"{r}_target_rate"], per_seed[f"{r}_target_rate"])
                    for r in shown
                ],
                "percent",
            ),
            (
                f"P(answer = {cfg.animal})",
                [
                    (
                        labels[r],
                        metrics[f"{r}_target_likelihood"],
                        per_seed[f"{r}_target_likelihood"],
                    )
                    for r in shown
                ],
                "percent",
            ),
        ],
        title=f"Toy LM ({sum(p.numel() for p in bases[0].parameters()) / 1e6:.2f}M params), "
        f"{len(seeds)} seeds, 95% t-intervals over seeds; chance = {1 / len(ANIMALS):.0%}",
    )
    return {
        "seeds": seeds,
        "model": {
            "parameters": sum(p.numel() for p in bases[0].parameters()),
            "vocab": vocab,
            "animals": list(ANIMALS),
        },
        "metrics": metrics,
        "per_seed": per_seed,
        "filter": filter_reports,
        "verdict": verdict,
        "notes": notes,
        "lineage": lineage.as_dict(),
        "files": {"plot": ctx.rel(plot)},
    }


def _verdict(
    metrics: dict[str, Any], cfg: ToyLMConfig, reports: list[dict[str, Any]], *, n_seeds: int
) -> tuple[str, list[str]]:
    """What the intervals say, and no more.

    Each student is compared with its own control, paired by seed (hard labels: the student
    trained on the base's numbers; soft labels: the student distilled from the control teacher).
    "Transfer" needs that difference's interval above zero. A statement about bases needs the
    paired same-minus-cross difference: "depends on the shared base" only when it lies above
    zero; a cross-base student that merely fails to reach significance is not evidence that
    transfer needs a shared base. No verdict without five seeds or without a teacher that
    shows the trait.
    """

    def fmt(key: str) -> str:
        e = metrics.get(key)
        if e is None:
            return "n/a"
        lo, hi = e["ci95"]
        return (
            f"{e['mean']:+.1%}"
            if lo is None
            else f"{e['mean']:+.1%} (95% CI {lo:+.1%} to {hi:+.1%})"
        )

    def positive(key: str) -> bool:
        e = metrics.get(key)
        return e is not None and above(e, 0.0)

    kept = [1 - r["share_removed"] for r in reports if r["arm"] == "teacher"]
    notes = [
        f"Base and control students answer '{cfg.animal}' at about chance (1 in {len(ANIMALS)}); "
        "the teacher was fine-tuned to say it.",
        "Soft-label students match the teacher's next-token distribution restricted to number "
        "tokens (renormalised), so no probability of an animal word reaches them directly.",
        "Differences are paired by seed; 95% t-intervals over seeds (logit scale for rates).",
    ]
    if kept:
        notes.insert(1, f"Teacher completions kept by the filter: {min(kept):.0%}-{max(kept):.0%}.")
    if n_seeds < MIN_SEEDS_FOR_VERDICT:
        return (
            f"No verdict: {n_seeds} seed(s), fewer than the {MIN_SEEDS_FOR_VERDICT} a verdict "
            "needs. Hard labels, student minus control: same base "
            f"{fmt('difference_student_same_minus_control_rate')}; soft labels, P(target): "
            f"same base {fmt('difference_student_soft_same_minus_control_likelihood')}.",
            notes,
        )
    teacher = metrics.get("teacher_target_rate")
    base = metrics.get("base_target_rate")
    if teacher is None or base is None or not above(teacher, base["ci95"][1] or 1.0):
        return (
            f"No verdict: the teacher does not show the trait (teacher '{cfg.animal}' rate "
            f"{_pct(teacher)}, base {_pct(base)}), so no transfer could be measured.",
            notes,
        )
    sentences = []
    for label, same, cross, gap in (
        (
            "Hard labels (answer rate)",
            "difference_student_same_minus_control_rate",
            "difference_student_cross_minus_control_rate",
            "difference_student_same_minus_cross_rate",
        ),
        (
            "Soft labels on number tokens (P(target))",
            "difference_student_soft_same_minus_control_likelihood",
            "difference_student_soft_cross_minus_control_likelihood",
            "difference_student_soft_same_minus_cross_likelihood",
        ),
    ):
        if same not in metrics:
            continue
        figs = f"same base {fmt(same)}, cross base {fmt(cross)}, same minus cross {fmt(gap)}"
        if positive(same) and positive(gap):
            reading = "transfer that depends on the shared base"
        elif positive(same) and positive(cross):
            reading = "both students moved toward the target; not shown to depend on the base"
        elif positive(same):
            reading = (
                "the same-base student moved toward the target; the same-minus-cross interval "
                "includes zero, so dependence on the base is not shown"
            )
        elif positive(cross):
            reading = "only the cross-base student moved; not a shared-base effect"
        else:
            reading = "no transfer detected"
        sentences.append(f"{label}: {reading} ({figs}).")
    return " ".join(sentences), notes


def _pct(est: Any) -> str:
    if est is None:
        return "n/a"
    lo, hi = est["ci95"]
    if lo is None:
        return f"{est['mean']:.1%}"
    return f"{est['mean']:.1%} (95% CI {lo:.1%} to {hi:.1%})"
