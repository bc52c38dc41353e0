"""The command line's own rules, without a registry: exit codes, references in tables, DOT
escaping, where the server is, and which key signs."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from studbook_cli.commands.artifacts import dot_string, render_dot, render_table
from studbook_cli.config import ClientSettings
from studbook_cli.main import cli
from studbook_cli.output import ExitCode, exit_code_for_status, fit_ref

# ----------------------------------------------------------------------------- exit codes


class _Canned(BaseHTTPRequestHandler):
    """Answers every request with the status in its path's first segment: `/503/...`."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        status = int(self.server.status)  # type: ignore[attr-defined]
        body = json.dumps({"detail": f"canned {status}", "field": "ref"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def canned() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args, env={"STUDBOOK_TOKEN": "t", **(env or {})})
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, ExitCode.REFUSED),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.REFUSED),
        (413, ExitCode.REFUSED),
        (422, ExitCode.REFUSED),
        (500, ExitCode.SERVER),
        (503, ExitCode.SERVER),
    ],
)
def test_http_refusals_map_to_the_documented_codes(
    canned: ThreadingHTTPServer, status: int, code: ExitCode
) -> None:
    canned.status = status  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{canned.server_address[1]}"
    for args in (
        ["show", "acme/base@1"],
        ["check", "--base", "acme/base@1", "--dataset", "acme/d@1"],
        ["list"],
        ["log", "info"],
    ):
        got, out = _run(["--url", url, *args])
        assert got == code, (args, out)
        assert f"canned {status}" in out


def test_the_table_of_codes() -> None:
    assert [int(c) for c in ExitCode] == list(range(9))
    assert exit_code_for_status(0) is ExitCode.UNREACHABLE


def test_unreachable_server_is_6_and_says_how_to_point_elsewhere() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got, out = _run(["show", "acme/base@1"], {"STUDBOOK_PORT": str(port)})
    assert got == ExitCode.UNREACHABLE and "STUDBOOK_URL" in out and str(port) in out


def test_usage_errors_are_3() -> None:
    assert _run(["show"])[0] == ExitCode.USAGE  # missing argument
    assert _run(["no-such-command"])[0] == ExitCode.USAGE
    assert _run(["check", "--bogus"])[0] == ExitCode.USAGE
    assert _run(["lineage", "x@1", "--depth", "-1"])[0] == ExitCode.USAGE
    got, out = _run(["show", "x@1"], {"STUDBOOK_PORT": "eighty"})
    assert got == ExitCode.USAGE and "STUDBOOK_PORT" in out


@pytest.mark.parametrize(
    "args",
    [
        ["register", "model", ".", "--name", "a/b", "--version", "1"],
        ["flag", "a/b@1", "--trait", "owl"],
        ["clear", "a/b@1", "--trait", "owl", "--evidence", "attestation:1"],
        ["accept", "a/b@1", "--trait", "owl", "--reason", "r", "--until", "2027-01-01"],
        ["demo"],
        ["keys", "register"],
        ["eval", "register", "."],
        ["eval", "run", "digits", "--register"],
        ["findings", "confirm", "1"],
        ["findings", "dismiss", "1", "--reason", "no"],
        ["import", "hf", "{tmp}"],
        ["import", "oms", "{tmp}", "--name", "a/b", "--version", "1"],
    ],
)
def test_every_signing_command_reads_key_file_and_env(tmp_path: Path, args: list[str]) -> None:
    """`--key-file` and `STUDBOOK_KEY_FILE` reach the loader as a path (they once crashed with
    `'str' object has no attribute 'exists'`): a missing file is a usage error naming it."""
    args = [str(tmp_path / "empty") if a == "{tmp}" else a for a in args]
    (tmp_path / "empty").mkdir()
    missing = tmp_path / "nowhere" / "key.pem"
    for extra, env in (
        (["--key-file", str(missing)], {}),
        ([], {"STUDBOOK_KEY_FILE": str(missing)}),
    ):
        got, out = _run(
            ["--url", "http://127.0.0.1:9", *args, *extra], {**env, "STUDBOOK_DATA_DIR": "x"}
        )
        assert got == ExitCode.USAGE, out
        assert f"no signing key at {missing}" in out and "Traceback" not in out


# ----------------------------------------------------------------------------- where the server is


def test_url_defaults_to_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STUDBOOK_URL", "STUDBOOK_HOST", "STUDBOOK_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert ClientSettings().server_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("STUDBOOK_PORT", "8123")
    assert ClientSettings().server_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("STUDBOOK_HOST", "0.0.0.0")  # a server bound everywhere answers locally
    assert ClientSettings().server_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("STUDBOOK_HOST", "::1")
    assert ClientSettings().server_url == "http://[::1]:8123"
    monkeypatch.setenv("STUDBOOK_URL", "http://registry.example:9000")
    assert ClientSettings().server_url == "http://registry.example:9000"


# ----------------------------------------------------------------------------- tables


def test_fit_ref_keeps_the_version() -> None:
    ref = "acme/a-very-long-model-name-for-distillation-runs@2025-06-01"
    cut = fit_ref(ref, 30)
    assert len(cut) == 30 and cut.endswith("@2025-06-01") and "…" in cut
    assert cut.startswith("acme/")
    assert fit_ref("acme/base@1", 30) == "acme/base@1"
    # a version longer than the room is kept whole, never cut
    assert fit_ref("acme/x@" + "9" * 40, 20).endswith("@" + "9" * 40)


_names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80)


@given(
    name=_names,
    version=st.text("0123456789.abc-", min_size=1, max_size=20),
    width=st.integers(8, 90),
)
def test_fit_ref_never_loses_the_version(name: str, version: str, width: int) -> None:
    ref = f"{name}@{version}"
    cut = fit_ref(ref, width)
    assert cut.endswith("@" + version)
    if len(ref) <= width:
        assert cut == ref
    elif len(version) + 4 <= width:
        assert len(cut) == width


def _lineage(names: list[str]) -> dict[str, object]:
    nodes = [
        {
            "artifact": {"ref": n, "digest": f"{i:064x}", "kind": "model"},
            "depth": i,
            "flags": [],
            "at_risk": [],
        }
        for i, n in enumerate(names)
    ]
    edges = [
        {"child": f"{i:064x}", "parent": f"{i + 1:064x}", "relation": "fine_tuned_from"}
        for i in range(len(names) - 1)
    ]
    return {"root": f"{0:064x}", "direction": "up", "nodes": nodes, "edges": edges}


def test_lineage_table_keeps_every_version() -> None:
    long = "org/" + "distilled-" * 8 + "student"
    text = render_table(_lineage([f"{long}@17", "acme/base@1"]))
    assert "@17" in text and "…" in text and "acme/base@1" in text
    assert "000000000000" in text  # the 12-character digest that works as a reference


# ----------------------------------------------------------------------------- DOT


def _dot_strings(text: str) -> list[str]:
    """The double-quoted strings of a DOT text, unescaped as Graphviz reads them."""
    out, i = [], 0
    while i < len(text):
        if text[i] == '"':
            j, buf = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    buf.append({"n": "\n", '"': '"', "\\": "\\"}.get(text[j + 1], text[j + 1]))
                    j += 2
                else:
                    assert text[j] != "\n", "a raw line break inside a DOT string"
                    buf.append(text[j])
                    j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            i += 1
    return out


def test_dot_escapes_quotes_backslashes_and_line_breaks() -> None:
    evil = ['a" ]; "x" -> "y"; "b@1', "back\\slash@1", "two\nlines@1", "cr\rhere@1"]
    text = render_dot(_lineage(evil))
    labels = [s for s in _dot_strings(text) if "@" in s]
    assert labels == [e.replace("\r", "\n") for e in evil]
    # no injected statement: one node line per node, one edge line per edge
    body = [line for line in text.splitlines()[3:-1]]
    assert len(body) == len(evil) + len(evil) - 1
    assert dot_string('say "hi"') == '"say \\"hi\\""'


# ----------------------------------------------------------------------------- keygen


def test_keygen_writes_0600_and_never_widens(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "k.pem"
    got, out = _run(["keygen", "--out", str(key)])
    assert got == 0, out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert _run(["keygen", "--out", str(key)])[0] == ExitCode.USAGE  # exists, no --force
    key.chmod(0o644)
    before = key.read_bytes()
    got, out = _run(["keygen", "--out", str(key), "--force"])
    assert got == 0, out
    assert key.read_bytes() != before
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700  # a folder it had to create
    key.chmod(0o400)
    assert _run(["keygen", "--out", str(key), "--force"])[0] == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o400  # narrower stays narrower
    got, out = _run(["keygen", "--json"], {"STUDBOOK_KEY_FILE": str(tmp_path / "env.pem")})
    assert got == 0 and json.loads(out)["private_key_file"] == str(tmp_path / "env.pem")
    assert os.stat(tmp_path / "env.pem").st_mode & 0o077 == 0


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256", "ecdsa-p384"])
def test_keygen_algorithms(tmp_path: Path, algorithm: str) -> None:
    from lineage import dsse

    key = tmp_path / f"{algorithm}.pem"
    got, out = _run(["keygen", "--json", "--algorithm", algorithm, "--out", str(key)])
    assert got == 0, out
    info = json.loads(out)
    loaded = dsse.load_private_key(key.read_bytes())
    assert info["algorithm"] == algorithm == dsse.algorithm_of(loaded).value
    assert info["keyid"] == dsse.keyid(loaded.public_key())
    assert _run(["keygen", "--algorithm", "rsa", "--out", str(tmp_path / "x.pem")])[0] == 3
