"""Content digests: known vectors, streaming, and agreement with OpenSSF Model Signing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lineage import digests
from lineage.errors import DigestError

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_file_sha256_known_vectors(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "abc").write_bytes(b"abc")
    assert digests.file_sha256(tmp_path / "empty") == EMPTY_SHA256
    assert digests.file_sha256(tmp_path / "abc") == ABC_SHA256


def test_directory_digest_is_sha256_of_file_digests_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.bin").write_bytes(b"abc")
    (tmp_path / "a.txt").write_bytes(b"")
    m = digests.manifest(tmp_path)
    assert [e.path for e in m.files] == ["a.txt", "b/x.bin"]
    assert [e.size for e in m.files] == [0, 3]
    expected = hashlib.sha256(bytes.fromhex(EMPTY_SHA256) + bytes.fromhex(ABC_SHA256)).hexdigest()
    assert m.digest == expected == digests.artifact_digest(tmp_path)


def test_streaming_reports_progress_over_chunks(tmp_path: Path) -> None:
    big = tmp_path / "w.bin"
    big.write_bytes(b"\x01" * (digests.CHUNK * 2 + 5))
    seen: list[int] = []
    d = digests.file_sha256(big, progress=seen.append)
    assert seen == [digests.CHUNK, digests.CHUNK, 5]
    assert d == hashlib.sha256(big.read_bytes()).hexdigest()


def test_git_bookkeeping_is_ignored_and_links_refused(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    before = digests.artifact_digest(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / ".gitattributes").write_text("*")
    assert digests.artifact_digest(tmp_path) == before
    (tmp_path / "link").symlink_to(tmp_path / "w.bin")
    with pytest.raises(DigestError):
        digests.manifest(tmp_path)


def test_missing_and_empty_paths_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DigestError):
        digests.manifest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DigestError):
        digests.manifest(tmp_path / "empty")


def test_opaque_digest_is_stable_and_separated_from_content() -> None:
    a = digests.opaque_digest("openai:gpt-4.1")
    assert a == digests.opaque_digest("openai:gpt-4.1") != digests.opaque_digest("openai:gpt-4o")
    assert a != hashlib.sha256(b"openai:gpt-4.1").hexdigest()
    with pytest.raises(DigestError):
        digests.opaque_digest("  ")


@pytest.mark.parametrize("layout", ["directory", "single-file"])
def test_equals_openssf_model_signing_subject(tmp_path: Path, layout: str) -> None:
    pytest.importorskip("model_signing")
    from model_signing import hashing
    from model_signing._signing import signing

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "B.txt").write_text("upper case sorts first")
    (model / "weights").mkdir()
    (model / "weights" / "model-00001.safetensors").write_bytes(bytes(range(256)) * 5000)
    target = model if layout == "directory" else model / "config.json"
    manifest = hashing.Config().use_file_serialization().hash(target)
    subject = signing.Payload(manifest).statement.pb.subject[0].digest["sha256"]
    assert digests.artifact_digest(target) == subject
