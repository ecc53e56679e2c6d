"""The file names the routes accept, and the local-folder file store, without the app."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cmf_metadata import files
from cmf_metadata.files import BadFileName, LocalFileStore, UploadTooLarge


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(store: LocalFileStore, key: str) -> bytes:
    return b"".join([c async for c in await store.open(key)])


def test_upload_basename_keeps_the_last_segment() -> None:
    assert files.upload_basename("cmf_artifacts/python_env_1.txt") == "python_env_1.txt"


@pytest.mark.parametrize("name", ["../x", "a/../x", "/abs/x", "a\\x", "x\x00", "..", "a/", ""])
def test_upload_basename_refuses_unsafe_names(name: str) -> None:
    with pytest.raises(BadFileName):
        files.upload_basename(name)


@pytest.mark.parametrize("name", ["a/b", "a\\b", "..", ".", "", "x\x00", "x" * 256])
def test_plain_name_refuses_separators_dots_nul_and_long_names(name: str) -> None:
    with pytest.raises(BadFileName):
        files.plain_name(name)


def test_plain_name_accepts_a_label_md5() -> None:
    assert (
        files.plain_name("800d3d1d5fb149cbdf2e138cb024c9a6") == "800d3d1d5fb149cbdf2e138cb024c9a6"
    )


def test_relative_path_keeps_folders() -> None:
    assert files.relative_path("run1/train/events.1") == "run1/train/events.1"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/x", "a//x", "a/./x", "a\\x", "a/x\x00"])
def test_relative_path_refuses_climbing_or_absolute_paths(name: str) -> None:
    with pytest.raises(BadFileName):
        files.relative_path(name)


def test_relative_path_refuses_too_many_segments() -> None:
    with pytest.raises(BadFileName):
        files.relative_path("/".join(["d"] * (files.MAX_SEGMENTS + 1)))


async def test_store_saves_all_chunks_and_reads_them_back(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    assert await store.save("env/a.txt", chunks(b"ab", b"", b"cd"), max_bytes=10)
    assert await read(store, "env/a.txt") == b"abcd"


async def test_store_without_replace_keeps_the_existing_file(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.save("labels/x", chunks(b"first"), max_bytes=10)
    assert not await store.save("labels/x", chunks(b"second"), max_bytes=10, replace=False)
    assert await read(store, "labels/x") == b"first"
    assert [p.name for p in (tmp_path / "labels").iterdir()] == ["x"]


async def test_store_over_the_limit_leaves_no_file_behind(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    with pytest.raises(UploadTooLarge):
        await store.save("env/a.txt", chunks(b"12345", b"678"), max_bytes=6)
    assert list((tmp_path / "env").iterdir()) == []


async def test_store_failing_source_leaves_the_old_file_whole(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.save("env/a.txt", chunks(b"old"), max_bytes=10)

    async def broken() -> AsyncIterator[bytes]:
        yield b"new"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.save("env/a.txt", broken(), max_bytes=10)
    assert await read(store, "env/a.txt") == b"old"
    assert [p.name for p in (tmp_path / "env").iterdir()] == ["a.txt"]


async def test_store_list_skips_uploads_in_flight(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.save("t/p/run/a", chunks(b"1"), max_bytes=10)
    (tmp_path / "t/p/run" / f"{files.TEMP_PREFIX}abc{files.TEMP_SUFFIX}").write_bytes(b"x")
    assert await store.list("t/p/") == [files.StoredFile("t/p/run/a", 1)]


async def test_store_refuses_a_folder_that_leads_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "env").symlink_to(outside)
    store = LocalFileStore(tmp_path / "root")
    with pytest.raises(PermissionError):
        await store.save("env/a.txt", chunks(b"x"), max_bytes=10)
    assert list(outside.iterdir()) == []


async def test_store_open_of_a_missing_key_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await LocalFileStore(tmp_path).open("env/none.txt")


async def test_env_archive_is_a_zip_of_every_env_file(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.save("env/a.txt", chunks(b"A" * 100_000), max_bytes=10**6)
    await store.save("env/b.txt", chunks(b"B"), max_bytes=10)
    archive = await files.python_env_archive(store, None)
    data = b"".join([c async for c in archive.chunks])
    unzipped = zipfile.ZipFile(io.BytesIO(data))
    assert unzipped.testzip() is None
    assert {n: len(unzipped.read(n)) for n in unzipped.namelist()} == {"a.txt": 100_000, "b.txt": 1}


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


async def test_store_start_removes_what_interrupted_uploads_left(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.save("env/a.txt", chunks(b"kept"), max_bytes=10)
    await store.save("t/p/run/b", chunks(b"kept"), max_bytes=10)
    left = [
        tmp_path / "env" / f"{files.TEMP_PREFIX}x1{files.TEMP_SUFFIX}",
        tmp_path / "t/p/run" / f"{files.TEMP_PREFIX}x2{files.TEMP_SUFFIX}",
    ]
    for path in left:
        path.write_bytes(b"torn")
    (tmp_path / "env" / "not.part").write_bytes(b"a user's file")
    assert await store.clean_interrupted_uploads() == 2
    kept = ["env", "env/a.txt", "env/not.part", "t", "t/p", "t/p/run", "t/p/run/b"]
    assert tree(tmp_path) == kept


async def test_store_start_on_a_folder_not_made_yet_removes_nothing(tmp_path: Path) -> None:
    assert await LocalFileStore(tmp_path / "none").clean_interrupted_uploads() == 0


async def test_store_start_does_not_follow_a_symlink_out_of_the_store(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    theirs = outside / f"{files.TEMP_PREFIX}x{files.TEMP_SUFFIX}"
    theirs.write_bytes(b"not ours")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "env").symlink_to(outside)
    assert await LocalFileStore(tmp_path / "root").clean_interrupted_uploads() == 0
    assert theirs.exists()
