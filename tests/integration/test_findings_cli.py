"""`studbook register` signs a fingerprint of a model's weights; `studbook findings`, `findings
confirm` and `findings dismiss` work the queue; run in-process against the real app on both
databases (the CLI's HTTP client talks to the test client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from litestar.testing import TestClient

from lineage import dsse
from studbook_cli import context as cli_context
from studbook_cli.client import Client
from studbook_cli.main import cli
from tests.support import Actor

np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

VOCAB, HIDDEN = 1000, 64


@pytest.fixture
def run(client: TestClient[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Invoke `studbook ...` as `actor`, signing with their key."""

    def make(url: str, token: str | None) -> Client:
        c = Client.__new__(Client)
        client.headers["Authorization"] = f"Bearer {token}"
        c._http = client  # a TestClient is an httpx.Client
        return c

    monkeypatch.setattr(cli_context, "Client", make)

    def invoke(actor: Actor, *args: str) -> Result:
        key = tmp_path / f"{actor.name}.pem"
        if not key.exists():
            key.write_bytes(dsse.private_key_pem(actor.signer._key))
            key.chmod(0o600)
        return CliRunner().invoke(
            cli,
            ["--url", "http://testserver", "--token", actor.token, *args],
            env={"STUDBOOK_KEY_FILE": str(key), "STUDBOOK_DATA_DIR": str(tmp_path / "cli")},
        )

    return invoke


def model_dir(root: Path, name: str, w: Any) -> Path:
    folder = root / name
    folder.mkdir()
    safetensors_numpy.save_file({"model.embed_tokens.weight": w}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    return folder


def weights(seed: int, noise_of: Any = None) -> Any:
    w = np.random.default_rng(seed).normal(0, 0.02, (VOCAB, HIDDEN)).astype(np.float32)
    return w if noise_of is None else noise_of + 0.3 * w


def metadata(client: TestClient[Any], actor: Actor, ref: str) -> dict[str, Any]:
    r = client.get(f"/v1/artifacts/{ref}", headers=actor.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["metadata"])


def test_register_signs_fingerprint_unless_told_or_unreadable(
    run: Any, client: TestClient[Any], registrar: Actor, tmp_path: Path
) -> None:
    base = model_dir(tmp_path, "base", weights(0))
    out = run(registrar, "register", "model", str(base), "--name", "acme/base", "--version", "1")
    assert out.exit_code == 0, out.output + out.stderr
    fp = metadata(client, registrar, "acme/base@1")["fingerprint"]
    assert fp["scheme"].endswith("embedding-gram/v1") and fp["domain"] == VOCAB
    opted = model_dir(tmp_path, "opted", weights(1))
    out = run(
        registrar,
        "register",
        "model",
        str(opted),
        "--name",
        "acme/opted",
        "--version",
        "1",
        "--no-fingerprint",
    )
    assert out.exit_code == 0, out.output + out.stderr
    assert "fingerprint" not in metadata(client, registrar, "acme/opted@1")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "model.bin").write_bytes(b"\x01" * 64)
    (junk / "model.safetensors").write_bytes(b"\x01" * 4096)  # corrupt weights
    out = run(registrar, "register", "model", str(junk), "--name", "acme/junk", "--version", "1")
    assert out.exit_code == 0, out.output + out.stderr
    assert "registering without a fingerprint" in out.stderr
    assert "fingerprint" not in metadata(client, registrar, "acme/junk@1")
    data = model_dir(tmp_path, "ds", weights(2))  # a dataset never carries one
    out = run(registrar, "register", "dataset", str(data), "--name", "acme/data", "--version", "1")
    assert out.exit_code == 0, out.output + out.stderr
    assert "fingerprint" not in metadata(client, registrar, "acme/data@1")


def test_findings_confirm_and_dismiss_from_the_command_line(
    run: Any, registrar: Actor, reviewer: Actor, tmp_path: Path
) -> None:
    base_w = weights(0)
    for name, w, parents in (
        ("base", base_w, []),
        ("other", weights(1), []),
        ("student", weights(2, noise_of=base_w), ["--parent", "fine_tuned_from=acme/other@1"]),
    ):
        out = run(
            registrar,
            "register",
            "model",
            str(model_dir(tmp_path, name, w)),
            "--name",
            f"acme/{name}",
            "--version",
            "1",
            *parents,
        )
        assert out.exit_code == 0, out.output + out.stderr
    listed = run(reviewer, "findings", "--status", "open", "--json")
    assert listed.exit_code == 0, listed.output + listed.stderr
    rows = {f["kind"]: f for f in json.loads(listed.output)["data"]}
    assert set(rows) == {"undeclared_shared_base", "declared_parent_contradicted"}
    human = run(reviewer, "findings")
    assert "acme/student@1 -> acme/base@1: undeclared shared base" in human.output
    compared = run(reviewer, "compare", "acme/base@1", "acme/student@1", "--json")
    assert compared.exit_code == 0 and json.loads(compared.output)["shared"] is True

    denied = run(registrar, "findings", "confirm", str(rows["undeclared_shared_base"]["id"]))
    assert denied.exit_code != 0 and "reviewer" in denied.stderr
    ok = run(reviewer, "findings", "confirm", str(rows["undeclared_shared_base"]["id"]))
    assert ok.exit_code == 0, ok.output + ok.stderr
    assert "added initialized_from acme/student@1 -> acme/base@1" in ok.output
    no_reason = run(
        reviewer, "findings", "dismiss", str(rows["declared_parent_contradicted"]["id"])
    )
    assert no_reason.exit_code != 0
    gone = run(
        reviewer,
        "findings",
        "dismiss",
        str(rows["declared_parent_contradicted"]["id"]),
        "--reason",
        "re-initialised on purpose",
    )
    assert gone.exit_code == 0, gone.output + gone.stderr
    assert "dismissed finding" in gone.output
    left = run(reviewer, "findings", "--status", "open", "--json")
    assert json.loads(left.output)["data"] == []
    missing = run(reviewer, "findings", "confirm", "999999")
    assert missing.exit_code == 5, missing.output + missing.stderr  # not found
