"""The pure domain stays pure: importing `lineage` pulls in no web, database or ML package."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("litestar", "sqlmodel", "sqlalchemy", "torch", "transformers", "registry", "evals")


def test_lineage_imports_without_web_database_or_ml_packages() -> None:
    code = (
        "import json, sys, pkgutil, importlib, lineage\n"
        "for m in pkgutil.iter_modules(lineage.__path__):\n"
        "    importlib.import_module('lineage.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    leaked = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert leaked == []


def test_evals_imports_without_torch() -> None:
    code = "import json, sys, evals, evals.runner; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "transformers", "registry")]


CLIENT_FORBIDDEN = ("registry", "litestar", "sqlmodel", "sqlalchemy", "alembic", "torch", "evals")


def test_command_line_is_a_client_that_never_imports_the_server() -> None:
    """`studbook_cli` talks to the API; the server joins it only through entry points.

    Every module is imported (the command discovery too, with `--help` rendered, which lists
    the server's entry-point commands without loading them), and the source is read for any
    import of `registry` or `evals` at any level, so a lazy import inside a function is caught
    as well (local evals import `evals` lazily on purpose: `commands/evals.py` is the only
    module allowed to, inside `eval run`).
    """
    import ast
    from pathlib import Path

    code = (
        "import json, sys, pkgutil, importlib, studbook_cli\n"
        "for m in pkgutil.walk_packages(studbook_cli.__path__, 'studbook_cli.'):\n"
        "    if m.name != 'studbook_cli.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "from studbook_cli.main import cli\n"
        "import click\n"
        "ctx = click.Context(cli, info_name='studbook')\n"
        "cli.list_commands(ctx)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in CLIENT_FORBIDDEN] == []

    root = Path(__file__).resolve().parents[2] / "studbook_cli"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "registry" or (top == "evals" and path.name != "evals.py"):
                    offenders.append(f"{path.relative_to(root)}: {name}")
    assert offenders == []


def test_the_server_never_imports_the_command_line() -> None:
    """The server stands alone: `registry` reaches the client only by the entry points the
    client loads, never by import."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "registry"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "studbook_cli"]
    assert offenders == []
