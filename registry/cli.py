"""The `studbook` command line: the server, and a client for everything the API does.

Client commands read `STUDBOOK_URL`, `STUDBOOK_TOKEN` and `STUDBOOK_KEY_FILE` (or flags). When no
token is given and the first-run admin token file exists in the data folder, it is used, so the
README tour works on a fresh checkout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from lineage import digests, dsse
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation

from .client import ApiError, Client
from .settings import Settings, get_settings


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Ctx:
    """Lazily built settings and client shared by subcommands."""

    def __init__(self, url: str | None, token: str | None) -> None:
        self._url = url
        self._token = token
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        return get_settings()

    def token(self) -> str | None:
        if self._token or self.settings.token:
            return self._token or self.settings.token
        path = self.settings.admin_token_file
        return path.read_text().strip() if path.exists() else None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self._url or self.settings.url, self.token())
        return self._client


pass_ctx = click.make_pass_decorator(Ctx)


def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except ApiError as exc:
        _fail(str(exc), 2 if exc.status == 0 else 1)


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="STUDBOOK_URL", default=None, help="Server URL.")
@click.option("--token", envvar="STUDBOOK_TOKEN", default=None, help="API token.")
@click.version_option("0.1.0", prog_name="studbook")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Studbook: signed model lineage, trait-transfer risk, and a transparency log."""
    ctx.obj = Ctx(url, token)


# ----------------------------------------------------------------------------- server


@cli.command()
@click.option("--host", default=None, help="Bind address (default STUDBOOK_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default STUDBOOK_PORT or 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Apply migrations, create the first admin if needed, and serve the API."""
    import uvicorn

    from .db import make_engine, session_scope, upgrade
    from .principals.service import bootstrap_admin

    settings = get_settings()
    url = settings.resolved_database_url
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        token = bootstrap_admin(session, settings.admin_token_file)
    engine.dispose()
    where = settings.admin_token_file.resolve()
    if token:
        click.echo(f"First run: admin API token written to {where} (mode 0600).")
    elif where.exists():
        click.echo(f"Admin API token: {where}")
    bind_host, bind_port = host or settings.host, port or settings.port
    click.echo(f"Database: {_redact(url)}")
    click.echo(f"API: http://{bind_host}:{bind_port}/v1  docs: http://{bind_host}:{bind_port}/docs")
    from .evals.worker import start_local_worker

    local_worker = start_local_worker(settings)  # SQLite: evals run beside, never in, the API
    try:
        uvicorn.run(
            "registry.app:create_app",
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


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""
    from .db import upgrade

    upgrade(get_settings().resolved_database_url)
    click.echo("database is at the latest revision")


# ----------------------------------------------------------------------------- keys


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Private key file.")
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
def keygen(out: Path | None, force: bool) -> None:
    """Create an Ed25519 signing key (PEM, mode 0600) and print its public key."""
    path = out or get_settings().default_key_file
    if path.exists() and not force:
        _fail(f"{path} exists; use --force to replace it")
    key = dsse.generate_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(dsse.private_key_pem(key))
    click.echo(f"private key: {path}")
    click.echo(f"keyid:       {dsse.keyid(key.public_key())}")
    click.echo(f"public key:  {dsse.public_key_b64(key.public_key())}")
    click.echo("register it with: studbook keys register")


def _load_signer(key_file: Path | None) -> dsse.Signer:
    path = key_file or get_settings().default_key_file
    if not path.exists():
        _fail(f"no signing key at {path}; create one with `studbook keygen`")
    return dsse.Signer(dsse.load_private_key(path.read_bytes()))


@cli.group()
def keys() -> None:
    """Register, list and revoke signing keys."""


@keys.command("register")
@click.option("--key-file", type=click.Path(path_type=Path), envvar="STUDBOOK_KEY_FILE")
@click.option("--public-key", default=None, help="Base64 raw public key instead of a key file.")
@click.option("--principal", default=None, help="Owner (admins only).")
@pass_ctx
def keys_register(
    ctx: Ctx, key_file: Path | None, public_key: str | None, principal: str | None
) -> None:
    """Register the public half of your signing key."""
    if public_key is None:
        public_key = dsse.public_key_b64(_load_signer(key_file).public_key)
    _print_json(
        _call(ctx.client.post, "/v1/keys", {"public_key": public_key, "principal": principal})
    )


@keys.command("list")
@click.option("--principal", default=None)
@pass_ctx
def keys_list(ctx: Ctx, principal: str | None) -> None:
    """List registered keys."""
    _print_json(_call(ctx.client.get, "/v1/keys", principal=principal))


@keys.command("revoke")
@click.argument("keyid")
@pass_ctx
def keys_revoke(ctx: Ctx, keyid: str) -> None:
    """Revoke a key: it can sign nothing new."""
    _print_json(_call(ctx.client.post, f"/v1/keys/{keyid}/revoke"))


# ----------------------------------------------------------------------------- principals


@cli.group()
def principals() -> None:
    """Create principals and issue tokens (admin)."""


@principals.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["admin", "registrar", "reviewer", "viewer"]), required=True
)
@pass_ctx
def principals_create(ctx: Ctx, name: str, role: str) -> None:
    """Create a principal; prints its first token once."""
    _print_json(_call(ctx.client.post, "/v1/principals", {"name": name, "role": role}))


@principals.command("list")
@pass_ctx
def principals_list(ctx: Ctx) -> None:
    """List principals."""
    _print_json(_call(ctx.client.get, "/v1/principals"))


@principals.command("token")
@click.argument("name")
@pass_ctx
def principals_token(ctx: Ctx, name: str) -> None:
    """Issue another token for a principal."""
    _print_json(_call(ctx.client.post, f"/v1/principals/{name}/tokens"))


@cli.command()
@pass_ctx
def whoami(ctx: Ctx) -> None:
    """Show the principal behind the current token."""
    _print_json(_call(ctx.client.get, "/v1/me"))


# ----------------------------------------------------------------------------- registration


def _parse_parent(ctx: Ctx, spec: str) -> ParentLink:
    relation, sep, ref = spec.partition("=")
    if not sep or not ref:
        _fail(f"--parent must be RELATION=REF, got {spec!r}")
    try:
        rel = Relation(relation)
    except ValueError:
        _fail(f"unknown relation {relation!r}; one of: {', '.join(r.value for r in Relation)}")
    art = _call(ctx.client.artifact, ref)
    return ParentLink(rel, art["digest"])


@cli.command()
@click.argument("kind", type=click.Choice(["model", "dataset"]))
@click.argument("path", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--name", required=True, help="Artifact name, e.g. acme/owl-teacher.")
@click.option("--version", "version", required=True, help="Artifact version, e.g. 1.")
@click.option("--parent", "parents", multiple=True, help="RELATION=REF, repeatable.")
@click.option("--opaque", default=None, help="Provider identifier of an API-only model (no PATH).")
@click.option("--meta", multiple=True, help="KEY=VALUE metadata, repeatable.")
@click.option("--key-file", type=click.Path(path_type=Path), envvar="STUDBOOK_KEY_FILE")
@pass_ctx
def register(
    ctx: Ctx,
    kind: str,
    path: Path | None,
    name: str,
    version: str,
    parents: tuple[str, ...],
    opaque: str | None,
    meta: tuple[str, ...],
    key_file: Path | None,
) -> None:
    """Digest PATH, sign a registration with your key, and submit it."""
    signer = _load_signer(key_file)
    metadata: dict[str, Any] = {}
    for item in meta:
        k, sep, v = item.partition("=")
        if not sep:
            _fail(f"--meta must be KEY=VALUE, got {item!r}")
        metadata[k] = v
    if opaque is not None:
        if path is not None:
            _fail("give either PATH or --opaque, not both")
        digest = digests.opaque_digest(opaque)
        metadata["identifier"] = opaque
    elif path is None:
        _fail("PATH is required (or --opaque IDENTIFIER for an API-only model)")
    else:
        m = _hash_with_progress(path)
        digest = m.digest
        metadata.setdefault("files", len(m.files))
        metadata.setdefault("size", m.total_size)
    links = tuple(_parse_parent(ctx, p) for p in parents)
    reg = Registration(
        ArtifactRef(ArtifactKind(kind), name, version, digest, opaque is not None), links, metadata
    )
    envelope = sign_statement(registration_statement(reg), signer)
    _print_json(_call(ctx.client.post, "/v1/attestations", envelope.to_json()))


def _hash_with_progress(path: Path) -> digests.Manifest:
    from rich.progress import Progress

    total = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    with Progress(transient=True, disable=total < (64 << 20)) as bar:
        task = bar.add_task(f"hashing {path.name}", total=total)
        return digests.manifest(path, progress=lambda n: bar.advance(task, n))


# ----------------------------------------------------------------------------- queries


@cli.command()
@click.argument("ref")
@pass_ctx
def show(ctx: Ctx, ref: str) -> None:
    """Show an artifact by id, sha256:<digest> or name@version."""
    _print_json(_call(ctx.client.artifact, ref))


@cli.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", default=True, help="Ancestors (default).")
@click.option("--down", "direction", flag_value="down", help="Descendants.")
@click.option("--depth", type=int, default=10, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot"]), default="table")
@pass_ctx
def lineage_cmd(ctx: Ctx, ref: str, direction: str, depth: int, fmt: str) -> None:
    """Show what REF comes from (--up) or what comes from it (--down)."""
    data = _call(ctx.client.artifact, ref, "lineage", direction=direction, depth=depth)
    if fmt == "json":
        _print_json(data)
    elif fmt == "dot":
        click.echo(render_dot(data))
    else:
        click.echo(render_table(data))


def _node_marks(node: dict[str, Any]) -> str:
    marks = []
    if node.get("flags"):
        marks.append("FLAGGED " + ",".join(sorted({f["trait"] for f in node["flags"]})))
    if node.get("at_risk"):
        marks.append("AT RISK " + ",".join(sorted({m["trait"] for m in node["at_risk"]})))
    return "; ".join(marks)


def render_table(data: dict[str, Any]) -> str:
    """Lineage as an indented table: depth, kind, ref, digest prefix, marks."""
    rel_to: dict[str, list[str]] = {}
    for e in data["edges"]:
        far = e["parent"] if data["direction"] == "up" else e["child"]
        rel_to.setdefault(far, []).append(e["relation"])
    lines = [f"{'depth':>5}  {'kind':<7}  {'artifact':<40}  {'digest':<14}  via"]
    for n in data["nodes"]:
        a = n["artifact"]
        via = ",".join(sorted(set(rel_to.get(a["digest"], []))))
        marks = _node_marks(n)
        lines.append(
            f"{n['depth']:>5}  {a['kind']:<7}  {('  ' * n['depth'] + a['ref'])[:40]:<40}  "
            f"{a['digest'][:12]:<14}  {via}{'  [' + marks + ']' if marks else ''}"
        )
    if data.get("truncated"):
        lines.append("... more beyond this depth (use --depth)")
    return "\n".join(lines)


def render_dot(data: dict[str, Any]) -> str:
    """Lineage as Graphviz DOT; flagged nodes red, at-risk nodes orange."""
    out = ["digraph lineage {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
    for n in data["nodes"]:
        a = n["artifact"]
        shape = "box" if a["kind"] == "model" else "cylinder"
        attrs = [f'label="{a["ref"]}"', f"shape={shape}"]
        if n.get("flags"):
            attrs += ["style=filled", 'fillcolor="#f28b82"']
        elif n.get("at_risk"):
            attrs += ["style=filled", 'fillcolor="#fbbc04"']
        if a["digest"] == data["root"]:
            attrs.append("penwidth=2")
        out.append(f'  "{a["digest"][:16]}" [{", ".join(attrs)}];')
    for e in data["edges"]:
        out.append(f'  "{e["child"][:16]}" -> "{e["parent"][:16]}" [label="{e["relation"]}"];')
    out.append("}")
    return "\n".join(out)


def _attach_optional_groups() -> None:
    """Command groups whose modules import nothing heavy at import time."""
    from .log.cli import log_cli, verify_cmd
    from .risk.cli import COMMANDS as risk_commands

    cli.add_command(log_cli)
    cli.add_command(verify_cmd)
    for command in risk_commands:
        cli.add_command(command)
    from .evals.cli import attach as attach_evals

    try:
        from evals.cli import eval_cli
    except ImportError:  # evals is an optional part of the install
        pass
    else:
        cli.add_command(eval_cli)
    attach_evals(cli)  # eval submit/status/list/..., `eval run --register`, `worker`


_attach_optional_groups()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="studbook")


if __name__ == "__main__":
    main()
