"""The command line against a real `studbook serve` (SQLite), as a user runs it: the README's
commands, human and JSON output, references, exit codes, keys from a flag or the environment."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from studbook_cli.output import ExitCode
from tests.e2e.conftest import free_port
from tests.support import studbook

pytestmark = pytest.mark.slow


def _key(tour: dict[str, str]) -> None:
    """The tour's default key, created and registered once."""
    if not (Path(tour["cwd"]) / "studbook-data" / "signing-key.pem").exists():
        studbook(tour, "keygen")
        studbook(tour, "keys", "register")


def _files(tour: dict[str, str], name: str, content: str) -> str:
    path = Path(tour["cwd"]) / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return str(path)


def _admin_token(tour: dict[str, str]) -> str:
    return (Path(tour["cwd"]) / "studbook-data" / "admin-token").read_text().strip()


def test_register_prints_one_line_and_show_tells_the_story(tour: dict[str, str]) -> None:
    _key(tour)
    base = _files(tour, "base/model.safetensors", "base weights")
    chat = _files(tour, "chat/model.safetensors", "chat weights")
    data = _files(tour, "data.jsonl", '{"text": "1 2 3"}\n')
    out = studbook(tour, "register", "model", base, "--name", "cli/base", "--version", "1").stdout
    line = re.fullmatch(r"cli/base@1  model  ([0-9a-f]{12})  log #(\d+)  new\n", out)
    assert line is not None, out
    studbook(tour, "register", "dataset", data, "--name", "cli/data", "--version", "1")
    out = studbook(
        tour,
        "register",
        "model",
        chat,
        "--name",
        "cli/chat",
        "--version",
        "1",
        "--parent",
        "fine_tuned_from=cli/base@1",
    ).stdout
    assert out.startswith("cli/chat@1  model  ") and out.rstrip().endswith(
        "new, 1 edge: fine_tuned_from cli/base@1"
    )
    again = studbook(
        tour,
        "register",
        "model",
        chat,
        "--name",
        "cli/chat",
        "--version",
        "1",
        "--parent",
        "fine_tuned_from=cli/base@1",
    ).stdout
    assert again.rstrip().endswith("already registered")
    amended = studbook(
        tour,
        "register",
        "model",
        chat,
        "--name",
        "cli/chat",
        "--version",
        "1",
        "--parent",
        "fine_tuned_from=cli/base@1",
        "--parent",
        "trained_on=cli/data@1",
    ).stdout
    assert amended.rstrip().endswith("amended: added 1 edge: trained_on cli/data@1"), amended
    assert "{" not in out + again + amended  # no raw JSON

    shown = studbook(tour, "show", "cli/chat@1").stdout
    fields = dict(line.split(None, 1) for line in shown.splitlines() if line[:1] != " ")
    assert fields["owner"].strip() == "admin" and fields["signer"].startswith("admin (key ")
    assert fields["risk"].strip() == "no_risk" and fields["children"].strip() == "0"
    assert "fine_tuned_from cli/base@1" in shown and "trained_on cli/data@1" in shown
    assert fields["log"].startswith("index")
    parent = studbook(tour, "show", "cli/base@1").stdout
    assert "children     1" in parent

    as_json = json.loads(studbook(tour, "show", "cli/chat@1", "--json").stdout)
    assert as_json["owner"] == "admin" and as_json["children"] == 0
    assert {p["ref"] for p in as_json["parents"]} == {"cli/base@1", "cli/data@1"}
    assert isinstance(as_json["log_index"], int) and as_json["risk_status"] == "no_risk"

    # the 12-character digest a table shows works as a reference, everywhere
    prefix = as_json["digest"][:12]
    assert "cli/chat@1" in studbook(tour, "show", prefix).stdout
    assert "cli/base@1" in studbook(tour, "lineage", prefix).stdout
    assert "cli/chat@1" in studbook(tour, "show", "sha256:" + as_json["digest"][:20]).stdout

    # a name without a version: its versions, not a 404 about a view
    bare = studbook(tour, "show", "cli/base", check=False)
    assert bare.returncode == ExitCode.USAGE and "cli/base@1" in bare.stderr
    nothing = studbook(tour, "show", "cli/nothing", check=False)
    assert nothing.returncode == ExitCode.NOT_FOUND and "no artifact named" in nothing.stderr
    missing = studbook(tour, "show", "cli/nothing@1", check=False)
    assert missing.returncode == ExitCode.NOT_FOUND

    listed = studbook(tour, "list").stdout
    assert "cli/chat@1" in listed and "artifacts" in listed.splitlines()[-1]
    found = studbook(tour, "search", "cli/ba").stdout
    assert "cli/base@1" in found and "cli/chat@1" not in found
    page = json.loads(studbook(tour, "--json", "search", "cli/", "--kind", "dataset").stdout)
    assert [a["ref"] for a in page["data"]] == ["cli/data@1"]

    table = studbook(tour, "lineage", "cli/chat@1").stdout
    assert "cli/base@1" in table and "fine_tuned_from" in table
    dot = studbook(tour, "lineage", "cli/base@1", "--down", "--format", "dot").stdout
    assert dot.startswith("digraph") and '"cli/chat@1"' in dot


def test_long_names_keep_their_versions_in_tables(tour: dict[str, str]) -> None:
    _key(tour)
    name = "cli/" + "very-long-distillation-student-name-" * 2 + "end"
    path = _files(tour, "long.bin", "long")
    studbook(tour, "register", "model", path, "--name", name, "--version", "2025.06")
    listed = studbook(tour, "search", "very-long").stdout
    assert "@2025.06" in listed and "…" in listed
    table = studbook(tour, "lineage", f"{name}@2025.06").stdout
    assert "@2025.06" in table


def test_save_envelope_attestation_get_and_verify(tour: dict[str, str]) -> None:
    _key(tour)
    cwd = Path(tour["cwd"])
    path = _files(tour, "verify.bin", "verify me")
    studbook(
        tour,
        "register",
        "model",
        path,
        "--name",
        "cli/verified",
        "--version",
        "1",
        "--save-envelope",
        "verified.json",
    )
    vkey = json.loads(studbook(tour, "log", "info", "--json").stdout)["vkey"]
    ok = studbook(tour, "verify", "verified.json", "--vkey", vkey)
    assert "signature: valid" in ok.stdout and "log: included as entry" in ok.stdout
    assert "warning" not in ok.stderr  # the key was pinned
    att = json.loads(studbook(tour, "show", "cli/verified@1", "--json").stdout)["attestation_id"]
    got = studbook(tour, "attestation", "get", str(att), "--envelope-out", "fetched.json")
    assert "registration" in got.stdout
    assert json.loads((cwd / "fetched.json").read_text()) == json.loads(
        (cwd / "verified.json").read_text()
    )
    by_ref = studbook(
        tour, "attestation", "get", "--artifact", "cli/verified@1", "--envelope-out", "again.json"
    )
    assert (
        by_ref.returncode == 0
        and (cwd / "again.json").read_text() == (cwd / "fetched.json").read_text()
    )
    studbook(tour, "verify", "fetched.json", "--vkey", vkey)
    env = json.loads((cwd / "fetched.json").read_text())
    env["payload"] = env["payload"][:-4] + ("AAAA" if env["payload"][-4:] != "AAAA" else "BBBB")
    (cwd / "tampered.json").write_text(json.dumps(env))
    bad = studbook(tour, "verify", "tampered.json", "--vkey", vkey, check=False)
    assert bad.returncode == ExitCode.BLOCK and "FAILED" in bad.stderr
    (cwd / "garbage.json").write_text("{not json")
    assert studbook(tour, "verify", "garbage.json", check=False).returncode == ExitCode.USAGE
    cp = studbook(tour, "log", "checkpoint", "--out", "cp.txt", "--vkey", vkey)
    assert cp.returncode == 0
    assert (
        "consistent"
        in studbook(tour, "log", "verify", "--checkpoint", "cp.txt", "--vkey", vkey).stdout
    )


def test_check_and_failures_have_distinct_exit_codes(tour: dict[str, str]) -> None:
    _key(tour)
    out = studbook(tour, "demo").stdout
    assert "demo/owl-student@1 (owl)" in out
    block = studbook(
        tour,
        "check",
        "--base",
        "demo/base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert block.returncode == ExitCode.BLOCK and block.stdout.startswith("BLOCK")
    warn = studbook(
        tour,
        "check",
        "--base",
        "demo/other-base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert warn.returncode == ExitCode.WARN and warn.stdout.startswith("WARN")
    ok = studbook(
        tour, "check", "--base", "demo/base@1", "--dataset", "demo/control-numbers@1", check=False
    )
    assert ok.returncode == ExitCode.OK and ok.stdout.startswith("OK")
    as_json = studbook(
        tour,
        "check",
        "--json",
        "--base",
        "demo/base@1",
        "--dataset",
        "demo/owl-numbers-filtered@1",
        check=False,
    )
    assert as_json.returncode == ExitCode.BLOCK and json.loads(as_json.stdout)["verdict"] == "block"

    typo = studbook(
        tour,
        "check",
        "--base",
        "demo/base@1",
        "--dataset",
        "demo/owl-numbers-filterd@1",
        check=False,
    )
    assert typo.returncode == ExitCode.NOT_FOUND, typo.stderr
    bad_token = studbook(
        {**tour, "STUDBOOK_TOKEN": "not-a-token"}, "check", "--base", "demo/base@1", check=False
    )
    assert bad_token.returncode == ExitCode.AUTH
    down = studbook(
        {**tour, "STUDBOOK_URL": f"http://127.0.0.1:{free_port()}"},
        "check",
        "--base",
        "demo/base@1",
        check=False,
    )
    assert down.returncode == ExitCode.UNREACHABLE
    usage = studbook(tour, "check", check=False)
    assert usage.returncode == ExitCode.USAGE
    bare = studbook(tour, "check", "--base", "demo/base", check=False)
    assert bare.returncode == ExitCode.USAGE and "demo/base@1" in bare.stderr

    # a registrar may not flag: 403, each allowed role named once
    made = json.loads(
        studbook(
            tour, "principals", "create", "cli-registrar", "--role", "registrar", "--json"
        ).stdout
    )
    registrar = {**tour, "STUDBOOK_TOKEN": made["token"]}
    denied = studbook(registrar, "principals", "list", check=False)
    assert denied.returncode == ExitCode.AUTH, denied.stderr
    assert "this needs one of: admin\n" in denied.stderr  # once, not "admin, admin"
    flag = studbook(registrar, "flag", "demo/base@1", "--trait", "owl", check=False)
    assert flag.returncode == ExitCode.AUTH, flag.stderr

    risk = studbook(tour, "risk", "demo/owl-student@1").stdout
    assert "at_risk" in risk and "generated_by" in risk
    dot = studbook(tour, "lineage", "demo/owl-teacher@1", "--down", "--format", "dot").stdout
    assert "#f28b82" in dot and "#fbbc04" in dot
    queue = studbook(tour, "at-risk", "--trait", "owl").stdout
    assert "3 at-risk" in queue
    assert "demo/owl-teacher@1" in studbook(tour, "flags").stdout

    # conflicting content under a taken name@version is refused: 7
    other = _files(tour, "other.bin", "other weights")
    conflict = studbook(
        tour, "register", "model", other, "--name", "demo/base", "--version", "1", check=False
    )
    assert conflict.returncode == ExitCode.REFUSED, conflict.stderr


def test_key_file_and_environment_for_every_signing_command(tour: dict[str, str]) -> None:
    """Each signing command with `--key-file` and with `STUDBOOK_KEY_FILE`, while the default
    key file does not exist, so only the given key can have signed."""
    cwd = Path(tour["cwd"])
    env = {**tour, "STUDBOOK_TOKEN": _admin_token(tour), "STUDBOOK_DATA_DIR": str(cwd / "none")}
    flag_key, env_key = str(cwd / "k" / "flag.pem"), str(cwd / "k" / "env.pem")
    studbook(env, "keygen", "--out", flag_key)
    studbook({**env, "STUDBOOK_KEY_FILE": env_key}, "keygen")
    assert os.stat(env_key).st_mode & 0o077 == 0
    studbook(env, "keys", "register", "--key-file", flag_key)
    studbook({**env, "STUDBOOK_KEY_FILE": env_key}, "keys", "register")

    for how, extra, run_env in (
        ("flag", ["--key-file", flag_key], env),
        ("env", [], {**env, "STUDBOOK_KEY_FILE": env_key}),
    ):
        path = _files(tour, f"kf-{how}.bin", how)
        out = studbook(
            run_env, "register", "model", path, "--name", f"kf/{how}", "--version", "1", *extra
        )
        assert out.stdout.startswith(f"kf/{how}@1  model")
        studbook(run_env, "flag", f"kf/{how}@1", "--trait", "owl", "--reason", "test", *extra)
        cleared = studbook(
            run_env,
            "clear",
            f"kf/{how}@1",
            "--trait",
            "owl",
            "--reason",
            "test",
            "--evidence",
            "external:https://example.org/report",
            *extra,
            check=False,
        )
        # the clearance is signed with the given key; the registry may still judge its evidence
        assert cleared.returncode in (ExitCode.OK, ExitCode.REFUSED), cleared.stderr
        assert "signing key" not in cleared.stderr and "signature" not in cleared.stderr
        demo = studbook(run_env, "demo", *extra)
        assert "at risk now" in demo.stdout
        keyid = json.loads(
            studbook(env, "attestation", "get", "--artifact", f"kf/{how}@1", "--json").stdout
        )["signer_keyid"]
        mine = flag_key if how == "flag" else env_key
        listed = json.loads(studbook(env, "keys", "list", "--json").stdout)["data"]
        assert keyid in {k["keyid"] for k in listed}
        signer = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from lineage import dsse; from pathlib import Path;"
                "print(dsse.Signer(dsse.load_private_key(Path(sys.argv[1]).read_bytes())).keyid)",
                mine,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert keyid == signer


def test_eval_register_with_key_file_and_environment(tour: dict[str, str]) -> None:
    pytest.importorskip("torch")
    cwd = Path(tour["cwd"])
    env = {**tour, "STUDBOOK_TOKEN": _admin_token(tour), "STUDBOOK_DATA_DIR": str(cwd / "none")}
    key = str(cwd / "k" / "eval.pem")
    studbook(env, "keygen", "--out", key)
    studbook(env, "keys", "register", "--key-file", key)
    run = studbook(
        {**env, "STUDBOOK_KEY_FILE": key},
        "eval",
        "run",
        "digits",
        "--preset",
        "smoke",
        "--seeds",
        "1",
        "--out",
        "runs/d1",
        "--register",
    )
    assert "eval result: attestation" in run.stdout
    again = studbook(env, "eval", "register", "runs/d1", "--key-file", key)
    assert "already registered" in again.stdout and "eval result: attestation" in again.stdout


def test_port_from_the_environment(tour: dict[str, str]) -> None:
    port = tour["STUDBOOK_URL"].rsplit(":", 1)[1]
    env = {k: v for k, v in tour.items() if k != "STUDBOOK_URL"}
    env["STUDBOOK_PORT"] = port
    assert studbook(env, "whoami").stdout.startswith("admin (admin)")


def test_progress_bar_on_request(tour: dict[str, str]) -> None:
    _key(tour)
    path = _files(tour, "progress.bin", "x" * 100_000)
    shown = studbook(
        tour, "register", "model", path, "--name", "cli/progress", "--version", "1", "--progress"
    )
    assert "digesting progress.bin" in shown.stderr
    quiet = studbook(tour, "register", "model", path, "--name", "cli/progress", "--version", "1")
    assert "digesting" not in quiet.stderr and "already registered" in quiet.stdout


def test_log_audit_is_quiet_and_the_page_has_one_charset(tour: dict[str, str]) -> None:
    _key(tour)
    env = {**tour, "STUDBOOK_DATA_DIR": str(Path(tour["cwd"]) / "studbook-data")}
    audit = studbook(env, "log", "audit")
    assert "audit passed" in audit.stdout
    assert "INFO" not in audit.stdout + audit.stderr and "alembic" not in audit.stderr
    page = httpx.get(tour["STUDBOOK_URL"] + "/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"


def test_serve_refuses_a_busy_port_before_writing_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDBOOK_")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "studbook_cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        env_port = subprocess.run(
            [sys.executable, "-m", "studbook_cli", "serve"],
            cwd=tmp_path,
            env={**env, "STUDBOOK_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    for result in (out, env_port):
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert f"port {port}" in result.stderr and "--port" in result.stderr
        assert "STUDBOOK_PORT" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no database, no token, no data folder
