"""Means and 95% confidence intervals in the one shape every result uses.

Two estimators, because the experiments have two kinds of replication:

* across seeds (digits, toy LM): every seed re-runs the whole pipeline, the seeds are independent
  draws, and there are few of them, so a Student t interval is the honest choice;
* across questions (number-sequence LM eval): the paper averages hit rates per question and the
  questions are the unit that varies, so we bootstrap over questions (paired, for differences,
  because every model answers the same questions).

Every metric is reported as ``{"mean": m, "ci95": [lo, hi]}``; with fewer than two observations
the interval is unknown and written as ``[null, null]`` rather than a falsely tight ``[m, m]``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypedDict


class Estimate(TypedDict):
    """A point estimate with its 95% interval; ``None`` bounds mean "not estimable"."""

    mean: float
    ci95: list[float | None]


def _t_quantile_975(df: int) -> float:
    """Two-sided 95% Student t critical value.

    scipy ships with scikit-learn (an ``evals`` dependency), but this module stays importable
    without it: a short table plus the normal limit covers every df we can meet.
    """
    try:
        from scipy.stats import t  # heavy import, only when used

        return float(t.ppf(0.975, df))
    except ImportError:  # pragma: no cover - scipy is present whenever the evals extra is
        table = {
            1: 12.706,
            2: 4.303,
            3: 3.182,
            4: 2.776,
            5: 2.571,
            6: 2.447,
            7: 2.365,
            8: 2.306,
            9: 2.262,
            10: 2.228,
            15: 2.131,
            20: 2.086,
            30: 2.042,
        }
        best = max(k for k in table if k <= df) if df < 30 else 30
        return table[best] if df < 30 else 1.96 + (2.042 - 1.96) * 30 / df


def t_interval(values: Sequence[float]) -> Estimate:
    """Mean with a Student t 95% interval, for independent replicate runs (seeds).

    Args:
        values: one observation per seed.

    Returns:
        The mean and interval; the interval is ``[None, None]`` for fewer than two values.

    Raises:
        ValueError: if ``values`` is empty (there is nothing to report, and a silent NaN would
            travel into result files).
    """
    n = len(values)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = math.fsum(values) / n
    if n < 2:
        return {"mean": mean, "ci95": [None, None]}
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = _t_quantile_975(n - 1) * math.sqrt(var / n)
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), kept here to stay numpy-free."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac


def bootstrap_interval(per_unit: Sequence[float], n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Mean over units (questions) with a percentile-bootstrap 95% interval.

    Args:
        per_unit: one value per question (e.g. the hit rate over its samples).
        n_boot: bootstrap resamples; 2000 keeps the interval ends stable to ~0.5 pp.
        seed: RNG seed, so a result file can be reproduced exactly.

    Returns:
        The mean and interval; ``[None, None]`` with fewer than two units.

    Raises:
        ValueError: if ``per_unit`` is empty.
    """
    return paired_bootstrap_difference(per_unit, [0.0] * len(per_unit), n_boot, seed)


def paired_bootstrap_difference(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0
) -> Estimate:
    """Mean of ``a - b`` over units, resampling units jointly (a paired bootstrap).

    Pairing matters: every model answers the same questions, and some questions draw the target
    far more often than others; resampling the two arms independently would count that
    question-to-question spread twice and widen the interval for nothing.

    Args:
        a: per-unit values of the treated arm.
        b: per-unit values of the comparison arm, same units in the same order.
        n_boot: bootstrap resamples.
        seed: RNG seed.

    Returns:
        The mean difference and its percentile interval.

    Raises:
        ValueError: if the arms are empty or of different lengths.
    """
    if len(a) != len(b):
        raise ValueError(f"paired arms differ in length: {len(a)} != {len(b)}")
    n = len(a)
    if n == 0:
        raise ValueError("bootstrap needs at least one unit")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    mean = math.fsum(diffs) / n
    if n < 2:
        return {"mean": mean, "ci95": [None, None]}
    rng = random.Random(seed)
    means = sorted(math.fsum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    return {"mean": mean, "ci95": [_percentile(means, 0.025), _percentile(means, 0.975)]}


def excludes_zero(est: Estimate) -> bool:
    """Whether a 95% interval lies wholly on one side of zero (an unknown interval does not)."""
    lo, hi = est["ci95"]
    if lo is None or hi is None:
        return False
    return lo > 0 or hi < 0
