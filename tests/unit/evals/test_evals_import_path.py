"""The evals run on GPU hosts that have torch and transformers but not the service's stack.

Every experiment module, imported with its heavy dependencies, must load neither the web and
database layers nor `cryptography` (the signing code lives in `lineage.dsse`, which the evals
never need: they only record digests and relations for the registry to sign).
"""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("cryptography", "litestar", "sqlmodel", "sqlalchemy", "registry", "httpx", "click")


def test_experiment_modules_do_not_import_cryptography_or_the_service() -> None:
    code = (
        "import json, sys, pkgutil, importlib, evals\n"
        "names = [m.name for m in pkgutil.walk_packages(evals.__path__, 'evals.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "import torch, transformers  # what a GPU host has\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "evals.digits" in loaded and "evals.numbers.experiment" in loaded
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
