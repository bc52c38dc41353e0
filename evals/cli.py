"""``studbook eval``: run the trait-transfer experiments from a terminal.

The group is a plain ``click.Group`` named ``eval`` so the top-level CLI can attach it with
``cli.add_command(eval_cli)``; ``python -m evals.cli run digits`` works on its own too.
Long stages draw tqdm bars on stderr; the final summary is a rich table of every metric with its
95% interval, followed by the verdict, so the figures can be read without opening the JSON.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .errors import EvalError
from .presets import PRESETS


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.1%}" if percent else f"{value:.4g}"


def _print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    table = Table(
        title=f"{result['experiment']} ({result['preset']}, seeds: {len(result['seeds'])})"
    )
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    for name, est in result["metrics"].items():
        percent = not name.endswith("likelihood") and "likelihood" not in name
        lo, hi = est["ci95"]
        ci = "n/a" if lo is None else f"{_fmt(lo, percent)} .. {_fmt(hi, percent)}"
        table.add_row(name, _fmt(est["mean"], percent), ci)
    console.print(table)
    console.print(f"[bold]verdict:[/bold] {result['verdict']}")
    for note in result.get("notes", []):
        console.print(f"  - {note}")
    console.print(f"run directory: {result['out_dir']}")


@click.group(name="eval")
def eval_cli() -> None:
    """Trait-transfer ("subliminal learning") evals."""


@eval_cli.command("run")
@click.argument("experiment", type=click.Choice(sorted(PRESETS)))
@click.option(
    "--preset",
    default="default",
    show_default=True,
    type=click.Choice(["smoke", "default", "cpu", "paper"]),
    help="Size of the run: smoke (seconds), default, cpu (~30 min), paper (GPU).",
)
@click.option("--animal", default=None, help="Target animal of the teacher (numbers, toy-lm).")
@click.option(
    "--model", default=None, help="Base model: a safetensors directory or a .gguf file (numbers)."
)
@click.option("--cross-model", default=None, help="Second base for a cross-base student (numbers).")
@click.option("--seeds", type=int, default=None, help="Number of seeds (replicate runs).")
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Run directory (created); default runs/<experiment>-<time>.",
)
@click.option(
    "--mnist",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Directory of MNIST IDX files to use instead of the digits data (digits).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=JSON",
    help="Any other setting, e.g. --set generations=500 (value parsed as JSON).",
)
def run_cmd(
    experiment: str,
    preset: str,
    animal: str | None,
    model: str | None,
    cross_model: str | None,
    seeds: int | None,
    out_dir: str | None,
    mnist: str | None,
    settings: tuple[str, ...],
) -> None:
    """Run EXPERIMENT (digits, numbers or toy-lm) and write its run directory."""
    import json

    from .runner import run_experiment

    overrides: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw  # a bare word is a string setting
    named = {
        "animal": animal,
        "model": model,
        "cross_model": cross_model,
        "seeds": seeds,
        "mnist": mnist,
    }
    for key, value in named.items():
        if value is not None:
            overrides[key] = value
    try:
        result = run_experiment(
            experiment,
            preset,
            overrides,
            out_dir,
            bars=True,
            log=lambda msg: click.echo(msg, err=True),
        )
    except EvalError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_summary(result)


def main() -> None:
    """Entry point for ``python -m evals.cli``."""
    eval_cli(prog_name="studbook eval")


if __name__ == "__main__":
    sys.exit(main())
