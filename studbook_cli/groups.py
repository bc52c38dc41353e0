"""`LazyGroup`: a click group that also offers the server's commands, imported only when run.

Server-side commands are declared in the `studbook.commands` entry-point group (see
`pyproject.toml`); an entry point named `serve` joins the root group, `log.audit` the `log`
group. Loading one imports `registry`; listing them (`--help`) does not.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

import click

ENTRY_POINT_GROUP = "studbook.commands"


@cache
def _server_commands() -> dict[str, EntryPoint]:
    """Entry points of server-side commands, by dotted name (`serve`, `log.audit`)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


class LazyGroup(click.Group):
    """A group that also offers the entry-point commands under its dotted path."""

    def _path(self, ctx: click.Context) -> str:
        names = []
        while ctx.parent is not None:
            names.append(ctx.info_name or "")
            ctx = ctx.parent
        return ".".join(reversed(names))

    def _lazy(self, ctx: click.Context) -> dict[str, EntryPoint]:
        prefix = self._path(ctx)
        out = {}
        for name, ep in _server_commands().items():
            head, _, tail = name.rpartition(".")
            if head == prefix and tail not in self.commands:
                out[tail] = ep
        return out

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._lazy(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands.get(cmd_name)
        if found is not None:
            return found
        ep = self._lazy(ctx).get(cmd_name)
        if ep is None:
            return None
        try:
            command = ep.load()
        except ImportError as exc:  # the server's dependencies are not installed here
            raise click.ClickException(
                f"`{cmd_name}` runs the server ({ep.value}), which cannot be imported here: {exc}"
            ) from exc
        if not isinstance(command, click.Command):
            raise click.ClickException(f"entry point {ep.name} = {ep.value} is not a command")
        return command
