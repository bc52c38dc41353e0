"""How the command line speaks: exit codes, human text or JSON, tables, progress bars.

One exit-code table for every command, so a pipeline can gate on any of them without reading
text:

| code | meaning |
|---|---|
| 0 | ok |
| 1 | warn: `check` found overt content risk only |
| 2 | block: `check` would block; a verification, audit or watched eval run failed |
| 3 | usage: a bad option or argument, a missing key file, an unreadable input file |
| 4 | authentication or permission: no token, a bad token, a role that may not do this (401, 403) |
| 5 | not found: no such artifact, attestation, run or key (404) |
| 6 | the server cannot be reached |
| 7 | refused: the server refused the request as it stands (409 conflict, 400, 413, 422) |
| 8 | server error (5xx) |

Human output goes to stdout, diagnostics and progress to stderr; `--json` prints the API's
answer (or the command's result) as JSON on stdout instead, and nothing else there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    """The documented exit codes (see the module docstring)."""

    OK = 0
    WARN = 1
    BLOCK = 2
    USAGE = 3
    AUTH = 4
    NOT_FOUND = 5
    UNREACHABLE = 6
    REFUSED = 7
    SERVER = 8


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code for an HTTP refusal (`status` 0: the server could not be reached)."""
    if status == 0:
        return ExitCode.UNREACHABLE
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status >= 500:
        return ExitCode.SERVER
    return ExitCode.REFUSED


def fail(message: str, code: ExitCode) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    click.echo(f"error: {message}", err=True)
    sys.exit(int(code))


def echo(text: str = "") -> None:
    """A line of human output (suppressed under `--json`)."""
    if not wants_json():
        click.echo(text)


def note(text: str) -> None:
    """A diagnostic on stderr, in both modes."""
    click.echo(text, err=True)


def print_json(obj: Any) -> None:
    """Pretty JSON on stdout, non-ASCII kept readable."""
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def wants_json() -> bool:
    """Whether the current command runs with `--json`."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    root = ctx.find_root()
    return bool(getattr(root.obj, "json", False))


def emit(data: Any, human: Callable[[Any], None]) -> None:
    """Print `data` as JSON under `--json`, else through `human(data)`."""
    if wants_json():
        print_json(data)
    else:
        human(data)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and ctx.find_root().obj is not None:
        ctx.find_root().obj.json = True


def json_option(fn: F) -> F:
    """Add `--json` to a command (the root group's `--json` works everywhere too)."""
    return click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Print the answer as JSON on stdout.",
    )(fn)


# ----------------------------------------------------------------------------- references


def short_digest(digest: str) -> str:
    """The 12 hex characters tables show; any unique prefix this long works as a reference."""
    return digest.removeprefix("sha256:")[:12]


def fit_ref(ref: str, width: int) -> str:
    """`ref` in at most `width` characters, never losing its `@version`.

    A long name loses characters from its middle, marked with an ellipsis; the version is kept
    whole even if that overruns `width`, because a reference without its version names a
    different thing.
    """
    if len(ref) <= width:
        return ref
    name, at, version = ref.rpartition("@")
    if not at:
        name, version = ref, ""
    tail = at + version
    room = width - len(tail) - 1  # one for the ellipsis
    if room < 2:
        return (name[:1] + "…" if name else "") + tail
    head = (room + 1) // 2
    return name[:head] + "…" + name[len(name) - (room - head) :] + tail


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, widths: dict[int, int]) -> str:
    """A plain left-aligned table; column `i` is fitted to `widths[i]` by `fit_ref`."""
    cooked = [[fit_ref(c, widths[i]) if i in widths else c for i, c in enumerate(r)] for r in rows]
    cols = [max([len(h), *(len(r[i]) for r in cooked)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(cols[i]) for i, h in enumerate(headers)).rstrip()]
    for r in cooked:
        lines.append("  ".join(c.ljust(cols[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- progress


def show_progress(forced: bool | None) -> bool:
    """Progress bars go to stderr when it is a terminal, or when `--progress` asks for them."""
    if forced is not None:
        return forced
    return sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields `advance(n_bytes)`. A no-op when disabled."""
    if not enabled:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True, force_terminal=True)  # asked for (--progress) or a terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
