"""Eval workers never build paths from names.

A registrar chooses an artifact's name (`/etc@ssl`, `../x@1`); the worker finds a base model's
files by content digest inside its configured model directory, never following a symlink, never
leaving the directory, and never naming the directory's files in what it reports. The eval process
refuses a path outside the directory or behind a link, whoever wrote its spec. Run directories
are private.
"""

from __future__ import annotations

import builtins
import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from lineage.digests import artifact_digest
from registry.evals import child
from registry.evals.worker import Supervisor, WorkerSetupError, find_model_files
from registry.settings import Settings
from tests.support import Actor, register


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    models = tmp_path / "models"
    tiny = _tree(models / "acme" / "tiny" / "1", {"config.json": b"{}", "model.bin": b"w" * 64})
    single = models / "single.gguf"
    single.write_bytes(b"GGUF" + b"\x00" * 60)
    outside = _tree(tmp_path / "etc" / "ssl", {"cert.pem": b"CERT", "private/key.pem": b"KEY"})
    (models / "escape").symlink_to(outside)  # a link to a directory outside
    (models / "cert-link.pem").symlink_to(outside / "cert.pem")  # a link to a file outside
    return {"models": models, "tiny": tiny, "single": single, "outside": outside}


def _settings(tmp_path: Path, models: Path | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", eval_model_dir=models)


def test_model_files_are_found_by_digest(tmp_path: Path, layout: dict[str, Path]) -> None:
    settings = _settings(tmp_path, layout["models"])
    for key in ("tiny", "single"):
        found = find_model_files(settings, artifact_digest(layout[key]), "whatever@1")
        assert found == Path(os.path.realpath(layout[key]))
    # A folder named by the digest is used when it holds the digest's files.
    digest = artifact_digest(layout["tiny"])
    named = _tree(layout["models"] / digest, {"config.json": b"{}", "model.bin": b"w" * 64})
    assert find_model_files(settings, digest, "x@1") == Path(os.path.realpath(named))


@pytest.mark.parametrize("label", ["/etc@ssl", "../x@1", "../../etc@ssl", "acme/tiny@1"])
def test_files_outside_the_directory_are_never_found_or_read(
    tmp_path: Path, layout: dict[str, Path], label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = layout["outside"]
    wanted = artifact_digest(outside)  # the outside folder's real digest: still not found
    read: list[str] = []
    real_open, real_scandir = builtins.open, os.scandir

    def spy_open(file: Any, *a: Any, **k: Any) -> Any:
        read.append(os.path.realpath(file) if isinstance(file, str | Path) else str(file))
        return real_open(file, *a, **k)

    def spy_scandir(path: Any = ".") -> Any:
        read.append(os.path.realpath(path))
        return real_scandir(path)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "scandir", spy_scandir)
    settings = _settings(tmp_path, layout["models"])
    with pytest.raises(WorkerSetupError) as err:
        find_model_files(settings, wanted, label)
    monkeypatch.undo()
    assert any(p.startswith(os.path.realpath(layout["models"])) for p in read)  # it did look
    assert not [p for p in read if p.startswith(os.path.realpath(outside))]
    message = err.value.message
    assert wanted in message and "ssl" not in message.replace(label, "")
    for name in ("cert", "key.pem", "model.bin", "config.json", "single.gguf", str(tmp_path)):
        assert name not in message  # no file name of the host in what a viewer can read
    # Nor through the file link.
    with pytest.raises(WorkerSetupError):
        find_model_files(settings, artifact_digest(outside / "cert.pem"), label)


def test_without_a_model_directory_nothing_is_looked_up(tmp_path: Path) -> None:
    with pytest.raises(WorkerSetupError, match="STUDBOOK_EVAL_MODEL_DIR"):
        find_model_files(_settings(tmp_path, None), "ab" * 32, "/etc@ssl")
    with pytest.raises(WorkerSetupError, match="no content digest"):
        find_model_files(_settings(tmp_path, tmp_path), "../../etc", "x@1")


def test_the_eval_process_refuses_paths_outside_the_directory_or_behind_links(
    layout: dict[str, Path],
) -> None:
    from evals.errors import ModelLoadError

    channel = child._Channel(io.StringIO())
    models = str(layout["models"])
    outside = layout["outside"]
    for path in (outside, layout["models"] / "escape", layout["models"] / "..", Path("/etc")):
        with pytest.raises(ModelLoadError):
            child._verify(path, artifact_digest(outside), "/etc@ssl", channel, models)
    with pytest.raises(ModelLoadError):  # no model directory in the spec: nothing is trusted
        child._verify(layout["tiny"], artifact_digest(layout["tiny"]), "a@1", channel, "")
    # Inside, with the right digest: accepted.
    child._verify(layout["tiny"], artifact_digest(layout["tiny"]), "a@1", channel, models)


def test_run_directories_are_private(
    client: Any, engine: Engine, registrar: Actor, settings: Settings
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the run directory is made alike on every database")
    r = client.post(
        "/v1/evals",
        json={"experiment": "digits", "preset": "smoke"},
        headers=registrar.headers,
    )
    assert r.status_code == 201, r.text
    sup = Supervisor(engine, settings, None, int(r.json()["id"]), "test")  # type: ignore[arg-type]
    spec = sup._spec()
    out = Path(spec["out_dir"])
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(settings.eval_runs_path).st_mode) == 0o700
    assert "base" not in spec  # digits runs need no model files


def test_a_base_registered_under_a_hostile_name_is_looked_up_by_digest_only(
    client: Any, engine: Engine, registrar: Actor, settings: Settings, layout: dict[str, Path]
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the lookup works alike on every database")
    from sqlalchemy import update

    from registry.models import Artifact

    digest = artifact_digest(layout["tiny"])
    register(client, registrar, "model", "acme/base@1")
    with engine.begin() as conn:  # as if stored before names were checked
        conn.execute(
            update(Artifact.__table__)  # type: ignore[attr-defined]
            .where(Artifact.__table__.c.name == "acme/base")  # type: ignore[attr-defined]
            .values(name="/etc", version="ssl", digest=digest)
        )
    configured = settings.model_copy(update={"eval_model_dir": layout["models"]})
    r = client.post(
        "/v1/evals",
        json={"experiment": "numbers", "preset": "smoke", "base": f"sha256:{digest}"},
        headers=registrar.headers,
    )
    if r.status_code != 201:
        pytest.skip(f"numbers runs cannot be queued here: {r.text}")
    sup = Supervisor(engine, configured, None, int(r.json()["id"]), "test")  # type: ignore[arg-type]
    spec = sup._spec()
    assert spec["base"]["path"] == os.path.realpath(layout["tiny"])
    assert spec["base"]["ref"] == "/etc@ssl"  # a label in messages, never a path
    assert spec["model_dir"] == os.path.realpath(layout["models"])
