"""Content digests of models and datasets.

An artifact's identity is its content. For a file or a directory we build a manifest (sorted
relative POSIX paths, sizes, per-file sha256) by streaming each file in 1 MiB chunks, so a
multi-GB checkpoint never sits in memory. The artifact digest is chosen to equal the subject
digest that OpenSSF Model Signing v1.0 (file serialization, sha256) signs for the same directory:
sha256 over the concatenated raw per-file digests in path order. A model signed with that tool and
registered here is therefore recognised as the same artifact. Paths and sizes are not bound by
that digest; they are kept in the manifest we store alongside, so a reviewer can see what was
hashed.

Like Model Signing, we skip git bookkeeping (`.git`, `.gitattributes`, `.github`, `.gitignore`),
which is not model content.

A model known only behind an API has no bytes to hash; its digest is the sha256 of its provider's
identifier (`opaque_digest`), with a prefix so that it can never collide with a file digest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DigestError

__all__ = [
    "IGNORED_NAMES",
    "FileEntry",
    "Manifest",
    "artifact_digest",
    "file_sha256",
    "manifest",
    "opaque_digest",
]

CHUNK = 1 << 20
IGNORED_NAMES = frozenset({".git", ".gitattributes", ".github", ".gitignore"})
_OPAQUE_PREFIX = b"studbook:opaque:v1\x00"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a manifest."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files of an artifact, sorted by path, and the artifact digest derived from them."""

    files: tuple[FileEntry, ...]

    @property
    def digest(self) -> str:
        """sha256 over the raw file digests in path order (Model Signing v1.0's subject)."""
        h = hashlib.sha256()
        for entry in self.files:
            h.update(bytes.fromhex(entry.sha256))
        return h.hexdigest()

    @property
    def total_size(self) -> int:
        """Sum of file sizes in bytes."""
        return sum(e.size for e in self.files)

    def to_json(self) -> list[dict[str, object]]:
        """The manifest as JSON-ready rows."""
        return [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files]


def file_sha256(
    path: str | os.PathLike[str], progress: Callable[[int], object] | None = None
) -> str:
    """Stream a file through sha256 and return the hex digest.

    Args:
        path: the file.
        progress: called with the byte count of each chunk read (progress bars).
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest()


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for name in filenames:
            if name in IGNORED_NAMES:
                continue
            p = Path(dirpath, name)
            if p.is_symlink():
                # A link can point outside the artifact; hashing its target would make the
                # digest depend on files the artifact does not contain.
                raise DigestError(f"symbolic link in artifact: {p}", field="path")
            found.append(p)
    return found


def manifest(
    path: str | os.PathLike[str], progress: Callable[[int], object] | None = None
) -> Manifest:
    """Build the manifest of a file or a directory.

    A single file yields a one-entry manifest named by its file name, as Model Signing does.
    `progress` is called with byte counts as files are read.

    Raises:
        DigestError: the path does not exist, is empty, or holds a symbolic link.
    """
    root = Path(path)
    if root.is_file():
        return Manifest((FileEntry(root.name, root.stat().st_size, file_sha256(root, progress)),))
    if not root.is_dir():
        raise DigestError(f"no such file or directory: {root}", field="path")
    files = _walk(root)
    if not files:
        raise DigestError(f"directory holds no files: {root}", field="path")
    entries = [
        FileEntry(p.relative_to(root).as_posix(), p.stat().st_size, file_sha256(p, progress))
        for p in files
    ]
    entries.sort(key=lambda e: e.path)
    return Manifest(tuple(entries))


def artifact_digest(path: str | os.PathLike[str]) -> str:
    """The 64-hex artifact digest of a file or directory (see module docstring)."""
    return manifest(path).digest


def opaque_digest(identifier: str) -> str:
    """Digest of an API-only model, from its provider's identifier (e.g. `openai:gpt-4.1`)."""
    if not identifier.strip():
        raise DigestError("opaque identifier must not be empty", field="identifier")
    return hashlib.sha256(_OPAQUE_PREFIX + identifier.encode("utf-8")).hexdigest()
