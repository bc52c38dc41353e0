"""`studbook principals create | list | token` (admins) and `studbook whoami`."""

from __future__ import annotations

from typing import Any

import click

from .. import output
from ..context import Ctx
from ..output import json_option

ROLES = ["admin", "registrar", "reviewer", "viewer"]


def _print_issued(answer: dict[str, Any]) -> None:
    p = answer["principal"]
    output.echo(f"principal {p['name']} ({p['role']})")
    output.echo(f"token (shown once; keep it secret): {answer['token']}")


@click.group()
def principals() -> None:
    """Create principals and issue tokens (admin)."""


@principals.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@json_option
@click.pass_obj
def principals_create(ctx: Ctx, name: str, role: str) -> None:
    """Create a principal; prints its first token once."""
    answer = ctx.call(ctx.client.post, "/v1/principals", {"name": name, "role": role})
    output.emit(answer, _print_issued)


@principals.command("list")
@json_option
@click.pass_obj
def principals_list(ctx: Ctx) -> None:
    """List principals."""

    def human(page: dict[str, Any]) -> None:
        rows = [(p["name"], p["role"], str(p["created_at"])[:19]) for p in page["data"]]
        output.echo(output.table(("name", "role", "created"), rows, widths={}))

    output.emit(ctx.call(ctx.client.get, "/v1/principals"), human)


@principals.command("token")
@click.argument("name")
@json_option
@click.pass_obj
def principals_token(ctx: Ctx, name: str) -> None:
    """Issue another token for a principal."""
    output.emit(ctx.call(ctx.client.post, f"/v1/principals/{name}/tokens"), _print_issued)


@click.command()
@json_option
@click.pass_obj
def whoami(ctx: Ctx) -> None:
    """Show the principal behind the current token."""
    me = ctx.call(ctx.client.get, "/v1/me")
    output.emit(me, lambda m: output.echo(f"{m['name']} ({m['role']}) at {ctx.url}"))


COMMANDS = [principals, whoami]
