"""The `studbook` root group: global options, command discovery, and the exit-code mapping.

Client commands come from the modules of `studbook_cli.commands` (each lists its `COMMANDS`).
Server-side commands come from the `studbook.commands` entry-point group and are imported only
when run: `studbook serve` loads `registry.commands`, `studbook show` never does. An entry point
named `group.command` (e.g. `log.audit`) adds a subcommand to a client group.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

from . import commands as commands_pkg
from .context import Ctx
from .groups import LazyGroup
from .output import ExitCode


class RootGroup(LazyGroup):
    """The root: maps click's own failures onto the documented exit codes."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:  # bad options, arguments, unknown commands
            exc.show()
            sys.exit(int(ExitCode.USAGE))
        except click.ClickException as exc:  # unreadable files, bad settings
            exc.show()
            sys.exit(int(ExitCode.USAGE))
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else int(ExitCode.OK))


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="STUDBOOK_URL", default=None, help="Server URL (STUDBOOK_URL).")
@click.option("--token", envvar="STUDBOOK_TOKEN", default=None, help="API token (STUDBOOK_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print answers as JSON (any command).")
@click.version_option("0.1.0", prog_name="studbook")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, as_json: bool) -> None:
    """Studbook: signed model lineage, trait-transfer risk, and a transparency log.

    Exit codes: 0 ok, 1 warn, 2 block, 3 usage, 4 authentication or permission, 5 not found,
    6 server unreachable, 7 refused (conflict or bad input), 8 server error.
    """
    ctx.obj = Ctx(url, token, as_json)


def _load_client_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_load_client_commands()


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="studbook")


if __name__ == "__main__":
    main()
