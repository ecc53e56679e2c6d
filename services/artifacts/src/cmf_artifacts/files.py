"""Named files: the metadata service's uploads (python envs, label CSVs, tensorboard logs)
kept in the artifact store by key, so that in distributed mode every metadata replica reads the
same ones (``cmf_metadata.files.ArtifactFileStore`` calls these through
``/api/native/v1/files``).

Keys are the metadata service's own: ``env/<name>``, ``labels/<name>`` and
``tensorboard-logs/<pipeline>/<relative path>``. Each is checked here too (a relative path in
one of those folders: no ``..``, empty or over-long segment, backslash or NUL), so nothing
reaches the store outside its ``cmf-files/`` folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from cmf_artifacts.settings import ArtifactSettings
from cmf_artifacts.storage import BlobStore, FileInfo
from cmf_common.errors import Invalid

FOLDERS = ("env", "labels", "tensorboard-logs")
MAX_SEGMENT_BYTES = 255
MAX_SEGMENTS = 34  # a folder, a pipeline, and the 32 segments a tensorboard path may have


def _invalid(what: str, detail: str) -> Invalid:
    return Invalid(f"{what}: {detail}", code="invalid_key")


def check_key(key: str, *, prefix: bool = False) -> str:
    """``key`` if it names a file (or, ``prefix``, a folder to list: it may end in ``/``) in
    one of :data:`FOLDERS`."""
    what = "prefix" if prefix else "key"
    if "\x00" in key or "\\" in key or key.startswith("/"):
        raise _invalid(what, "a relative path without NUL or '\\'")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in key):
        raise _invalid(what, "not valid UTF-8")
    segments = key.split("/")
    if prefix and len(segments) > 1 and segments[-1] == "":
        segments = segments[:-1]
    if segments[0] not in FOLDERS or (len(segments) < 2 and not prefix):
        raise _invalid(what, f"a path in one of the folders {', '.join(FOLDERS)}")
    if len(segments) > MAX_SEGMENTS:
        raise _invalid(what, f"more than {MAX_SEGMENTS} segments")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _invalid(what, "an empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _invalid(what, f"a segment over {MAX_SEGMENT_BYTES} bytes")
    return key


class NamedFiles:
    def __init__(self, store: BlobStore, settings: ArtifactSettings) -> None:
        self.store = store
        self.settings = settings

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, replace: bool
    ) -> tuple[FileInfo, bool]:
        """Store the stream under ``key``; ``(the file, False)`` when ``replace`` is off and one
        is there already (nothing of the stream is then read)."""
        check_key(key)
        if not replace:
            known = await self.store.stat_file(key)
            if known is not None:
                return known, False
        stored = await self.store.put_file(
            key, chunks, max_bytes=self.settings.max_blob_bytes, replace=replace
        )
        if stored is None:  # another upload of it won the race
            known = await self.store.stat_file(key)
            assert known is not None
            return known, False
        return stored, True

    async def stat(self, key: str) -> FileInfo | None:
        return await self.store.stat_file(check_key(key))

    def read(self, key: str) -> AsyncIterator[bytes]:
        return self.store.read_file(check_key(key))

    async def list(self, prefix: str) -> list[FileInfo]:
        return await self.store.list_files(check_key(prefix, prefix=True))
