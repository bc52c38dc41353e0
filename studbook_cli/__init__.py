"""The `studbook` command line: a client of Studbook's HTTP API.

Nothing here imports `registry` (a test holds it to that): every command talks to a server
through `studbook_cli.client.Client`, and signs locally with `lineage`. Server-side commands
(`serve`, `migrate`, `worker`, `risk-rebuild`, `log audit`) live in `registry.commands` and join
the `studbook` group through the `studbook.commands` entry-point group, loaded only when one of
them is run, so the client never imports the server and `studbook serve` still works.

Layout:

- `main.py`: the root group, global options (`--url`, `--token`, `--json`) and the exit-code
  mapping (`output.ExitCode`, one table for every command).
- `client.py`: the HTTP client; refusals come back as `ApiError(status, detail)`.
- `config.py`: `STUDBOOK_*` settings the client reads (URL, or host and port; token; key file).
- `context.py`: `Ctx`, the object every command receives: the lazily built client, `call()`
  (turns an `ApiError` into a message and the documented exit code), `signer()` and `resolve()`.
- `output.py`: human output by default, `--json` for machines, tables that never lose a
  version, progress bars on stderr, `fail()`.
- `commands/`: one module per command group.

Adding a command group: write `studbook_cli/commands/<group>.py` that defines its click
commands or group with `@click.pass_obj` (the `Ctx`), decorates each command with
`@output.json_option` so `--json` works, prints through `output.emit`/`output.echo`, fails through
`ctx.call`/`output.fail` with an `ExitCode`, and ends with `COMMANDS = [...]` listing what to add
to `studbook`. `main.py` discovers every module in `commands/` by itself; import anything heavy
(torch, `evals`) inside the command function. Server-side commands go in `registry/commands.py`
and are listed under `[project.entry-points."studbook.commands"]` in `pyproject.toml` (a name
`group.command` adds a subcommand to a client group, e.g. `log.audit`).
"""

__all__: list[str] = []
