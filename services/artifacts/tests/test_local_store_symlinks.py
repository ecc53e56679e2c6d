"""The local store reads and writes nothing outside its folder through a symlink planted in it
(issue 12 item 10): a blob or named file that resolves outside is as good as missing, and a
write whose folder leads outside is refused. A symlink within the store is followed."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cmf_artifacts.storage import BlobStore
from cmf_artifacts.storage.local import LocalBlobStore
from cmf_common.errors import NotFound

SECRET = b"password=hunter2\n"
SECRET_MD5 = hashlib.md5(SECRET).hexdigest()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read_all(store: BlobStore, digest: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(digest)])


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def _plant(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


async def test_a_blob_symlinked_out_of_the_store_is_not_there(
    store: LocalBlobStore, secret: Path
) -> None:
    _plant(store.path(SECRET_MD5), secret)
    assert await store.stat(SECRET_MD5) is None
    with pytest.raises(NotFound):
        await _read_all(store, SECRET_MD5)


async def test_a_named_file_symlinked_out_of_the_store_is_not_there(
    store: LocalBlobStore, secret: Path
) -> None:
    _plant(store.file_path("env/requirements.txt"), secret)
    assert await store.stat_file("env/requirements.txt") is None
    assert await store.list_files("env/") == []
    with pytest.raises(NotFound):
        b"".join([chunk async for chunk in store.read_file("env/requirements.txt")])


async def test_a_symlink_to_a_blob_of_the_store_is_followed(store: LocalBlobStore) -> None:
    stored = await store.write(SECRET_MD5, _chunks(SECRET), max_bytes=1 << 20)
    alias = hashlib.md5(b"another name").hexdigest()
    _plant(store.path(alias), store.path(SECRET_MD5))
    info = await store.stat(alias)
    assert info is not None and info.size == stored.size
    assert await _read_all(store, alias) == SECRET


async def test_a_write_into_a_folder_symlinked_out_of_the_store_is_refused(
    store: LocalBlobStore, secret: Path
) -> None:
    outside = secret.parent
    _plant(store.path(SECRET_MD5).parent, outside)
    with pytest.raises(PermissionError):
        await store.write(SECRET_MD5, _chunks(SECRET), max_bytes=1 << 20)
    _plant(store.file_path("labels/x.csv").parent, outside)
    with pytest.raises(PermissionError):
        await store.put_file("labels/x.csv", _chunks(b"id\n"), max_bytes=1 << 20)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
