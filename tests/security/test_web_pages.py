"""The workspace's pages load nothing from elsewhere and run no inline code: a `'self'`
Content-Security-Policy on every page (the API docs included), every script, style and icon
they name served by Studbook, and every one of those files shipped in the package."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

Client = TestClient[Any]
ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "registry" / "web"


@pytest.mark.parametrize("path", ["/", "/app", "/docs", "/docs/swagger"])
def test_pages_are_self_only(client: Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    html = r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html
    refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert refs
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        got = client.get(ref)
        assert got.status_code == 200, ref
        assert got.headers["x-content-type-options"] == "nosniff"


def test_every_web_file_is_packaged() -> None:
    """`[tool.setuptools.package-data]` covers every file the pages load."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["registry"]
    shipped = [p for p in WEB.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for p in shipped:
        rel = p.relative_to(ROOT / "registry").as_posix()
        if rel.endswith(".py"):
            continue
        assert any(fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs), rel


def test_vendored_code_carries_its_licence_and_version() -> None:
    versions = (WEB / "vendor" / "VERSIONS").read_text().split()
    assert any(v.startswith("@dagrejs/dagre@") for v in versions)
    assert any(v.startswith("swagger-ui-dist@") for v in versions)
    for lib in ("dagre", "swagger-ui"):
        assert (WEB / "vendor" / lib / "LICENSE").stat().st_size > 500
    for f in (WEB / "vendor").rglob("*.js"):
        assert "sourceMappingURL" not in f.read_text(errors="replace")[-300:], f
