"""Files read and written only inside a store's folder (issue 12 item 10).

A store's folder may hold a symlink someone planted in it. Reading through it must not serve a
file outside the folder, and writing through it must not put one there. So a path is resolved
(every symlink followed) before it is used: a file whose real path leads out of the folder is
as good as missing, and a write whose folder leads out of it is refused. A symlink to another
file of the same store is followed: it reveals nothing the store does not already serve. The
metadata service's files folder and the artifact service's local store both keep to this.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path


def real_inside(root: Path, path: Path) -> Path:
    """``path``'s real path, when it exists and stays inside ``root``; else
    ``FileNotFoundError``."""
    real = path.resolve(strict=True)  # FileNotFoundError when missing
    if not real.is_relative_to(root.resolve()):
        raise FileNotFoundError(2, "No such file or directory", str(path))
    return real


def folder_inside(root: Path, folder: Path) -> None:
    """Make ``folder`` (and its parents); ``PermissionError`` when it resolves outside
    ``root``."""
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.resolve().is_relative_to(root.resolve()):
        raise PermissionError(13, "the folder leads outside the store", str(folder))


def open_inside(root: Path, path: Path) -> io.BufferedReader:
    """``path`` opened for reading, when it is a regular file inside ``root``; else
    ``FileNotFoundError`` (or ``IsADirectoryError``)."""
    try:
        # O_NOFOLLOW: a symlink swapped in after the check is refused, not followed.
        fd = os.open(real_inside(root, path), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | NotADirectoryError) or exc.errno == errno.ELOOP:
            raise FileNotFoundError(2, "No such file or directory", str(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(21, "Not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def size_inside(root: Path, path: Path) -> int | None:
    """The size of the regular file at ``path`` inside ``root``; ``None`` when there is none."""
    try:
        info = real_inside(root, path).stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
