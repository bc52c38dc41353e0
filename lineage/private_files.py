"""Files only their owner can read: keys, tokens, the database and the folder that holds them.

A secret is private from the moment its file exists or not at all. Creating a file with the
default mode and narrowing it afterwards (`chmod` after `write`) leaves a window in which another
local user can open it and keep the descriptor; a crash in that window leaves the secret readable
for good. So every file here is created by `os.open(O_CREAT | O_EXCL, 0o600)`: the kernel applies
the mode at creation, and `O_EXCL` refuses a file (or a link) someone placed at that name first.

Replacing a file goes through a temporary file in the same folder, created the same way, written,
fsynced and renamed over the target (`os.replace` is atomic on POSIX), so a reader sees the old
content or the new one, never half of it, and a leftover temporary file from a crash is never
reused: it is private too and a new one gets a fresh random name.

Folders that hold secrets are 0700; an existing folder that its group or others can enter is
refused rather than silently narrowed, because what it exposed before cannot be taken back and
the operator should know (the message says how to fix it).

This module is pure (standard library only): the command line (`keygen`, token files) and the
server (data folder, admin token, log key, eval runs) use the same rules.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from .errors import LineageError

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "PrivateFileError",
    "check_private",
    "ensure_private_dir",
    "write_private",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO  # 0o077: any bit for the group or others


class PrivateFileError(LineageError):
    """A secret's file or folder is (or would be) readable by others, or cannot be made private.

    Attributes:
        path: the file or folder concerned.
        mode: its permission bits when it exists, else None.
    """

    def __init__(self, message: str, *, path: Path, mode: int | None = None) -> None:
        super().__init__(message, field=None)
        self.path = path
        self.mode = mode


def _mode_text(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def check_private(path: str | os.PathLike[str], *, follow_symlinks: bool = False) -> None:
    """Raise unless `path` exists, is not a symlink, and no group or other bit is set.

    A symlink is refused because its own mode says nothing: the target could be anywhere and
    readable by anyone. With `follow_symlinks` (a folder an operator placed elsewhere and linked
    to), the target is checked instead.

    Raises:
        PrivateFileError: missing, a symlink (unless followed), or open to the group or others.
    """
    p = Path(path)
    try:
        st = os.stat(p) if follow_symlinks else os.lstat(p)
    except FileNotFoundError:
        raise PrivateFileError(f"{p} does not exist", path=p) from None
    if stat.S_ISLNK(st.st_mode):
        raise PrivateFileError(
            f"{p} is a symbolic link; a secret must be a plain file or folder", path=p
        )
    if st.st_mode & _OPEN_TO_OTHERS:
        fix = "700" if stat.S_ISDIR(st.st_mode) else "600"
        raise PrivateFileError(
            f"{p} is mode {_mode_text(st.st_mode)}: its group or others can read it; "
            f"fix it with `chmod {fix} {p}`",
            path=p,
            mode=stat.S_IMODE(st.st_mode),
        )


def ensure_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and missing parents) with the folder itself 0700, or check an existing one.

    Missing parents get the ordinary mode (they hold no secret themselves); the folder named is
    created 0700 from the start. An existing folder is never narrowed here: if its group or others
    can enter it, a `PrivateFileError` says so and how to fix it.

    A symlink to a folder is followed (operators put data folders on other volumes); the folder
    it points to must be private.

    Returns:
        The folder's path.

    Raises:
        PrivateFileError: it exists and is not a folder, or it (or what it links to) is open to
            others.
    """
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        p.parent.mkdir(parents=True, exist_ok=True)
        # created by someone else between the check and here: checked below
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, PRIVATE_DIR_MODE)
    try:
        st = os.stat(p)  # a link to a folder elsewhere is fine if that folder is private
    except FileNotFoundError:
        raise PrivateFileError(f"{p} is a link to nothing", path=p) from None
    if not stat.S_ISDIR(st.st_mode):
        raise PrivateFileError(f"{p} exists and is not a folder", path=p)
    check_private(p, follow_symlinks=True)
    return p


def _create_exclusive(path: Path, mode: int) -> int:
    """Open a new file for writing with `mode` applied by the kernel at creation."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (the folder's entry), where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the data itself is synced
    finally:
        os.close(fd)


def write_private(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path`, readable by its owner only from the moment the file exists.

    The bytes go to a temporary file in the same folder, created 0600 with `O_EXCL` (a random
    name, so a leftover temporary file is never reused or followed), fsynced, then renamed over
    `path`. If `path` exists and `overwrite` is set, the new file takes the narrower of 0600 and
    the old file's mode, so replacing a file never widens it (a 0400 key stays 0400). The folder
    must already exist; it is not created or checked here (see `ensure_private_dir`).

    Args:
        path: the file to write.
        data: its whole new content.
        overwrite: replace an existing file; without it an existing file is an error.

    Returns:
        The path written.

    Raises:
        FileExistsError: `path` exists and `overwrite` is not set.
        PrivateFileError: `path` is a symlink or not a plain file.
    """
    p = Path(path)
    mode = PRIVATE_FILE_MODE
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not overwrite:
            raise FileExistsError(f"{p} exists")
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise PrivateFileError(
                f"{p} is not a plain file; refusing to replace it", path=p, mode=st.st_mode
            )
        mode = PRIVATE_FILE_MODE & stat.S_IMODE(st.st_mode)
    folder = p.parent
    for _ in range(16):
        tmp = folder / f".{p.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = _create_exclusive(tmp, mode)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 16 collisions of 64 random bits
        raise PrivateFileError(f"cannot create a temporary file next to {p}", path=p)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        if not overwrite:
            # Without overwrite, a file that appeared since the check wins: link() fails on an
            # existing name where replace() would silently take it over.
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise FileExistsError(f"{p} exists") from None
            except OSError:  # a filesystem without hard links: the race is back, but narrow
                if p.exists():
                    raise FileExistsError(f"{p} exists") from None
                os.replace(tmp, p)
            else:
                os.unlink(tmp)
        else:
            os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
    return p
