"""Errors raised by the trait-transfer evals.

Everything the evals raise on bad input derives from :class:`EvalError`, so the registry's job
worker can map one base class to a 4xx-style failure and treat anything else as a bug. Errors
carry the offending value as attributes (not only in the message) so callers can report the
field that was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable


class EvalError(Exception):
    """Base class of every error the evals package raises on purpose."""


class UnknownExperimentError(EvalError):
    """The experiment name is not one the runner knows."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"unknown experiment {name!r}; expected one of: {', '.join(self.known)}")


class UnknownPresetError(EvalError):
    """The preset is not defined for the chosen experiment."""

    def __init__(self, experiment: str, preset: str, known: Iterable[str]) -> None:
        self.experiment = experiment
        self.preset = preset
        self.known = tuple(sorted(known))
        super().__init__(
            f"unknown preset {preset!r} for experiment {experiment!r}; "
            f"expected one of: {', '.join(self.known)}"
        )


class InvalidOverrideError(EvalError):
    """An override names an unknown setting or gives it a value of the wrong kind."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"override {key!r}: {reason}")


class ModelLoadError(EvalError):
    """A base model could not be found or loaded from the given location."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"cannot load model from {location!r}: {reason}")


class DatasetError(EvalError):
    """Input data is missing or malformed (e.g. an MNIST IDX file), or a filter left too little."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")


class MissingDependencyError(EvalError):
    """An optional package the evals need (the ``evals`` extra) is not installed."""

    def __init__(self, package: str) -> None:
        self.package = package
        super().__init__(
            f"the evals need the package {package!r}; "
            "install them with `pip install studbook[evals]`"
        )
