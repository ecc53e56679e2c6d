"""The BlobStore contract: both adapters (a local folder, and S3 on the real server) keep it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from cmf_artifacts.digests import Stored
from cmf_artifacts.storage import BlobStore, DigestMismatch, PartInfo, TooLarge, current_parts

MiB = 1024 * 1024


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def stream(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


async def broken(data: bytes) -> AsyncIterator[bytes]:
    """A stream that breaks off halfway, as a client that disconnects."""
    yield data[: len(data) // 2]
    raise ConnectionResetError("client went away")


async def read_all(store: BlobStore, digest: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(digest, start, end)])


async def put(store: BlobStore, data: bytes) -> Stored:
    return await store.write(md5(data), stream(data), max_bytes=64 * MiB)


async def test_a_written_blob_reads_back_whole_and_by_range(blob_store: BlobStore) -> None:
    data = os.urandom(300_000)
    stored = await put(blob_store, data)
    assert stored.md5 == md5(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    info = await blob_store.stat(md5(data))
    assert info is not None and info.size == len(data)
    assert await read_all(blob_store, md5(data)) == data
    assert await read_all(blob_store, md5(data), 10, 19) == data[10:20]
    assert await read_all(blob_store, md5(data), 299_990) == data[299_990:]


async def test_a_blob_of_several_parts_is_stored_whole(blob_store: BlobStore) -> None:
    data = os.urandom(12 * MiB + 123)
    await put(blob_store, data)
    assert hashlib.md5(await read_all(blob_store, md5(data))).hexdigest() == md5(data)


async def test_an_empty_blob_is_stored(blob_store: BlobStore) -> None:
    await put(blob_store, b"")
    assert await read_all(blob_store, md5(b"")) == b""


async def test_a_wrong_md5_stores_nothing(blob_store: BlobStore) -> None:
    for size in (1000, 11 * MiB):  # one request, and a multipart upload
        data = os.urandom(size)
        claimed = md5(b"something else" + data)
        with pytest.raises(DigestMismatch):
            await blob_store.write(claimed, stream(data), max_bytes=64 * MiB)
        assert await blob_store.stat(claimed) is None
    assert await blob_store.sweep(datetime.now(UTC) + timedelta(hours=1), set()) == 0


async def test_a_stream_that_breaks_off_stores_nothing(blob_store: BlobStore) -> None:
    data = os.urandom(11 * MiB)
    with pytest.raises(ConnectionResetError):
        await blob_store.write(md5(data), broken(data), max_bytes=64 * MiB)
    assert await blob_store.stat(md5(data)) is None
    assert await blob_store.sweep(datetime.now(UTC) + timedelta(hours=1), set()) == 0


async def test_a_body_over_the_limit_stores_nothing(blob_store: BlobStore) -> None:
    data = os.urandom(2 * MiB)
    with pytest.raises(TooLarge):
        await blob_store.write(md5(data), stream(data), max_bytes=MiB)
    assert await blob_store.stat(md5(data)) is None


async def test_an_unknown_blob_is_not_there(blob_store: BlobStore) -> None:
    assert await blob_store.stat("0" * 32) is None


async def test_a_directory_manifest_lives_at_its_dir_address(blob_store: BlobStore) -> None:
    manifest = b'[{"md5": "' + b"1" * 32 + b'", "relpath": "a.txt"}]'
    digest = md5(manifest) + ".dir"
    await blob_store.write(digest, stream(manifest), max_bytes=MiB)
    assert await read_all(blob_store, digest) == manifest
    assert await blob_store.stat(md5(manifest)) is None


def parts_of(data: bytes, size: int) -> Iterable[tuple[int, bytes]]:
    return enumerate((data[i : i + size] for i in range(0, len(data), size)), start=1)


async def test_a_session_assembles_its_parts_in_order(blob_store: BlobStore) -> None:
    data = os.urandom(11 * MiB)
    handle = await blob_store.create_session("s1")
    sent = [
        await blob_store.write_part("s1", handle, n, stream(part), max_bytes=8 * MiB)
        for n, part in parts_of(data, 5 * MiB)
    ]
    listed = await blob_store.list_parts("s1", handle)
    assert [(p.number, p.size, p.etag) for p in listed] == [
        (p.number, p.size, p.etag) for p in sent
    ]
    assert [p.etag for p in listed] == [md5(part) for _, part in parts_of(data, 5 * MiB)]
    stored = await blob_store.complete_session("s1", handle, md5(data), listed, max_bytes=64 * MiB)
    assert stored.size == len(data)
    assert await read_all(blob_store, md5(data)) == data


async def test_a_part_sent_again_replaces_the_first(blob_store: BlobStore) -> None:
    data = os.urandom(6 * MiB)
    handle = await blob_store.create_session("s2")
    await blob_store.write_part("s2", handle, 1, stream(b"x" * 1000), max_bytes=8 * MiB)
    second = await blob_store.write_part("s2", handle, 1, stream(data), max_bytes=8 * MiB)
    listed = current_parts(await blob_store.list_parts("s2", handle), {1: second.etag})
    assert listed == [PartInfo(1, len(data), md5(data))]
    await blob_store.complete_session("s2", handle, md5(data), listed, max_bytes=64 * MiB)
    assert await read_all(blob_store, md5(data)) == data


async def test_a_session_whose_md5_differs_publishes_nothing(blob_store: BlobStore) -> None:
    data = os.urandom(1000)
    claimed = md5(b"other")
    handle = await blob_store.create_session("s3")
    await blob_store.write_part("s3", handle, 1, stream(data), max_bytes=MiB)
    parts = await blob_store.list_parts("s3", handle)
    with pytest.raises(DigestMismatch):
        await blob_store.complete_session("s3", handle, claimed, parts, max_bytes=MiB)
    assert await blob_store.stat(claimed) is None
    assert await blob_store.stat(md5(data)) is None


async def test_an_aborted_session_leaves_nothing(blob_store: BlobStore) -> None:
    handle = await blob_store.create_session("s4")
    await blob_store.write_part("s4", handle, 1, stream(b"abc"), max_bytes=MiB)
    await blob_store.abort_session("s4", handle)
    assert await blob_store.sweep(datetime.now(UTC) + timedelta(hours=1), set()) == 0


async def test_the_sweep_aborts_old_uploads_but_keeps_live_sessions(
    blob_store: BlobStore, request: pytest.FixtureRequest
) -> None:
    live = await blob_store.create_session("live")
    dead = await blob_store.create_session("dead")
    await blob_store.write_part("dead", dead, 1, stream(b"abc"), max_bytes=MiB)
    # moto lists every multipart upload as begun in 2010 (a fixed Initiated): there, no upload
    # is too young to sweep, so only the real stores show that a young one stays.
    if request.node.callspec.params["blob_store"] != "moto":
        assert await blob_store.sweep(datetime.now(UTC) - timedelta(hours=1), set()) == 0
    assert await blob_store.sweep(datetime.now(UTC) + timedelta(hours=1), {live}) == 1
    assert await blob_store.list_parts("live", live) == []
    await blob_store.abort_session("live", live)
