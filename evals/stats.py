"""Means and 95% confidence intervals in the one shape every result uses.

Two estimators, because the experiments have two kinds of replication:

* across seeds (digits, toy LM): every seed re-runs the whole pipeline, the seeds are independent
  draws, and there are few of them, so a Student t interval is the honest choice;
* across questions (number-sequence LM eval): the paper averages hit rates per question and the
  questions are the unit that varies, so we bootstrap over questions (paired, for differences,
  because every model answers the same questions).

Every metric is reported as ``{"mean": m, "ci95": [lo, hi]}``; with fewer than two observations
the interval is unknown and written as ``[null, null]`` rather than a falsely tight ``[m, m]``.

Rates (accuracies, hit rates) live in [0, 1], and a symmetric t interval around a rate near 0 or 1
leaves that range (a "-7% accuracy" bound says nothing). Rates over replicates therefore use
``rate_interval``: a t interval on the logit scale mapped back, which stays inside (0, 1) and is
asymmetric where the data are; a single pool of Bernoulli trials uses the Wilson score interval.
Differences between arms stay on the plain scale (they can be negative) and are clipped to
[-1, 1], the range a difference of rates can take.
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


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def rate_interval(rates: Sequence[float], trials: int | None = None) -> Estimate:
    """Mean rate over independent replicates (students, seeds) with a 95% interval inside [0, 1].

    The interval is a Student t interval of the replicates' logits, mapped back. A rate of exactly
    0 or 1 has no logit, so each rate is first moved half a trial inwards (``(k + 1/2) / (n + 1)``
    with ``n = trials``; without ``trials``, into [1e-9, 1 - 1e-9], for probabilities that are
    not counts): the empirical-logit correction. The point
    estimate stays the plain mean of the rates (what the plots and tables show); the interval is
    widened to contain it if the logit-scale centre sits apart from it (a skewed handful of runs).

    Args:
        rates: one rate per replicate, each in [0, 1].
        trials: Bernoulli trials behind each rate (questions x samples), when known.

    Returns:
        The mean and interval; ``[None, None]`` for fewer than two replicates.

    Raises:
        ValueError: if ``rates`` is empty or a rate lies outside [0, 1].
    """
    if not rates:
        raise ValueError("rate_interval needs at least one rate")
    if any(not 0.0 <= r <= 1.0 for r in rates):
        raise ValueError(f"rates must lie in [0, 1]: {list(rates)}")
    mean = math.fsum(rates) / len(rates)
    if len(rates) < 2:
        return {"mean": mean, "ci95": [None, None]}
    if trials:
        moved = [(r * trials + 0.5) / (trials + 1) for r in rates]
    else:
        moved = [min(max(r, 1e-9), 1 - 1e-9) for r in rates]
    est = t_interval([_logit(r) for r in moved])
    lo, hi = est["ci95"]
    assert lo is not None and hi is not None
    return {"mean": mean, "ci95": [min(_expit(lo), mean), max(_expit(hi), mean)]}


def wilson_interval(successes: int, trials: int) -> Estimate:
    """A single pool of Bernoulli trials: the rate with its Wilson score 95% interval.

    Use it only where the trials are the unit that varies (one model sampled many times); across
    models, use ``rate_interval`` over the models instead, or the interval ignores how much they
    differ.

    Raises:
        ValueError: if ``trials`` is not positive or ``successes`` is outside [0, trials].
    """
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0: {successes}/{trials}")
    z = 1.959963984540054
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return {"mean": p, "ci95": [max(0.0, centre - half), min(1.0, centre + half)]}


def difference_interval(a: Sequence[float], b: Sequence[float], *, paired: bool) -> Estimate:
    """Mean of ``a`` minus mean of ``b`` with a 95% t interval, clipped to [-1, 1].

    Args:
        a: one value per replicate of the first arm (rates).
        b: the second arm.
        paired: the replicates correspond one to one (same seed, same teacher, same data): the
            interval is a one-sample t interval of the differences. Otherwise the arms are
            independent and the interval is Welch's.

    Returns:
        The difference and its interval; ``[None, None]`` when it cannot be estimated (fewer than
        two replicates in an arm).

    Raises:
        ValueError: if an arm is empty, or paired arms differ in length.
    """
    if not a or not b:
        raise ValueError("difference_interval needs values in both arms")
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired arms differ in length: {len(a)} != {len(b)}")
        est = t_interval([x - y for x, y in zip(a, b, strict=True)])
    else:
        est = _welch(a, b)
    lo, hi = est["ci95"]
    if lo is None or hi is None:
        return est
    return {"mean": est["mean"], "ci95": [max(-1.0, lo), min(1.0, hi)]}


def _welch(a: Sequence[float], b: Sequence[float]) -> Estimate:
    na, nb = len(a), len(b)
    ma, mb = math.fsum(a) / na, math.fsum(b) / nb
    mean = ma - mb
    if na < 2 or nb < 2:
        return {"mean": mean, "ci95": [None, None]}
    va = math.fsum((x - ma) ** 2 for x in a) / (na - 1)
    vb = math.fsum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    if se2 == 0.0:
        return {"mean": mean, "ci95": [mean, mean]}
    df = se2 * se2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = _t_quantile_975(max(1, math.floor(df))) * math.sqrt(se2)
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def contains(est: Estimate, value: float) -> bool:
    """Whether a known 95% interval contains ``value`` (an unknown interval does not say so)."""
    lo, hi = est["ci95"]
    return lo is not None and hi is not None and lo <= value <= hi


def above(est: Estimate, value: float) -> bool:
    """Whether a known 95% interval lies wholly above ``value``."""
    lo = est["ci95"][0]
    return lo is not None and lo > value
