"""Statistics against values computed by hand."""

from __future__ import annotations

import pytest

from evals.stats import bootstrap_interval, excludes_zero, paired_bootstrap_difference, t_interval


def test_t_interval_known_values() -> None:
    # mean 3, sd 1.5811, se 0.7071, t(0.975, 4) = 2.7764 -> half-width 1.9632
    est = t_interval([1, 2, 3, 4, 5])
    assert est["mean"] == pytest.approx(3.0)
    assert est["ci95"][0] == pytest.approx(3 - 1.9632, abs=1e-3)
    assert est["ci95"][1] == pytest.approx(3 + 1.9632, abs=1e-3)


def test_t_interval_degenerate_cases() -> None:
    assert t_interval([0.4]) == {"mean": 0.4, "ci95": [None, None]}
    assert t_interval([0.5, 0.5, 0.5])["ci95"] == [pytest.approx(0.5), pytest.approx(0.5)]
    with pytest.raises(ValueError):
        t_interval([])


def test_bootstrap_constant_and_spread() -> None:
    assert bootstrap_interval([0.2] * 10)["ci95"] == [pytest.approx(0.2), pytest.approx(0.2)]
    est = bootstrap_interval([0.0] * 50 + [1.0] * 50, seed=1)
    assert est["mean"] == pytest.approx(0.5)
    lo, hi = est["ci95"]
    # Normal approximation: 0.5 +- 1.96 * 0.05 = [0.402, 0.598]
    assert lo == pytest.approx(0.402, abs=0.03) and hi == pytest.approx(0.598, abs=0.03)
    assert bootstrap_interval([0.1, 0.3], seed=0) == bootstrap_interval([0.1, 0.3], seed=0)


def test_paired_difference_removes_shared_spread() -> None:
    a = [0.1 * i + 0.05 for i in range(10)]
    b = [0.1 * i for i in range(10)]
    est = paired_bootstrap_difference(a, b)
    assert est["mean"] == pytest.approx(0.05)
    assert est["ci95"] == [pytest.approx(0.05), pytest.approx(0.05)]
    assert excludes_zero(est)
    assert not excludes_zero({"mean": 0.0, "ci95": [-0.1, 0.1]})
    assert not excludes_zero({"mean": 0.0, "ci95": [None, None]})
    with pytest.raises(ValueError):
        paired_bootstrap_difference([1.0], [1.0, 2.0])
