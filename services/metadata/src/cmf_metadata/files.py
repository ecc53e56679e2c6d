"""The files the CMF client uploads (docs/wire-contract.md §1.3): python envs, label CSVs,
tensorboard logs.

They live behind the :class:`FileStore` port under three folders: ``env/<basename>``,
``labels/<label md5>`` and ``tensorboard-logs/<pipeline>/<relative path>``. The embedded server
uses :class:`LocalFileStore` (a folder in its data dir); in distributed mode
:class:`ArtifactFileStore` keeps the same keys in the artifact service's store
(``/api/native/v1/files``, S3 there), so every replica of this service reads the same files
(``FILES_STORAGE``).

Every name that reaches a key is checked here first: a ``..`` segment, an absolute path, a NUL
byte or (where one plain name is expected) a separator is a 400 and nothing is written. Uploads
are streamed to a temporary file beside their destination, fsynced and renamed into place, so a
reader never sees a torn file; one over ``max_bytes`` is a 413 and leaves nothing behind.
A read resolves the key's real path first: a file that resolves outside the store (a symlink
planted in the files dir) is served, listed and zipped as if it were not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import httpx

from cmf_common.access import check_push, check_write, current_principal
from cmf_common.contained import folder_inside, open_inside, real_inside
from cmf_common.errors import DomainError, NotFound, PayloadTooLarge

ENV = "env"
LABELS = "labels"
TENSORBOARD = "tensorboard-logs"
MAX_SEGMENT_BYTES = 255  # the longest file name Linux file systems take
MAX_SEGMENTS = 32
CHUNK_BYTES = 1024 * 1024
TEMP_PREFIX, TEMP_SUFFIX = ".upload-", ".part"

Chunks = AsyncIterator[bytes]


class BadFileName(DomainError):
    """A name that would leave its folder, or that no file system takes."""

    status = 400
    code = "invalid_file_name"
    title = "Invalid file name"


class UploadTooLarge(PayloadTooLarge):
    code = "upload_too_large"


class ArchiveUnavailable(Exception):
    """The python-env archive cannot be built; the reference answers 200 ``{"error": ...}``."""


@dataclass(frozen=True)
class StoredFile:
    key: str  # "/"-separated, relative to the store's root
    size: int


class FileStore(Protocol):
    """Where uploaded files live. Keys are "/"-separated relative paths, already checked."""

    async def save(self, key: str, chunks: Chunks, *, max_bytes: int, replace: bool = True) -> bool:
        """Store the bytes of ``chunks`` under ``key``, all or nothing. With ``replace=False`` an
        existing file is kept and ``False`` returned. Raises :class:`UploadTooLarge` past
        ``max_bytes`` (nothing is stored) and ``OSError`` when the storage fails."""
        ...

    async def open(self, key: str) -> Chunks:
        """The bytes under ``key``, in chunks; raises ``FileNotFoundError`` when there are none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str) -> list[StoredFile]:
        """Every file whose key starts with the folder ``prefix``, sorted by key."""
        ...

    def location(self, prefix: str) -> str:
        """Where the folder ``prefix`` is, in words a user can follow (for messages); no
        server internals such as an absolute path."""
        ...

    async def clean_interrupted_uploads(self) -> int:
        """Remove what uploads cut off by a crash left behind; called once as the service starts,
        before any upload. Returns how many were removed."""
        ...


# ---- names -------------------------------------------------------------------------------------


def _check_segment(segment: str, original: str) -> str:
    if segment in ("", ".", ".."):
        raise BadFileName(f"invalid file name '{original}': empty, '.' or '..' path segment")
    if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise BadFileName(f"invalid file name '{original}': a segment is over 255 bytes")
    return segment


def _check_text(name: str) -> None:
    if "\x00" in name:
        raise BadFileName("invalid file name: it contains a NUL byte")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise BadFileName("invalid file name: it is not valid UTF-8")


def plain_name(name: str) -> str:
    """A single file name, as a query parameter names a file: no separator, no ``..``."""
    _check_text(name)
    if "/" in name or "\\" in name:
        raise BadFileName(f"invalid file name '{name}': it must not contain '/' or '\\'")
    return _check_segment(name, name)


def upload_basename(filename: str) -> str:
    """The name an uploaded python env or label is kept under: the last segment of the
    client's path (the reference keeps the basename), refusing paths that try to climb or
    start at the root."""
    _check_text(filename)
    if filename.startswith("/") or "\\" in filename:
        raise BadFileName(f"invalid file name '{filename}': absolute path or '\\' separator")
    segments = filename.split("/")
    if ".." in segments:
        raise BadFileName(f"invalid file name '{filename}': it contains a '..' segment")
    return _check_segment(segments[-1], filename)


def relative_path(filename: str) -> str:
    """A relative path kept as sent (tensorboard logs keep their folders), inside its folder."""
    _check_text(filename)
    if filename.startswith("/") or "\\" in filename:
        raise BadFileName(f"invalid file name '{filename}': absolute path or '\\' separator")
    segments = filename.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise BadFileName(f"invalid file name '{filename}': more than {MAX_SEGMENTS} segments")
    return "/".join(_check_segment(s, filename) for s in segments)


# ---- the domain --------------------------------------------------------------------------------


def _failed(exc: OSError) -> dict[str, str]:
    return {"error": f"Failed to up load file: {exc.strerror or type(exc).__name__}"}


async def save_python_env(
    store: FileStore, filename: str, chunks: Chunks, *, max_bytes: int
) -> dict[str, str]:
    """``POST /python-env``: kept under its basename, replacing an older upload."""
    check_write()
    key = f"{ENV}/{upload_basename(filename)}"
    try:
        await store.save(key, chunks, max_bytes=max_bytes)
    except OSError as exc:
        return _failed(exc)
    return {"message": f"File '{filename}' uploaded successfully"}


async def save_label(
    store: FileStore, filename: str, chunks: Chunks, *, max_bytes: int
) -> dict[str, str]:
    """``POST /label``: the file name is the label's md5, so a label already there is kept."""
    check_write()
    key = f"{LABELS}/{upload_basename(filename)}"
    where = store.location(LABELS)
    try:
        if await store.exists(key) or not await store.save(
            key, chunks, max_bytes=max_bytes, replace=False
        ):
            return {"message": f"File '{filename}' already exists at {where}. Skipping upload."}
    except OSError as exc:
        return _failed(exc)
    return {"message": f"File '{filename}' uploaded successfully to {where}."}


async def save_tensorboard_log(
    store: FileStore, pipeline_name: str, filename: str, chunks: Chunks, *, max_bytes: int
) -> dict[str, str]:
    """``POST /tensorboard``: kept at its relative path inside the pipeline's folder (403
    outside the request's pipeline prefix)."""
    check_push(pipeline_name)
    key = f"{TENSORBOARD}/{plain_name(pipeline_name)}/{relative_path(filename)}"
    try:
        await store.save(key, chunks, max_bytes=max_bytes)
    except OSError as exc:
        return _failed(exc)
    return {"message": f"File '{filename}' uploaded successfully"}


async def tensorboard_logs(store: FileStore, pipeline_name: str) -> dict[str, object]:
    """``GET /tensorboard-logs``: what was uploaded for a pipeline (our own route); nothing
    for a pipeline outside the request's pipeline prefix."""
    folder = f"{TENSORBOARD}/{plain_name(pipeline_name)}/"
    visible = current_principal().allows_pipeline(pipeline_name)
    found = await store.list(folder) if visible else []
    return {
        "pipeline_name": pipeline_name,
        "files": [{"path": f.key[len(folder) :], "size": f.size} for f in found],
    }


async def _opened(store: FileStore, key: str) -> Chunks:
    try:
        return await store.open(key)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise NotFound("File not found") from exc


async def open_python_env(store: FileStore, file_name: str) -> Chunks:
    """``GET /python-env``: only ``.txt`` and ``.yaml`` files, as the reference allows. The name
    may carry the folder cmflib records it under (``cmf_artifacts/python_env_<md5>.txt``, what
    the UI sends): the reference reads its base name (``os.path.basename`` in server/app/main.py
    ``get_python_env``), and so do we, still refusing ``..``, absolute paths, ``\\`` and NUL."""
    if not (file_name.endswith(".txt") or file_name.endswith(".yaml")):
        raise BadFileName("Unsupported file extension. Use .txt or .yaml")
    return await _opened(store, f"{ENV}/{upload_basename(file_name)}")


async def open_label(store: FileStore, file_name: str) -> Chunks:
    """``GET /label-data``: the label CSV stored under its md5."""
    return await _opened(store, f"{LABELS}/{plain_name(file_name)}")


@dataclass(frozen=True)
class Archive:
    filename: str
    chunks: Chunks


async def python_env_archive(store: FileStore, list_of_files: list[str] | None) -> Archive:
    """``GET /download-python-env``: a zip of the named env files, or of all of them."""
    if list_of_files:
        entries = [(f"{ENV}/{plain_name(name)}", name) for name in list_of_files]
        for key, name in entries:
            if not await store.exists(key):
                raise ArchiveUnavailable(f"File {name} does not exist")
        filename = "python_env_files.zip"
    else:
        found = await store.list(f"{ENV}/")
        if not found:
            raise ArchiveUnavailable("Directory does not exist")
        entries = [(f.key, f.key[len(ENV) + 1 :]) for f in found]
        filename = "python_env_folder.zip"
    return Archive(filename, _zip(store, entries))


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream: zipfile writes into it, the response drains it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


async def _zip(store: FileStore, entries: Iterable[tuple[str, str]]) -> Chunks:
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED)
    for key, arcname in entries:
        with archive.open(arcname, "w", force_zip64=True) as entry:
            async for chunk in await store.open(key):
                await asyncio.to_thread(entry.write, chunk)  # deflate off the event loop
                if data := sink.take():
                    yield data
        if data := sink.take():
            yield data
    archive.close()
    yield sink.take()


# ---- the local-folder adapter ------------------------------------------------------------------


class LocalFileStore:
    """Files in a folder (the embedded server's ``<data-dir>/files``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def location(self, prefix: str) -> str:
        # The folder by its name in the store, never the server's absolute path.
        return f"the server's {prefix} folder"

    def _path(self, key: str) -> Path:
        segments = key.split("/")
        if "\x00" in key or key.startswith("/") or any(s in ("", ".", "..") for s in segments):
            raise ValueError(f"unsafe key {key!r}")  # the domain never builds one
        return self.root.joinpath(*segments)

    def _contained(self, key: str) -> Path:
        """The real path of the file under ``key`` if it stays inside the root (a symlink
        planted in the tree is as good as missing: ``cmf_common.contained``)."""
        return real_inside(self.root, self._path(key))

    async def save(self, key: str, chunks: Chunks, *, max_bytes: int, replace: bool = True) -> bool:
        path = self._path(key)
        await asyncio.to_thread(folder_inside, self.root, path.parent)
        fd, temp = await asyncio.to_thread(
            tempfile.mkstemp, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent
        )
        try:
            size = 0
            pending = bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(f"the file exceeds the upload limit of {max_bytes} bytes")
                pending += chunk
                if len(pending) >= CHUNK_BYTES:
                    await asyncio.to_thread(_write_all, fd, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(_finish, fd, bytes(pending))
            os.close(fd)
            fd = -1
            stored = await asyncio.to_thread(_publish, temp, path, replace)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return stored

    async def open(self, key: str) -> Chunks:
        handle = await asyncio.to_thread(open_inside, self.root, self._path(key))
        return _read(handle)

    def _is_file(self, key: str) -> bool:
        try:
            return self._contained(key).is_file()
        except OSError:
            return False

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._is_file, key)

    async def clean_interrupted_uploads(self) -> int:
        """Every ``.upload-*.part`` file in the tree is an upload a ``kill -9`` cut off: uploads
        only run while the service does, and this folder belongs to one service process."""
        return await asyncio.to_thread(_remove_partial_uploads, self.root)

    async def list(self, prefix: str) -> list[StoredFile]:
        folder = self._path(prefix.rstrip("/"))
        return await asyncio.to_thread(_walk, folder, prefix.rstrip("/"), self._is_file)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _finish(fd: int, data: bytes) -> None:
    _write_all(fd, data)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; readers such as TensorBoard run as others
    os.fsync(fd)


def _publish(temp: str, path: Path, replace: bool) -> bool:
    """Move the finished temporary file into place; ``False`` if kept out by an existing one."""
    stored = True
    if replace:
        os.replace(temp, path)
    else:
        try:
            os.link(temp, path)  # fails, atomically, when the name is taken
        except FileExistsError:
            stored = False
        finally:
            os.unlink(temp)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return stored


async def _read(handle: io.BufferedReader) -> Chunks:
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


def _remove_partial_uploads(root: Path) -> int:
    removed = 0
    for directory, _, names in os.walk(root):  # symlinked folders are not entered
        for name in names:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
                    removed += 1
    return removed


def _walk(folder: Path, prefix: str, keep: Callable[[str], bool]) -> list[StoredFile]:
    if not folder.is_dir():
        return []
    found = []
    for directory, _, names in os.walk(folder):
        for name in names:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                continue  # an upload still in flight
            path = Path(directory, name)
            with contextlib.suppress(FileNotFoundError):
                key = f"{prefix}/{path.relative_to(folder).as_posix()}"
                if keep(key):  # a file that resolves outside the store is left out
                    found.append(StoredFile(key, path.stat().st_size))
    return sorted(found, key=lambda f: f.key)


# ---- the artifact-store adapter ----------------------------------------------------------------

FILES_PATH = "/api/native/v1/files"


class ArtifactFileStore:
    """Files kept by the artifact service (``/api/native/v1/files/{key}``), through ``client``
    (its base URL is the artifact service). Its answers become what the port promises: a
    missing file ``FileNotFoundError``, a service that fails ``OSError`` (the upload routes
    answer the reference's ``{"error": ...}``), and a body past ``max_bytes`` stops the upload
    (the artifact service then stores nothing)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    def location(self, prefix: str) -> str:
        return f"the artifact store's {prefix} folder"

    def _url(self, key: str) -> str:
        return f"{FILES_PATH}/{quote(key, safe='/')}"

    async def save(self, key: str, chunks: Chunks, *, max_bytes: int, replace: bool = True) -> bool:
        too_large = UploadTooLarge(f"the file exceeds the upload limit of {max_bytes} bytes")
        over = False

        async def limited() -> Chunks:
            nonlocal over
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    over = True  # the upload is cut off: the artifact service stores nothing
                    raise too_large
                yield chunk

        try:
            answer = await self.client.put(
                self._url(key),
                params={"replace": "true" if replace else "false"},
                content=limited(),
                headers={"Content-Type": "application/octet-stream"},
            )
        except Exception as exc:
            # However the transport reports the cut-off stream (its own error, or the artifact
            # app's when it runs in-process), it is the limit's.
            if over:
                raise too_large from None
            if isinstance(exc, httpx.HTTPError):
                raise _unavailable(exc) from exc
            raise
        if over:
            raise too_large
        if answer.status_code == 413:
            raise UploadTooLarge(f"the file exceeds the artifact service's limit: {answer.text}")
        if answer.status_code not in (200, 201):
            raise _refused(answer)
        return answer.status_code == 201

    async def open(self, key: str) -> Chunks:
        try:
            answer = await self.client.send(
                self.client.build_request("GET", self._url(key)), stream=True
            )
        except httpx.HTTPError as exc:
            raise _unavailable(exc) from exc
        if answer.status_code != 200:
            await answer.aclose()
            if answer.status_code == 404:
                raise FileNotFoundError(2, "No such file or directory", key)
            raise _refused(answer)
        return _streamed(answer)

    async def exists(self, key: str) -> bool:
        try:
            answer = await self.client.head(self._url(key))
        except httpx.HTTPError as exc:
            raise _unavailable(exc) from exc
        if answer.status_code in (200, 404):
            return answer.status_code == 200
        raise _refused(answer)

    async def list(self, prefix: str) -> list[StoredFile]:
        try:
            answer = await self.client.get(FILES_PATH, params={"prefix": prefix})
        except httpx.HTTPError as exc:
            raise _unavailable(exc) from exc
        if answer.status_code != 200:
            raise _refused(answer)
        return [StoredFile(str(f["key"]), int(f["size"])) for f in answer.json()["files"]]

    async def clean_interrupted_uploads(self) -> int:
        """Nothing here: the artifact service sweeps what interrupted uploads left in its store."""
        return 0


def _unavailable(exc: httpx.HTTPError) -> OSError:
    return OSError(errno.EIO, f"the artifact service did not answer ({type(exc).__name__})")


def _refused(answer: httpx.Response) -> OSError:
    return OSError(errno.EIO, f"the artifact service answered {answer.status_code}")


async def _streamed(answer: httpx.Response) -> Chunks:
    try:
        async for chunk in answer.aiter_raw(CHUNK_BYTES):
            yield chunk
    finally:
        await answer.aclose()
