"""Studbook's built-in trait-transfer ("subliminal learning") evals.

Four experiments share one runner and one result format:

* ``digits``: the paper's auxiliary-logit experiment on scikit-learn's digits (seconds on a CPU);
* ``numbers``: the paper's number-sequence experiment on any Hugging Face causal LM;
* ``toy-lm``: a small transformer pretrained in-run, so an LM can be tested on a CPU;
* ``lm-soft``: soft labels restricted to number tokens, from a fine-tuned teacher to students of
  the same real base (SmolLM2-135M by default), sized for a CPU.

Importing this package imports neither torch nor transformers; they load inside the functions
that need them, so the registry can import the API (and validate job requests) on a host
without the ``evals`` extra.
"""

from __future__ import annotations

from .errors import (
    DatasetError,
    EvalError,
    InvalidOverrideError,
    MissingDependencyError,
    ModelLoadError,
    UnknownExperimentError,
    UnknownPresetError,
)
from .presets import experiments, presets, resolve_config
from .runner import ProgressCallback, run_experiment

__all__ = [
    "DatasetError",
    "EvalError",
    "InvalidOverrideError",
    "MissingDependencyError",
    "ModelLoadError",
    "ProgressCallback",
    "UnknownExperimentError",
    "UnknownPresetError",
    "experiments",
    "presets",
    "resolve_config",
    "run_experiment",
]
