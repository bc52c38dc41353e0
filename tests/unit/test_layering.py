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
    code = "import json, sys, evals, evals.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "transformers", "registry")]
