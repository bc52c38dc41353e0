"""Plots a reviewer would put in a report: bars with 95% intervals and the individual runs.

matplotlib is imported inside the functions with the Agg backend forced, so plotting works on
servers and in job workers with no display, and importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .stats import Estimate


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def bar_chart(
    path: Path,
    bars: Sequence[tuple[str, Estimate, Sequence[float]]],
    *,
    title: str,
    ylabel: str,
    chance: float | None = None,
    percent: bool = False,
    colors: Sequence[str] | None = None,
) -> Path:
    """Bars for means, error bars for 95% intervals, dots for the single runs behind them.

    Args:
        path: PNG to write.
        bars: ``(label, estimate, per-run values)``; per-run values may be empty.
        title: figure title.
        ylabel: y-axis label.
        chance: draw a dashed reference line here (e.g. 10% for digits).
        percent: format the y axis as percentages.
        colors: one colour per bar; a default palette otherwise.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    palette = colors or [
        "#4c72b0",
        "#dd8452",
        "#c44e52",
        "#55a868",
        "#8172b3",
        "#937860",
        "#da8bc3",
        "#8c8c8c",
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(bars) + 2), 4.5))
    for i, (_label, est, runs) in enumerate(bars):
        color = palette[i % len(palette)]
        ax.bar(i, est["mean"], color=color, alpha=0.8, label=None)
        lo, hi = est["ci95"]
        if lo is not None and hi is not None:
            ax.errorbar(
                i,
                est["mean"],
                yerr=[[est["mean"] - lo], [hi - est["mean"]]],
                color="black",
                capsize=5,
                linewidth=1.2,
            )
        if runs:
            offsets = [
                (j - (len(runs) - 1) / 2) * min(0.5 / max(len(runs), 1), 0.05)
                for j in range(len(runs))
            ]
            ax.scatter([i + o for o in offsets], runs, s=10, color="black", alpha=0.5, zorder=3)
    if chance is not None:
        ax.axhline(chance, linestyle="--", color="grey", linewidth=1)
        ax.text(len(bars) - 0.5, chance, " chance", va="bottom", ha="right", color="grey")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if percent:
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def paired_panels(
    path: Path,
    panels: Sequence[tuple[str, Sequence[tuple[str, Estimate, Sequence[float]]], str]],
    *,
    title: str,
) -> Path:
    """Side-by-side bar panels sharing labels (e.g. target rate and target likelihood).

    Args:
        path: PNG to write.
        panels: ``(y label, bars, scale)`` per panel, scale ``"percent"``, ``"linear"`` or
            ``"log"`` (for likelihoods that differ by orders of magnitude between models);
            bars as in :func:`bar_chart`.
        title: figure title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    palette = ["#8c8c8c", "#4c72b0", "#c44e52", "#dd8452", "#55a868", "#8172b3", "#937860"]
    n = max(len(p[1]) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 0.8 * n + 1.5) * len(panels), 4.5))
    if len(panels) == 1:
        axes = [axes]
    for ax, (ylabel, bars, scale) in zip(axes, panels, strict=True):
        for i, (_label, est, runs) in enumerate(bars):
            ax.bar(i, est["mean"], color=palette[i % len(palette)], alpha=0.85)
            lo, hi = est["ci95"]
            if lo is not None and hi is not None:
                ax.errorbar(
                    i,
                    est["mean"],
                    yerr=[[max(est["mean"] - lo, 0)], [max(hi - est["mean"], 0)]],
                    color="black",
                    capsize=5,
                    linewidth=1.2,
                )
            if runs:
                ax.scatter([i] * len(runs), runs, s=10, color="black", alpha=0.5, zorder=3)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[0] for b in bars], fontsize=8)
        ax.set_ylabel(ylabel)
        if scale == "percent":
            from matplotlib.ticker import PercentFormatter

            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        elif scale == "log":
            ax.set_yscale("log")
        else:
            ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
