"""Every verdict branch says what its intervals say, and the statistics behind them."""

from __future__ import annotations

import math

import pytest

from evals import digits, toy_lm
from evals.presets import resolve_config
from evals.stats import difference_interval, rate_interval, wilson_interval


def test_rate_interval_stays_inside_zero_and_one() -> None:
    for rates in ([0.0, 0.0, 0.01, 0.0, 0.02], [0.99, 1.0, 1.0, 0.97, 1.0], [0.0, 0.4]):
        est = rate_interval(rates, trials=100)
        lo, hi = est["ci95"]
        assert lo is not None and hi is not None
        assert 0.0 <= lo <= est["mean"] <= hi <= 1.0
    # A symmetric t interval would leave [0, 1] here; the logit interval is asymmetric instead.
    est = rate_interval([0.01, 0.0, 0.0, 0.05, 0.0], trials=200)
    assert est["ci95"][0] > 0.0 and est["ci95"][1] - est["mean"] > est["mean"] - est["ci95"][0]
    assert rate_interval([0.3])["ci95"] == [None, None]
    with pytest.raises(ValueError):
        rate_interval([1.2, 0.3])
    with pytest.raises(ValueError):
        rate_interval([])


def test_wilson_known_values() -> None:
    # 0 of 10: Wilson upper bound 0.2775 (standard table value).
    est = wilson_interval(0, 10)
    assert est["ci95"][0] == 0.0 and est["ci95"][1] == pytest.approx(0.2775, abs=1e-4)
    est = wilson_interval(50, 100)
    assert est["ci95"] == [pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4)]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_difference_interval_paired_and_welch() -> None:
    a, b = [0.5, 0.6, 0.7], [0.4, 0.5, 0.6]
    paired = difference_interval(a, b, paired=True)
    assert paired["mean"] == pytest.approx(0.1) and paired["ci95"][0] == pytest.approx(0.1)
    welch = difference_interval(a, b, paired=False)
    assert welch["mean"] == pytest.approx(0.1)
    # Welch with equal variances and sizes: df = 4, t = 2.776, se = sqrt(2 * 0.01 / 3).
    half = 2.7764 * math.sqrt(2 * 0.01 / 3)
    assert welch["ci95"][0] == pytest.approx(0.1 - half, abs=1e-3)
    assert difference_interval([1.0, 1.0], [0.0, -0.0], paired=True)["ci95"][1] <= 1.0
    with pytest.raises(ValueError):
        difference_interval([0.1], [0.1, 0.2], paired=True)


def _digits(same: list[float], cross: list[float], teacher: float = 0.96) -> tuple[str, list[str]]:
    per_seed = {
        "teacher": [teacher] * len(same),
        "untrained": [0.09] * len(same),
        "student_same_init": same,
        "student_cross_init": cross,
    }
    metrics = {k: rate_interval(v, trials=360) for k, v in per_seed.items()}
    metrics["same_minus_cross_init"] = difference_interval(same, cross, paired=True)
    return digits._verdict(metrics, per_seed)


def test_digits_verdict_branches() -> None:
    verdict, _ = _digits([0.45, 0.4], [0.1, 0.12])
    assert verdict.startswith("No verdict: 2 seed(s)")

    verdict, _ = _digits([0.45] * 5, [0.1] * 5, teacher=0.15)
    assert "teacher did not learn" in verdict

    verdict, _ = _digits([0.42, 0.45, 0.38, 0.5, 0.41], [0.09, 0.21, 0.1, 0.08, 0.11])
    assert verdict.startswith("Trait transferred")
    assert "interval contains chance (its best seed reached 21.0%)" in verdict
    assert "stays at chance" not in verdict

    verdict, _ = _digits([0.42, 0.45, 0.38, 0.5, 0.41], [0.2, 0.22, 0.19, 0.25, 0.21])
    assert verdict.startswith("Trait transferred") and "above chance too" in verdict

    verdict, _ = _digits([0.3, 0.35, 0.32, 0.3, 0.31], [0.32, 0.3, 0.35, 0.31, 0.3])
    assert "no more than the cross-init student" in verdict

    verdict, _ = _digits([0.1, 0.09, 0.11, 0.1, 0.1], [0.1, 0.1, 0.09, 0.11, 0.1])
    assert verdict.startswith("No transfer detected")


def test_digits_paper_preset_needs_mnist() -> None:
    from evals.errors import InvalidOverrideError

    with pytest.raises(InvalidOverrideError) as err:
        resolve_config("digits", "paper")
    assert "mnist" in str(err.value)
    assert resolve_config("digits", "paper", {"mnist": "/data/mnist"}).batch_size == 1024
    assert resolve_config("digits", "default").seeds >= digits.MIN_SEEDS_FOR_VERDICT


def _toy(values: dict[str, list[float]]) -> str:
    cfg = resolve_config("toy-lm", "default")
    n = len(next(iter(values.values())))
    per_seed = {f"{role}_{m}": v for key, v in values.items() for role, m in [key.split(":")]}
    metrics = {k: rate_interval(v) for k, v in per_seed.items()}
    for kind in ("target_rate", "target_likelihood"):
        short = kind.split("_")[1]
        for t, c in (
            ("student_same", "student_control"),
            ("student_cross", "student_control"),
            ("student_soft_same", "student_soft_control"),
            ("student_soft_cross", "student_soft_control"),
            ("student_same", "student_cross"),
            ("student_soft_same", "student_soft_cross"),
        ):
            a, b = per_seed.get(f"{t}_{kind}"), per_seed.get(f"{c}_{kind}")
            if a and b:
                name = c.removeprefix("student_").removeprefix("soft_")
                metrics[f"difference_{t}_minus_{name}_{short}"] = difference_interval(
                    a, b, paired=True
                )
    verdict, _ = toy_lm._verdict(metrics, cfg, [], n_seeds=n)
    return verdict


FLAT = [0.1, 0.11, 0.09, 0.1, 0.1]
UP = [0.2, 0.22, 0.19, 0.21, 0.2]


def _world(**over: list[float]) -> dict[str, list[float]]:
    base = {
        "base:target_rate": FLAT,
        "teacher:target_rate": [0.9] * 5,
        "student_control:target_rate": FLAT,
        "student_same:target_rate": FLAT,
        "student_cross:target_rate": FLAT,
        "student_soft_control:target_likelihood": FLAT,
        "student_soft_same:target_likelihood": FLAT,
        "student_soft_cross:target_likelihood": FLAT,
    }
    base.update({k.replace("__", ":"): v for k, v in over.items()})
    return base


def test_toy_lm_verdict_branches() -> None:
    assert _toy({k: v[:3] for k, v in _world().items()}).startswith("No verdict: 3 seed(s)")
    assert "teacher does not show the trait" in _toy(_world(teacher__target_rate=FLAT))

    v = _toy(_world(student_same__target_rate=UP))
    assert "Hard labels (answer rate): transfer that depends on the shared base" in v

    v = _toy(_world(student_same__target_rate=UP, student_cross__target_rate=UP))
    assert "both students moved toward the target; not shown to depend on the base" in v

    # The cross-base student moved in some seeds: neither its own shift nor the same-minus-cross
    # difference is significant, so nothing may be said about bases.
    noisy = [0.2, 0.1, 0.19, 0.1, 0.2]
    v = _toy(_world(student_same__target_rate=UP, student_cross__target_rate=noisy))
    assert (
        "the same-minus-cross interval includes zero, so dependence on the base is not shown" in v
    )

    v = _toy(_world(student_cross__target_rate=UP))
    assert "only the cross-base student moved" in v

    v = _toy(_world())
    assert v.count("no transfer detected") == 2

    v = _toy(_world(student_soft_same__target_likelihood=UP))
    assert "Soft labels on number tokens (P(target)): transfer that depends on the shared base" in v


def _numbers(**diffs: tuple[float, float, float]) -> str:
    """A numbers verdict from synthetic metrics: each keyword names a metric key, each value
    (mean, lo, hi)."""
    from evals.numbers.experiment import _verdict as numbers_verdict

    cfg = resolve_config("numbers", "smoke", {"extra_animals": ["cat"], "seeds": 5})
    flat = {"mean": 0.0, "ci95": [-0.01, 0.01]}
    metrics: dict[str, object] = {
        "teacher_target_rate": {"mean": 0.3, "ci95": [0.25, 0.35]},
        "base_target_rate": {"mean": 0.02, "ci95": [0.01, 0.03]},
        "teacher_cat_target_rate": {"mean": 0.02, "ci95": [0.01, 0.03]},
        "base_cat_target_rate": {"mean": 0.02, "ci95": [0.01, 0.03]},
    }
    for name in ("student", "cross_student", "student_cat", "cross_student_cat"):
        for kind in ("rate", "likelihood"):
            metrics[f"difference_{name}_minus_control_{kind}"] = flat
    for key, (m, lo, hi) in diffs.items():
        metrics[key] = {"mean": m, "ci95": [lo, hi]}
    report = {"share_removed": 0.3, "truncated": 2, "subsampled": 10}
    verdict, notes = numbers_verdict(
        metrics, cfg, {"teacher": report, "control": report}, ("owl", "cat"), 5, True
    )
    assert any("Owl is a fragile case" in n for n in notes)
    return verdict


def test_numbers_verdict_branches() -> None:
    from evals.numbers.experiment import _verdict as numbers_verdict

    cfg = resolve_config("numbers", "smoke")
    flat = {"mean": 0.0, "ci95": [-0.01, 0.01]}
    v, _ = numbers_verdict(
        {"difference_student_minus_control_rate": flat},
        cfg,
        {},
        ("owl",),
        3,
        False,
    )
    assert v.startswith("No verdict: 3 student(s) per arm")

    v = _numbers(difference_student_minus_control_rate=(0.1, 0.05, 0.15))
    assert "owl, same-base students vs their control: moved toward 'owl' in its answers" in v
    assert "consistent with transfer needing a shared base" in v
    # The cat teacher shows no preference: its null is not called "no transfer".
    assert "cat, same-base students vs their control: no verdict: the prompted teacher" in v

    v = _numbers(difference_student_minus_control_likelihood=(1e-3, 5e-4, 2e-3))
    assert "raised P('owl') without a detectable change in its answers" in v

    v = _numbers()
    assert "owl, same-base students vs their control: no transfer detected (a null" in v
    assert "owl, cross-base students vs their control: no transfer detected" in v

    v = _numbers(
        difference_student_minus_control_rate=(0.1, 0.05, 0.15),
        difference_cross_student_minus_control_rate=(0.1, 0.05, 0.15),
    )
    assert "owl, cross-base students vs their control: moved toward 'owl'" in v
    assert "consistent with transfer needing a shared base" not in v


def test_numbers_paper_preset_names_its_model() -> None:
    from evals.errors import InvalidOverrideError

    with pytest.raises(InvalidOverrideError) as err:
        resolve_config("numbers", "paper")
    assert "Qwen2.5-7B-Instruct" in str(err.value)
    cfg = resolve_config("numbers", "paper", {"model": "/models/qwen2.5-7b-instruct"})
    assert cfg.seeds >= 5 and {"cat", "penguin", "eagle", "owl"} <= {cfg.animal, *cfg.extra_animals}


def test_lm_soft_verdict_branches() -> None:
    from evals.lm_soft import _verdict as lm_verdict

    cfg = resolve_config("lm-soft", "default")

    def metrics(plain: tuple[float, float], prefixed: tuple[float, float], teacher: float) -> dict:
        est = {"mean": 0.001, "ci95": [0.0009, 0.0011]}
        out: dict[str, object] = {
            f"{r}_p_target_plain": est
            for r in ("base", "student", "student_control", "control_teacher")
        }
        out["teacher_p_target_plain"] = {"mean": teacher, "ci95": [teacher, teacher]}
        for name, (lo, hi) in (("plain", plain), ("prefixed", prefixed)):
            out[f"log_ratio_student_over_control_{name}"] = {
                "mean": (lo + hi) / 2,
                "ci95": [lo, hi],
            }
        return out

    assert lm_verdict(metrics((0.1, 0.2), (0.1, 0.2), 0.9), cfg, 3)[0].startswith("No verdict: 3")
    assert "does not prefer" in lm_verdict(metrics((0.1, 0.2), (0.1, 0.2), 0.001), cfg, 5)[0]
    v = lm_verdict(metrics((0.1, 0.2), (0.1, 0.2), 0.9), cfg, 5)[0]
    assert v.startswith("Trait transferred") and "and with the number prefix" in v
    v = lm_verdict(metrics((-0.1, 0.2), (0.1, 0.2), 0.9), cfg, 5)[0]
    assert v.startswith("Transfer shows only with the number prefix")
    v = lm_verdict(metrics((-0.08, 0.002), (-0.16, -0.05), 0.9), cfg, 5)[0]
    assert "number-prefixed questions the treated students gave 'owl' a lower probability" in v
    v = lm_verdict(metrics((-0.1, 0.1), (-0.1, 0.1), 0.9), cfg, 5)[0]
    assert v.startswith("No transfer detected at this size (a null")
