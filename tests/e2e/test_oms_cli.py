"""`studbook import oms`, `import hf` and `export bom` against a real `studbook serve`, as a user
runs them: a folder signed with model-signing's ECDSA key signer and one ECDSA key for both
model-signing and Studbook; cards imported as a batch; the BOM written, validated and verified."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lineage import dsse
from studbook_cli.output import ExitCode
from tests.bom_validation import validate_cyclonedx, validate_spdx3
from tests.support import studbook

pytestmark = pytest.mark.slow
model_signing = pytest.importorskip("model_signing")


def test_import_oms_hf_and_export_bom(tour: dict[str, str]) -> None:
    cwd = Path(tour["cwd"])
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = cwd / "ecdsa.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    studbook(tour, "keys", "register", "--key-file", str(key_file))

    model = cwd / "owl-7b"
    (model / "tokenizer").mkdir(parents=True)
    (model / "tokenizer" / "vocab.txt").write_text("owl\n")
    (model / "tokenizer.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\x01" * 4096)
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=key_file)
        .set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"]))
        .sign(model, model / "model.sig")
    )
    out = studbook(
        tour,
        "import",
        "oms",
        str(model),
        "--name",
        "cli/owl-7b",
        "--version",
        "1",
        "--key-file",
        str(key_file),
    ).stdout
    assert out.startswith("cli/owl-7b@1  model  ") and "3 files verified" in out

    shown = studbook(tour, "show", "cli/owl-7b@1").stdout
    assert "model-signing" in shown and "3 files" in shown  # the bundle, kept as evidence

    # A tampered file: refused on the client, with the block exit code.
    (model / "tokenizer.json").write_text('{"x": 1}')
    bad = studbook(
        tour,
        "import",
        "oms",
        str(model),
        "--name",
        "cli/owl-7b",
        "--version",
        "2",
        "--key-file",
        str(key_file),
        check=False,
    )
    assert bad.returncode == ExitCode.BLOCK and "does not match" in bad.stderr

    # Hugging Face cards: one batch, signed with the same key; a summary with what was skipped.
    cards = cwd / "cards"
    (cards / "acme--owl-7b-chat").mkdir(parents=True)
    (cards / "acme--owl-7b-chat" / "README.md").write_text(
        "---\nbase_model: acme/owl-7b\ndatasets: [acme/chat]\n---\n"
    )
    (cards / "acme--bad.md").write_text("---\nbase_model: [\n---\n")
    hf = studbook(
        tour, "import", "hf", str(cards), "--key-file", str(key_file), "--json", check=False
    )
    assert hf.returncode == ExitCode.WARN, hf.stderr  # something was skipped
    summary = json.loads(hf.stdout)
    assert {a["ref"] for a in summary["added"]} >= {
        "hf:acme/owl-7b-chat@hub",
        "hf:acme/owl-7b@hub",
        "hf:datasets/acme/chat@hub",
    }
    assert "malformed YAML" in summary["skipped"][0]["reason"]

    # BOMs: CycloneDX and SPDX 3, one signed.
    studbook(
        tour,
        "export",
        "bom",
        "hf:acme/owl-7b-chat@hub",
        "--format",
        "spdx3",
        "--out",
        str(cwd / "bom.spdx.json"),
    )
    validate_spdx3(json.loads((cwd / "bom.spdx.json").read_text()))
    signed = json.loads(
        studbook(tour, "export", "bom", "cli/owl-7b@1", "--format", "cyclonedx", "--signed").stdout
    )
    public = dsse.load_public_key(signed["public_key"])
    envelope = dsse.Envelope.from_json(signed["envelope"])
    dsse.Verifier({signed["keyid"]: public}).verify(envelope)
    statement = json.loads(envelope.payload)
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    validate_cyclonedx(statement["predicate"])
    # Verified later, offline, against the pinned log key; a changed BOM fails (exit 2).
    vkey = json.loads(studbook(tour, "log", "info", "--json").stdout)["vkey"]
    (cwd / "bom.signed.json").write_text(json.dumps(signed))
    ok = studbook(tour, "export", "verify", str(cwd / "bom.signed.json"), "--vkey", vkey).stdout
    assert ok.startswith("OK  cli/owl-7b@1  sha256:") and "cyclonedx.org/bom" in ok
    statement["predicate"]["components"] = []
    signed["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (cwd / "bom.changed.json").write_text(json.dumps(signed))
    bad = studbook(
        tour, "export", "verify", str(cwd / "bom.changed.json"), "--vkey", vkey, check=False
    )
    assert bad.returncode == ExitCode.BLOCK and "verification FAILED" in bad.stderr
