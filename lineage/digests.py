"""Content digests of models and datasets.

An artifact's identity is its content. For a file or a directory we build a manifest (relative
POSIX paths, sizes, per-file sha256) by streaming each file in 1 MiB chunks, so a multi-GB
checkpoint never sits in memory. The artifact digest is, on purpose, exactly the subject digest
that OpenSSF Model Signing (v1.x, file serialization, sha256) signs for the same directory: sha256
over the concatenated raw per-file digests in Model Signing's order. A model signed with that tool
and registered here is therefore recognised as the same artifact, and a Model Signing bundle can be
taken in as evidence for a Studbook artifact without re-hashing anything on the server.

Being identical means copying Model Signing's rules, including the ones that look arbitrary:

- **Order.** Files are sorted by their path *components* (Model Signing sorts `PurePath`s), not by
  the whole path string. The two differ when a name sorts before `/`: `tokenizer.json` comes after
  the folder `tokenizer/` component-wise (`"tokenizer" < "tokenizer.json"`), but before
  `tokenizer/vocab.txt` as strings (`"." < "/"`).
- **Git bookkeeping** (`.git`, `.gitattributes`, `.github`, `.gitignore`) is left out only at the
  root of the directory; a `.gitignore` in a subfolder is content.
- **The signature** Model Signing writes (`model.sig` by default) is left out when it lies in the
  directory, as `model_signing sign DIR --signature DIR/model.sig` does; pass `signature=None` to
  hash it like any file.
- **`ignore_paths`** are relative to the root (absolute paths count only inside it) and are matched
  by path components: ignoring `a` leaves out the file `a` and everything under the folder `a`, but
  not `ab`; a path that is not under the root (`../x`) ignores nothing.
- **Links and special files are refused** anywhere in the tree, even inside an ignored folder
  (Model Signing checks every entry before it applies its ignore rules): a link can point outside
  the artifact, and a FIFO would block the reader.

Paths and sizes are not bound by the digest; they are kept in the manifest stored alongside, so a
reviewer can see what was hashed. A single file yields a one-entry manifest named by its file name
(Model Signing names it `.`; the digest is the same).

A model known only behind an API has no bytes to hash; its digest is the sha256 of its provider's
identifier (`opaque_digest`), with a prefix so that it can never collide with a file digest.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import DigestError

__all__ = [
    "GIT_PATHS",
    "IGNORED_NAMES",
    "SIGNATURE_NAME",
    "FileEntry",
    "Manifest",
    "artifact_digest",
    "digest_of_file_digests",
    "file_sha256",
    "manifest",
    "opaque_digest",
    "sort_key",
]

CHUNK = 1 << 20
GIT_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
# Kept for callers of the earlier API; these names are ignored at the root only.
IGNORED_NAMES = frozenset(GIT_PATHS)
SIGNATURE_NAME = "model.sig"
_OPAQUE_PREFIX = b"studbook:opaque:v1\x00"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a manifest."""

    path: str
    size: int
    sha256: str


def sort_key(path: str) -> tuple[str, ...]:
    """Model Signing's order for a relative POSIX path: by components, not by the whole string."""
    return tuple(path.split("/"))


def digest_of_file_digests(file_digests: Iterable[str]) -> str:
    """sha256 over raw per-file digests, in the order given (Model Signing's subject digest)."""
    h = hashlib.sha256()
    for d in file_digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    """An artifact's files in Model Signing's order, and the artifact digest derived from them."""

    files: tuple[FileEntry, ...]

    @property
    def digest(self) -> str:
        """sha256 over the raw file digests in manifest order (Model Signing's subject)."""
        return digest_of_file_digests(e.sha256 for e in self.files)

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


def _ignored_parts(
    root: Path,
    ignore_paths: Iterable[str | os.PathLike[str]],
    ignore_git_paths: bool,
    signature: str | os.PathLike[str] | None,
) -> list[tuple[str, ...]]:
    """Ignore rules as component tuples relative to `root`, resolved as Model Signing does.

    Model Signing joins each path to the model directory and keeps it only if the result is
    lexically under it (no symlink resolution, `..` kept as a component, so it matches nothing).
    """
    candidates: list[str | os.PathLike[str]] = list(ignore_paths)
    if signature is not None:
        candidates.append(signature)
    if ignore_git_paths:
        candidates.extend(GIT_PATHS)
    out: list[tuple[str, ...]] = []
    for p in candidates:
        full = root / Path(p)
        try:
            rel = full.relative_to(root)
        except ValueError:
            continue
        out.append(rel.parts)
    return out


def _check_name(path: Path, name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # A name that is not UTF-8 cannot be stored or signed as text; refuse it up front
        # rather than fail after hashing gigabytes.
        raise DigestError(
            f"file name is not valid UTF-8: {os.fsencode(path)!r}", field="path"
        ) from None


def _walk(root: Path) -> list[tuple[tuple[str, ...], Path, int]]:
    """Every regular file under `root` as (components, path, size); links and specials refused."""
    found: list[tuple[tuple[str, ...], Path, int]] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise DigestError(
                f"cannot read directory {folder}: {exc.strerror}", field="path"
            ) from exc
        for entry in entries:
            p = Path(entry.path)
            _check_name(p, entry.name)
            parts = (*prefix, entry.name)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise DigestError(f"cannot stat {p}: {exc.strerror}", field="path") from exc
            if stat.S_ISLNK(st.st_mode):
                # A link can point outside the artifact; hashing its target would make the
                # digest depend on files the artifact does not contain.
                raise DigestError(f"symbolic link in artifact: {p}", field="path")
            if stat.S_ISDIR(st.st_mode):
                stack.append((p, parts))
            elif stat.S_ISREG(st.st_mode):
                found.append((parts, p, st.st_size))
            else:
                raise DigestError(f"not a regular file or directory: {p}", field="path")
    return found


def manifest(
    path: str | os.PathLike[str],
    progress: Callable[[int], object] | None = None,
    *,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    signature: str | os.PathLike[str] | None = SIGNATURE_NAME,
) -> Manifest:
    """Build the manifest of a file or a directory, in Model Signing's order.

    Args:
        path: the file or directory.
        progress: called with byte counts as files are read.
        ignore_paths: paths relative to the directory (or absolute inside it) to leave out; a
            folder leaves out everything under it. Model Signing's `ignore_paths`.
        ignore_git_paths: leave out `.git`, `.gitattributes`, `.github`, `.gitignore` at the root.
        signature: the signature file to leave out (relative to the directory, or absolute);
            `None` hashes it like any other file.

    Raises:
        DigestError: the path does not exist, holds no files after the ignore rules, or holds a
            symbolic link, a special file or a name that is not UTF-8.
    """
    root = Path(path)
    if root.is_symlink():
        raise DigestError(f"symbolic link in artifact: {root}", field="path")
    if root.is_file():
        _check_name(root, root.name)
        return Manifest((FileEntry(root.name, root.stat().st_size, file_sha256(root, progress)),))
    if not root.is_dir():
        raise DigestError(f"no such file or directory: {root}", field="path")
    ignored = _ignored_parts(root, ignore_paths, ignore_git_paths, signature)
    files = [f for f in _walk(root) if not any(f[0][: len(ig)] == ig for ig in ignored)]
    if not files:
        raise DigestError(f"directory holds no files: {root}", field="path")
    files.sort(key=lambda f: f[0])
    entries = tuple(
        FileEntry("/".join(parts), size, file_sha256(p, progress)) for parts, p, size in files
    )
    return Manifest(entries)


def artifact_digest(
    path: str | os.PathLike[str],
    *,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    signature: str | os.PathLike[str] | None = SIGNATURE_NAME,
) -> str:
    """The 64-hex artifact digest of a file or directory (see module docstring; the options are
    `manifest`'s)."""
    return manifest(
        path, ignore_paths=ignore_paths, ignore_git_paths=ignore_git_paths, signature=signature
    ).digest


def opaque_digest(identifier: str) -> str:
    """Digest of an API-only model, from its provider's identifier (e.g. `openai:gpt-4.1`)."""
    if not identifier.strip():
        raise DigestError("opaque identifier must not be empty", field="identifier")
    return hashlib.sha256(_OPAQUE_PREFIX + identifier.encode("utf-8")).hexdigest()
