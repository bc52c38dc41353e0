"""Content digests: known vectors, streaming, and identity with OpenSSF Model Signing.

The property test builds random directory trees (names that collide around `/`, dots, dashes,
spaces, non-ASCII, empty files, git files at any depth, a signature file) and holds Studbook's
manifest to Model Signing's own hashing, item by item and digest by digest.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage import digests
from lineage.errors import DigestError

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

model_signing = pytest.importorskip("model_signing")


def oms_items(
    target: Path, ignore: list[str] | None = None, *, signature: str | None = "model.sig"
) -> tuple[list[tuple[str, str]], str]:
    """Model Signing's (name, digest) items and subject digest for `target`."""
    from model_signing import hashing
    from model_signing._signing import signing

    paths = list(ignore or [])
    if signature is not None:
        paths.append(signature)
    m = hashing.Config().set_ignored_paths(paths=paths).hash(target)
    items = [(str(d.identifier), d.digest.digest_hex) for d in m.resource_descriptors()]
    subject = signing.Payload(m).statement.pb.subject[0].digest["sha256"]
    return items, subject


def ours(target: Path, ignore: list[str] | None = None, **kw: Any) -> digests.Manifest:
    return digests.manifest(target, ignore_paths=ignore or [], **kw)


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


def test_order_is_by_path_components_not_strings(tmp_path: Path) -> None:
    """The Hugging Face layout string order gets wrong: `tokenizer.json` beside `tokenizer/`."""
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "vocab.txt").write_bytes(b"v")
    (tmp_path / "tokenizer.json").write_bytes(b"t")
    (tmp_path / "tokenizer-2").write_bytes(b"d")
    m = ours(tmp_path)
    # String order would be tokenizer-2, tokenizer.json, tokenizer/vocab.txt ("-" < "." < "/").
    assert [e.path for e in m.files] == ["tokenizer/vocab.txt", "tokenizer-2", "tokenizer.json"]
    items, subject = oms_items(tmp_path)
    assert [(e.path, e.sha256) for e in m.files] == items
    assert m.digest == subject


def test_git_files_are_ignored_only_at_the_root(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    before = digests.artifact_digest(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / ".gitattributes").write_text("*")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push")
    assert digests.artifact_digest(tmp_path) == before
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("*.tmp")
    m = ours(tmp_path)
    assert [e.path for e in m.files] == ["sub/.gitignore", "w.bin"]
    assert m.digest == oms_items(tmp_path)[1]
    assert ours(tmp_path, ignore_git_paths=False).digest != m.digest


def test_signature_file_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    before = digests.artifact_digest(tmp_path)
    (tmp_path / "model.sig").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.sig").write_text("nested is content")
    m = ours(tmp_path)
    assert [e.path for e in m.files] == ["sub/model.sig", "w.bin"]
    assert m.digest == oms_items(tmp_path)[1] != before
    assert ours(tmp_path, signature=None).digest == oms_items(tmp_path, signature=None)[1]
    assert ours(tmp_path, signature="custom.sig").digest != m.digest


def test_ignore_paths_follow_model_signing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    (tmp_path / "ab").write_bytes(b"2")
    (tmp_path / "c.txt").write_bytes(b"3")
    for ignore in (["a"], ["a/"], ["a/x"], ["ab"], ["x/../a"], ["../c.txt"], ["/c.txt"], []):
        items, subject = oms_items(tmp_path, ignore)
        m = ours(tmp_path, ignore)
        assert [(e.path, e.sha256) for e in m.files] == items, ignore
        assert m.digest == subject
    absolute = str(tmp_path / "c.txt")
    assert ours(tmp_path, [absolute]).digest == oms_items(tmp_path, [absolute])[1]
    assert [e.path for e in ours(tmp_path, [absolute]).files] == ["a/x", "ab"]


def test_links_and_special_files_are_refused_everywhere(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "link").symlink_to(tmp_path / "w.bin")
    with pytest.raises(DigestError):
        digests.manifest(tmp_path)
    (tmp_path / "d" / "link").unlink()
    (tmp_path / "dirlink").symlink_to(tmp_path / "d", target_is_directory=True)
    with pytest.raises(DigestError):
        digests.manifest(tmp_path)
    (tmp_path / "dirlink").unlink()
    # Model Signing checks every entry before its ignore rules, so a link inside .git is refused.
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "link").symlink_to(tmp_path / "w.bin")
    with pytest.raises(DigestError):
        digests.manifest(tmp_path)
    with pytest.raises(ValueError):
        oms_items(tmp_path)
    (tmp_path / ".git" / "link").unlink()
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DigestError, match="regular"):
        digests.manifest(tmp_path)
    (tmp_path / "pipe").unlink()
    (tmp_path / "root-link").symlink_to(tmp_path / "d", target_is_directory=True)
    with pytest.raises(DigestError):
        digests.manifest(tmp_path / "root-link")


def test_missing_and_empty_paths_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DigestError):
        digests.manifest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DigestError):
        digests.manifest(tmp_path / "empty")
    (tmp_path / "only-git" / ".git").mkdir(parents=True)
    (tmp_path / "only-git" / ".git" / "HEAD").write_text("x")
    with pytest.raises(DigestError, match="no files"):
        digests.manifest(tmp_path / "only-git")


def test_non_utf8_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"1")
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff"), "wb") as fh:
        fh.write(b"2")
    with pytest.raises(DigestError, match="UTF-8"):
        digests.manifest(tmp_path)


def test_opaque_digest_is_stable_and_separated_from_content() -> None:
    a = digests.opaque_digest("openai:gpt-4.1")
    assert a == digests.opaque_digest("openai:gpt-4.1") != digests.opaque_digest("openai:gpt-4o")
    assert a != hashlib.sha256(b"openai:gpt-4.1").hexdigest()
    with pytest.raises(DigestError):
        digests.opaque_digest("  ")


@pytest.mark.parametrize("layout", ["directory", "single-file"])
def test_equals_openssf_model_signing_subject(tmp_path: Path, layout: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "B.txt").write_text("upper case sorts first")
    (model / "weights").mkdir()
    (model / "weights" / "model-00001.safetensors").write_bytes(bytes(range(256)) * 5000)
    target = model if layout == "directory" else model / "config.json"
    assert digests.artifact_digest(target) == oms_items(target)[1]


# --- generated trees -------------------------------------------------------------------------

_SPECIAL_NAMES = [
    "tokenizer",
    "tokenizer.json",
    "tokenizer-config",
    "tokenizer config",
    "tokenizer_",
    "a",
    "a.b",
    "A",
    "-",
    ".hidden",
    ".git",
    ".gitignore",
    ".github",
    ".gitattributes",
    "model.sig",
    "é",
    "e\u0301",
    "日本語",
    "ü.bin",
    "🦉",
    "z~",
]
_ALPHABET = "abAB.-_ ~é日\u0301🦉"
_names = st.one_of(
    st.sampled_from(_SPECIAL_NAMES),
    st.text(alphabet=_ALPHABET, min_size=1, max_size=6).filter(lambda s: s not in {".", ".."}),
)
_trees = st.recursive(
    st.binary(max_size=40),
    lambda children: st.dictionaries(_names, children, min_size=1, max_size=4),
    max_leaves=14,
)
_roots = st.dictionaries(_names, _trees, min_size=1, max_size=5)
_ignores = st.lists(
    st.sampled_from(
        ["tokenizer", "tokenizer.json", "a/a.b", "a", "../a", "x/../a", "日本語", "é/"]
    ),
    max_size=2,
)


def _write(folder: Path, tree: dict[str, Any]) -> None:
    for name, node in tree.items():
        p = folder / name
        if isinstance(node, dict):
            p.mkdir()
            _write(p, node)
        else:
            p.write_bytes(node)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=_roots,
    ignore=_ignores,
    keep_signature=st.booleans(),
    link_at=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_generated_trees_equal_model_signing(
    tree: dict[str, Any], ignore: list[str], keep_signature: bool, link_at: int | None
) -> None:
    signature = None if keep_signature else "model.sig"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "model"
        root.mkdir()
        _write(root, tree)
        if link_at is not None:  # a link anywhere (ignored folders included) is refused by both
            folders = sorted([root, *(p for p in root.rglob("*") if p.is_dir())])
            (folders[link_at % len(folders)] / "zz-link").symlink_to(root)
            with pytest.raises(ValueError):
                oms_items(root, ignore, signature=signature)
            with pytest.raises(DigestError, match="symbolic link"):
                ours(root, ignore, signature=signature)
            return
        items, subject = oms_items(root, ignore, signature=signature)
        if not items:
            with pytest.raises(DigestError):
                ours(root, ignore, signature=signature)
            return
        m = ours(root, ignore, signature=signature)
        assert [(e.path, e.sha256) for e in m.files] == items
        assert m.digest == subject
        assert all(e.size == (root / e.path).stat().st_size for e in m.files)
