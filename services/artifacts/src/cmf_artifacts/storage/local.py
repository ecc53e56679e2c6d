"""The local ``BlobStore``: a folder laid out as a DVC remote (``<root>/files/md5/xx/yyyy…``).

A write goes to ``<root>/tmp/`` first and is renamed into place once its md5 is checked, so
the address holds a whole, verified blob or nothing; a session's parts are files of their own
under ``<root>/uploads/<session>/``. File work runs in threads (the event loop never waits on
the disk).

Nothing outside the folder is read or written through it (``cmf_common.contained``): a blob or
named file whose real path leads out of the folder is as good as missing, and a write whose
folder resolves outside it is refused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from cmf_artifacts.digests import Hashes, Stored, content_md5, object_key
from cmf_artifacts.storage import (
    FILES_FOLDER,
    READ_CHUNK,
    BlobInfo,
    FileInfo,
    PartInfo,
    blob_not_stored,
    file_not_stored,
    mismatch,
    session_not_open,
    too_large,
)
from cmf_common.contained import folder_inside, open_inside, size_inside
from cmf_common.errors import NotFound

# Bytes gathered before one write to the file (one thread hop per MiB, not per chunk).
WRITE_BUFFER = 1024 * 1024
# A part is ``<number>-<md5>``: its listing needs no second read of its bytes.
_PART = "{:05d}-{}"


class LocalBlobStore:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.uploads = root / "uploads"
        self.files = root / FILES_FOLDER.rstrip("/")
        for folder in (self.tmp, self.uploads, self.files):
            folder.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / object_key(digest)

    async def check(self) -> None:
        if not await asyncio.to_thread(os.access, self.root, os.W_OK):
            raise OSError(f"{self.root} is not writable")

    async def stat(self, digest: str) -> BlobInfo | None:
        size = await asyncio.to_thread(size_inside, self.root, self.path(digest))
        return None if size is None else BlobInfo(digest, size)

    async def write(
        self,
        digest: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        size_hint: int | None = None,
    ) -> Stored:
        temp = self.tmp / uuid.uuid4().hex
        try:
            hashes = await _spool(chunks, temp, max_bytes)
            md5 = hashes.md5.hexdigest()
            if md5 != content_md5(digest):
                raise mismatch(content_md5(digest), md5)
            await asyncio.to_thread(_publish, self.root, temp, self.path(digest))
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
        return Stored(digest, md5, hashes.sha256.hexdigest(), hashes.size)

    def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        missing = blob_not_stored(digest)
        return _read(self.root, self.path(digest), missing, start, end)

    async def delete(self, digest: str) -> None:
        await asyncio.to_thread(self.path(digest).unlink, missing_ok=True)

    # --- named files ------------------------------------------------------------------------

    def file_path(self, key: str) -> Path:
        return self.files.joinpath(*key.split("/"))

    async def put_file(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int, replace: bool = True
    ) -> FileInfo | None:
        temp = self.tmp / uuid.uuid4().hex
        try:
            hashes = await _spool(chunks, temp, max_bytes)
            placed = await asyncio.to_thread(
                _place_file, self.root, temp, self.file_path(key), replace
            )
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
        return FileInfo(key, hashes.size) if placed else None

    async def stat_file(self, key: str) -> FileInfo | None:
        size = await asyncio.to_thread(size_inside, self.root, self.file_path(key))
        return None if size is None else FileInfo(key, size)

    def read_file(self, key: str) -> AsyncIterator[bytes]:
        return _read(self.root, self.file_path(key), file_not_stored(key))

    async def list_files(self, prefix: str) -> list[FileInfo]:
        return await asyncio.to_thread(_list_files, self.root, self.files, prefix)

    async def create_session(self, session: str) -> str:
        await asyncio.to_thread((self.uploads / session).mkdir, parents=True, exist_ok=True)
        return session

    async def write_part(
        self,
        session: str,
        handle: str,
        number: int,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
    ) -> PartInfo:
        folder = self.uploads / handle
        if not await asyncio.to_thread(folder.is_dir):
            raise session_not_open(session)
        temp = folder / f".{uuid.uuid4().hex}"
        try:
            hashes = await _spool(chunks, temp, max_bytes)
            await asyncio.to_thread(_place_part, folder, number, hashes.md5.hexdigest(), temp)
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
        return PartInfo(number, hashes.size, hashes.md5.hexdigest())

    async def list_parts(self, session: str, handle: str) -> list[PartInfo]:
        return await asyncio.to_thread(_list_parts, self.uploads / handle)

    async def complete_session(
        self, session: str, handle: str, digest: str, parts: list[PartInfo], *, max_bytes: int
    ) -> Stored:
        folder = self.uploads / handle
        temp = self.tmp / uuid.uuid4().hex
        try:
            hashes = await asyncio.to_thread(_concatenate, folder, parts, temp, max_bytes)
            md5 = hashes.md5.hexdigest()
            if md5 != content_md5(digest):
                await self.abort_session(session, handle)
                raise mismatch(content_md5(digest), md5)
            await asyncio.to_thread(_publish, self.root, temp, self.path(digest))
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
        await self.abort_session(session, handle)
        return Stored(digest, md5, hashes.sha256.hexdigest(), hashes.size)

    async def abort_session(self, session: str, handle: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.uploads / handle, True)

    async def sweep(self, older_than: datetime, keep: set[str]) -> int:
        return await asyncio.to_thread(self._sweep, older_than.timestamp(), keep)

    def _sweep(self, cutoff: float, keep: set[str]) -> int:
        swept = 0
        for entry in [*self.tmp.iterdir(), *self.uploads.iterdir()]:
            if entry.name in keep:
                continue
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, True)
                else:
                    entry.unlink(missing_ok=True)
                swept += 1
            except FileNotFoundError:
                continue
        return swept

    async def presign_read(self, digest: str, expires_s: int) -> str | None:
        return None

    async def presign_part(
        self, session: str, handle: str, number: int, expires_s: int
    ) -> str | None:
        return None


async def _spool(chunks: AsyncIterable[bytes], temp: Path, max_bytes: int) -> Hashes:
    """Write the stream to ``temp``, hashing it; :func:`too_large` past ``max_bytes``."""
    hashes = Hashes()
    handle: BinaryIO = await asyncio.to_thread(open, temp, "wb")
    try:
        buffer = bytearray()
        async for chunk in chunks:
            hashes.update(chunk)
            if hashes.size > max_bytes:
                raise too_large(max_bytes)
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER:
                await asyncio.to_thread(handle.write, buffer)
                buffer = bytearray()
        if buffer:
            await asyncio.to_thread(handle.write, buffer)
        await asyncio.to_thread(_flush, handle)
    finally:
        await asyncio.to_thread(handle.close)
    return hashes


def _flush(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _publish(root: Path, temp: Path, path: Path) -> None:
    """Rename a verified blob into place (one rename: a reader sees all of it or none)."""
    folder_inside(root, path.parent)
    os.replace(temp, path)


def _part_files(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        raise session_not_open(folder.name)
    found: dict[int, Path] = {}
    for entry in folder.iterdir():
        number, _, md5 = entry.name.partition("-")
        if number.isdigit() and md5:
            found[int(number)] = entry
    return found


def _place_part(folder: Path, number: int, md5: str, temp: Path) -> None:
    """Put a part in place; a part sent again replaces the earlier one."""
    earlier = _part_files(folder).get(number)
    target = folder / _PART.format(number, md5)
    os.replace(temp, target)
    if earlier is not None and earlier != target:
        earlier.unlink(missing_ok=True)


def _list_parts(folder: Path) -> list[PartInfo]:
    return [
        PartInfo(number, path.stat().st_size, path.name.partition("-")[2])
        for number, path in sorted(_part_files(folder).items())
    ]


def _concatenate(folder: Path, parts: list[PartInfo], temp: Path, max_bytes: int) -> Hashes:
    hashes = Hashes()
    files = _part_files(folder)
    with temp.open("wb") as out:
        for part in parts:
            with files[part.number].open("rb") as handle:
                while chunk := handle.read(READ_CHUNK):
                    hashes.update(chunk)
                    if hashes.size > max_bytes:
                        raise too_large(max_bytes)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return hashes


async def _read(
    root: Path, path: Path, missing: NotFound, start: int = 0, end: int | None = None
) -> AsyncIterator[bytes]:
    """The bytes ``start``..``end`` (inclusive) of ``path``; ``missing`` when it is not there,
    is no regular file or resolves outside ``root``."""
    try:
        handle = await asyncio.to_thread(open_inside, root, path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise missing from None
    try:
        await asyncio.to_thread(handle.seek, start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            want = READ_CHUNK if left is None else min(READ_CHUNK, left)
            chunk = await asyncio.to_thread(handle.read, want)
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _place_file(root: Path, temp: Path, path: Path, replace: bool) -> bool:
    """Move a finished file into place; ``False`` when ``replace`` is off and one is there."""
    folder_inside(root, path.parent)
    if replace:
        os.replace(temp, path)
        return True
    try:
        os.link(temp, path)  # fails, atomically, when the name is taken
    except FileExistsError:
        return False
    return True


def _list_files(store: Path, root: Path, prefix: str) -> list[FileInfo]:
    """Every regular file under ``root`` whose key (its path below ``root``) starts with
    ``prefix``; symlinked folders are not entered, files that resolve outside ``store`` are
    left out."""
    folder, _, _ = prefix.rpartition("/")
    start = root.joinpath(*folder.split("/")) if folder else root
    found = []
    for directory, _, names in os.walk(start):
        for name in names:
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if key.startswith(prefix) and (size := size_inside(store, path)) is not None:
                found.append(FileInfo(key, size))
    return sorted(found, key=lambda f: f.key)
