"""The ``BlobStore`` port: content-addressed bytes, written only once their digest is known.

Two adapters keep to it, held to one contract suite (services/artifacts/tests/test_blobstore.py):
``local`` (a folder, the embedded server's default) and ``s3`` (any S3: AWS, MinIO,
SeaweedFS). Every write streams: the md5 and sha256 are computed as the bytes pass and the blob
becomes visible at its address only when the md5 is the one expected; a mismatch, a stream
that breaks off or a crash leaves nothing there (a temporary file, or an S3 multipart upload
that is aborted, swept later if the process died).

Beside the blobs a store keeps named files under ``cmf-files/<key>``: the metadata service's
uploads (python envs, label CSVs, tensorboard logs), so that in distributed mode every replica
of it reads the same ones (``cmf_artifacts.files``).

Resumable sessions keep their parts in the store itself (part files, or an S3 multipart
upload), so they survive a restart; completing one assembles the parts, checks the md5 while
reading them, and only then publishes the blob.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cmf_artifacts.digests import Stored
from cmf_common.errors import Conflict, NotFound, PayloadTooLarge, Unavailable

READ_CHUNK = 1024 * 1024
# Where named files (the metadata service's uploads, by key) live beside the DVC layout.
FILES_FOLDER = "cmf-files/"


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


@dataclass(frozen=True)
class FileInfo:
    key: str
    size: int


@dataclass(frozen=True)
class PartInfo:
    number: int
    size: int
    etag: str


class DigestMismatch(Conflict):
    code = "digest_mismatch"
    title = "Digest mismatch"


class TooLarge(PayloadTooLarge):
    code = "blob_too_large"


class StorageUnavailable(Unavailable):
    """The store cannot be reached or cannot serve for now: 503 with ``Retry-After``."""

    code = "storage_unavailable"
    title = "Storage unavailable"


STORAGE_UNAVAILABLE = "the artifact store is unavailable for now; retry shortly"


def mismatch(expected: str, actual: str) -> DigestMismatch:
    return DigestMismatch(
        f"the body's md5 is {actual}, not {expected}: nothing was stored",
        expected=expected,
        actual=actual,
    )


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the body is larger than {limit} bytes: nothing was stored", limit=limit)


def session_not_open(session: object) -> NotFound:
    return NotFound(f"upload session {session} is not open", code="session_not_found")


def blob_not_stored(digest: str) -> NotFound:
    return NotFound(f"blob {digest} is not stored", code="blob_not_found")


def file_not_stored(key: str) -> NotFound:
    return NotFound(f"file {key} is not stored", code="file_not_found")


def current_parts(listed: list[PartInfo], sent: dict[int, str]) -> list[PartInfo]:
    """One part per number: the one whose etag is ``sent``'s for that number (the service
    knows what it accepted last), else the first listed (the newest)."""
    chosen: dict[int, PartInfo] = {}
    for part in listed:
        known = chosen.get(part.number)
        if known is None or (part.etag == sent.get(part.number) and known.etag != part.etag):
            chosen[part.number] = part
    return [chosen[n] for n in sorted(chosen)]


class BlobStore(Protocol):
    """Where blobs live, by digest (``cmf_artifacts.digests``)."""

    kind: str

    async def check(self) -> None:
        """Readiness: the store answers (raises when it does not)."""
        ...

    async def stat(self, digest: str) -> BlobInfo | None: ...

    async def write(
        self,
        digest: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        size_hint: int | None = None,
    ) -> Stored:
        """Store the stream under ``digest`` if its md5 is the digest's; else
        :class:`DigestMismatch` (or :class:`TooLarge` past ``max_bytes``) and nothing stored."""
        ...

    def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start``..``end`` (inclusive; ``None``: to the end), streamed."""
        ...

    async def delete(self, digest: str) -> None: ...

    async def put_file(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int, replace: bool = True
    ) -> FileInfo | None:
        """Store the stream under the named file ``key`` (a checked relative path, kept under
        ``FILES_FOLDER``), all or nothing; with ``replace=False`` a file there already is kept
        and ``None`` returned."""
        ...

    async def stat_file(self, key: str) -> FileInfo | None: ...

    def read_file(self, key: str) -> AsyncIterator[bytes]:
        """The named file's bytes (``NotFound`` when there is none)."""
        ...

    async def list_files(self, prefix: str) -> list[FileInfo]:
        """The named files whose keys start with ``prefix``, by key."""
        ...

    async def create_session(self, session: str) -> str:
        """Begin resumable upload ``session``; returns the store's handle of it."""
        ...

    async def write_part(
        self,
        session: str,
        handle: str,
        number: int,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
    ) -> PartInfo: ...

    async def list_parts(self, session: str, handle: str) -> list[PartInfo]:
        """The parts held, by number; a number may be listed more than once (a part sent again
        on SeaweedFS), newest first: :func:`current_parts` picks one by its etag."""
        ...

    async def complete_session(
        self, session: str, handle: str, digest: str, parts: list[PartInfo], *, max_bytes: int
    ) -> Stored:
        """Assemble ``parts`` (in order), and publish them under ``digest`` if their md5 is the
        digest's (else :class:`DigestMismatch`, the session's parts gone)."""
        ...

    async def abort_session(self, session: str, handle: str) -> None: ...

    async def sweep(self, older_than: datetime, keep: set[str]) -> int:
        """Abort uploads begun before ``older_than`` whose handles are not in ``keep`` (the
        live sessions'); returns how many."""
        ...

    async def presign_read(self, digest: str, expires_s: int) -> str | None:
        """A URL that reads the blob without this service (``None``: the store has none)."""
        ...

    async def presign_part(
        self, session: str, handle: str, number: int, expires_s: int
    ) -> str | None: ...
