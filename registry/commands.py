"""Server-side commands: `studbook serve | migrate | worker | risk-rebuild | log audit`.

These run where the database is, so they belong to the server, not to the command-line client
(`studbook_cli`, which never imports `registry`). They join the `studbook` group through the
`studbook.commands` entry points in `pyproject.toml` and are imported only when run.
`python -m registry.commands worker ...` runs them without the client installed (the local eval
worker is started that way).

Exit codes follow the command line's table (`studbook_cli.output`): 0 ok, 2 a check found
problems (audit findings, marks that differ), 3 usage (a busy port, a bad option).
"""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_BLOCK = 2  # the check ran and the record does not hold
EXIT_USAGE = 3  # change the command or the configuration and retry


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before anything is written.

    Binds with SO_REUSEADDR, as uvicorn does, so a socket left in TIME_WAIT by a server that just
    stopped does not count as busy.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        _fail(f"cannot bind to {host!r}: {exc}; set --host or STUDBOOK_HOST", EXIT_USAGE)
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _fail(
                    f"port {port} on {host} is already in use (is another `studbook serve` "
                    f"running?); choose another with `studbook serve --port N` or "
                    f"STUDBOOK_PORT=N, and point the CLI at it with the same STUDBOOK_PORT "
                    f"(or STUDBOOK_URL)",
                    EXIT_USAGE,
                )
            _fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_USAGE)


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


@click.command()
@click.option("--host", default=None, help="Bind address (default STUDBOOK_HOST or 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port (default STUDBOOK_PORT or 8000).",
)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Apply migrations, create the first admin if needed, and serve the API."""
    import uvicorn

    from .db import make_engine, session_scope
    from .evals.worker import start_local_worker
    from .log.service import LogKeyError
    from .principals.service import bootstrap_admin
    from .settings import get_settings
    from .startup import DataDirError, prepare

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    _check_port_free(bind_host, bind_port)  # before the database or a token exists
    url = settings.resolved_database_url
    try:  # a data folder others can read is refused, with the chmod that fixes it
        prepare(settings, private_umask=True)
    except (DataDirError, LogKeyError) as exc:
        _fail(exc.message, EXIT_USAGE)
    engine = make_engine(url)
    with session_scope(engine) as session:
        token = bootstrap_admin(session, settings.admin_token_file)
    engine.dispose()
    where = settings.admin_token_file.resolve()
    if token:
        click.echo(f"First run: admin API token written to {where} (mode 0600).")
    elif where.exists():
        click.echo(f"Admin API token: {where}")
    click.echo(f"Database: {_redact(url)}")
    click.echo(f"API: http://{bind_host}:{bind_port}/v1  docs: http://{bind_host}:{bind_port}/docs")
    local_worker = start_local_worker(settings)  # SQLite: evals run beside, never in, the API
    try:
        uvicorn.run(
            "registry.app:serve_app",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level="info",
            access_log=False,
        )
    finally:
        if local_worker is not None:
            local_worker.stop()


@click.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""
    from .settings import get_settings
    from .startup import DataDirError
    from .startup import migrate as migrate_database

    try:  # exports a log key older versions kept in the database to its file first
        migrate_database(get_settings())
    except DataDirError as exc:
        _fail(exc.message, EXIT_USAGE)
    click.echo("database is at the latest revision")


@click.command()
@click.option("--concurrency", type=click.IntRange(1), default=1, show_default=True)
@click.option("--once", is_flag=True, help="Stop when the queue is empty.")
@click.option("--parent-pid", type=int, default=None, hidden=True)
def worker(concurrency: int, once: bool, parent_pid: int | None) -> None:
    """Run queued evals (procrastinate on PostgreSQL, the runs table on SQLite)."""
    import logging

    from .evals.worker import run_worker
    from .settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(get_settings(), concurrency=concurrency, parent_pid=parent_pid, once=once)


@click.command("risk-rebuild")
@click.option("--check", "check_only", is_flag=True, help="Report differences, change nothing.")
def risk_rebuild(check_only: bool) -> None:
    """Recompute every at-risk mark from the stored statements (runs against the database).

    With --check, exits 2 when the stored marks differ from a rebuild.
    """
    from sqlmodel import Session

    from .db import begin_write, make_engine
    from .risk.service import rebuild_all
    from .settings import get_settings

    engine = make_engine(get_settings().resolved_database_url)
    with Session(engine) as session:
        begin_write(session)  # reads the statements it rewrites marks from: under the lock
        changed = rebuild_all(session)
        if check_only:
            session.rollback()
            click.echo(f"{changed} marks differ from a rebuild from the statements")
            sys.exit(EXIT_BLOCK if changed else 0)
        session.commit()
    click.echo(f"rebuilt: {changed} marks changed")


@click.command("audit")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Saved checkpoint the log must be consistent with (repeatable).",
)
@click.option("--vkey", envvar="STUDBOOK_LOG_VKEY", help="Log key; default: the configured one.")
@click.option("--no-rebuild", is_flag=True, help="Skip re-verifying signatures and the rebuild.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--verbose", is_flag=True, help="Also show the database layer's own messages.")
def log_audit(
    checkpoint_files: tuple[Path, ...],
    vkey: str | None,
    no_rebuild: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Re-read every entry, recompute the tree, re-verify every signature and rebuild the
    derived tables; report every discrepancy (exit 2 when there is one). Runs against the
    database (STUDBOOK_DATABASE_URL), not through the API."""
    import json
    import logging

    from sqlmodel import Session

    from .app import create_app
    from .db import make_engine
    from .log.audit import audit
    from .log.service import stored_vkey
    from .settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        # Install every domain exactly as a server does, so the replay applies each envelope
        # with the same predicate handlers and hooks that accepted it.
        create_app(settings, engine=engine)
        if not verbose:
            # The replay migrates a scratch database; Alembic's INFO lines say nothing here.
            logging.getLogger("alembic").setLevel(logging.WARNING)
        if vkey is None:
            with Session(engine) as session:  # the public key: auditors need no secret
                vkey = stored_vkey(session)
        elif Path(vkey).is_file():
            vkey = Path(vkey).read_text().strip()
        if checkpoint_files and vkey is None:
            _fail(
                "the log has no key yet, and no --vkey was given to check checkpoints with",
                EXIT_USAGE,
            )
        report = audit(
            engine,
            vkey=vkey,
            checkpoints=[p.read_text() for p in checkpoint_files],
            rebuild=not no_rebuild,
            progress=lambda stage, n: click.echo(f"  {stage}: {n}", err=True),
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([_finding_json(f) for f in report.findings], indent=2))
    else:
        _print_report(report)
    sys.exit(0 if report.ok else EXIT_BLOCK)


def _finding_json(finding: Any) -> dict[str, Any]:
    return {
        "kind": str(finding.kind),
        "where": finding.where,
        "message": finding.message,
        "log_index": finding.log_index,
        "attestation_id": finding.attestation_id,
    }


def _print_report(report: Any) -> None:
    from lineage.logleaf import b64

    click.echo(f"log size {report.tree_size}, entries read {report.entries}")
    click.echo(f"root recomputed from the entries: {b64(report.root_hash)}")
    if report.stored_root != report.root_hash:
        click.echo(f"root folded from the stored nodes: {b64(report.stored_root)}")
    for cp in report.checkpoints:
        click.echo(f"consistent with the saved checkpoint of size {cp.size}")
    if report.replay is not None:
        click.echo(
            f"replayed {report.replay.replayed} attestations, {report.replay.applied} applied; "
            + ", ".join(
                f"{t}: {s} stored / {r} rebuilt" for t, (s, r) in report.replay.tables.items()
            )
        )
    if report.ok:
        click.echo("audit passed: no findings")
        return
    click.echo(f"audit FAILED: {len(report.findings)} findings")
    for finding in report.findings:
        click.echo(f"  {finding}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def server_cli() -> None:
    """Studbook's server-side commands (also available as `studbook <command>`)."""


for _command in (serve, migrate, worker, risk_rebuild):
    server_cli.add_command(_command)
server_cli.add_command(log_audit, "log-audit")


if __name__ == "__main__":
    server_cli(prog_name="python -m registry.commands")
