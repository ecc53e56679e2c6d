"""Named files in the artifact store: the metadata service's uploads (python envs, labels,
tensorboard logs) by key, so distributed metadata replicas share them. The store contract on
every store (a folder, SeaweedFS, moto), the routes' key checks, and the metadata service's
upload routes with ``FILES_STORAGE=artifacts`` writing through the artifact service."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from artifacts_support import Later, artifact_settings

from cmf_artifacts.app import create_service
from cmf_artifacts.storage import BlobStore, FileInfo, TooLarge
from cmf_common.errors import NotFound
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings
from cmf_testing.databases import ADMIN_URL, fresh_database, with_database
from cmf_testing.problems import assert_problem

MiB = 1024 * 1024


async def stream(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


async def broken(data: bytes) -> AsyncIterator[bytes]:
    yield data[: len(data) // 2]
    raise ConnectionResetError("client went away")


async def read_all(store: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read_file(key)])


async def test_named_files_are_stored_listed_and_read_back(blob_store: BlobStore) -> None:
    env = b"numpy==2.1\n"
    big = os.urandom(11 * MiB)  # a multipart upload on S3
    assert await blob_store.put_file("env/requirements.txt", stream(env), max_bytes=MiB) == (
        FileInfo("env/requirements.txt", len(env))
    )
    log = "tensorboard-logs/p/run 1/events.out"
    await blob_store.put_file(log, stream(big), max_bytes=64 * MiB)
    await blob_store.put_file("tensorboard-logs/p2/x", stream(b"x"), max_bytes=MiB)
    assert await read_all(blob_store, "env/requirements.txt") == env
    assert await read_all(blob_store, "tensorboard-logs/p/run 1/events.out") == big
    assert await blob_store.list_files("tensorboard-logs/p/") == [
        FileInfo("tensorboard-logs/p/run 1/events.out", len(big))
    ]
    assert [f.key for f in await blob_store.list_files("tensorboard-logs/")] == [
        "tensorboard-logs/p/run 1/events.out",
        "tensorboard-logs/p2/x",
    ]
    assert await blob_store.stat_file("env/other.txt") is None
    with pytest.raises(NotFound):
        await read_all(blob_store, "env/other.txt")
    # A named file is no blob: the DVC layout is untouched.
    assert await blob_store.stat("0" * 32) is None


async def test_a_file_is_replaced_or_kept_as_asked(blob_store: BlobStore) -> None:
    await blob_store.put_file("labels/abc.csv", stream(b"first"), max_bytes=MiB)
    kept = await blob_store.put_file(
        "labels/abc.csv", stream(b"second"), max_bytes=MiB, replace=False
    )
    assert kept is None
    assert await read_all(blob_store, "labels/abc.csv") == b"first"
    await blob_store.put_file("labels/abc.csv", stream(b"third"), max_bytes=MiB)
    assert await read_all(blob_store, "labels/abc.csv") == b"third"


async def test_a_failed_file_upload_leaves_nothing(blob_store: BlobStore) -> None:
    with pytest.raises(ConnectionResetError):
        await blob_store.put_file("env/a.txt", broken(os.urandom(11 * MiB)), max_bytes=64 * MiB)
    with pytest.raises(TooLarge):
        await blob_store.put_file("env/b.txt", stream(os.urandom(2 * MiB)), max_bytes=MiB)
    assert await blob_store.list_files("env/") == []


# ---- through the services --------------------------------------------------------------------


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with fresh_database("cmf_files") as name:
        yield with_database(ADMIN_URL, name)


@pytest.fixture
async def apps(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path]]:
    """The metadata service keeping its uploads in the artifact service's (local) store, both
    in-process; their clients, the artifacts folder and the metadata files folder."""
    root, files_dir = tmp_path / "artifacts", tmp_path / "files"
    later = Later()
    async with AsyncExitStack() as stack:
        to_artifacts = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=later), base_url="http://a")
        )
        settings = artifact_settings(database_url, root)
        metadata = create_metadata(
            MetadataSettings(
                database_url=settings.database_url,
                files_dir=files_dir,
                files_storage="artifacts",
                max_upload_bytes=MiB,
            ),
            artifacts=to_artifacts,
        )
        artifacts = create_service(settings)
        later.app = artifacts.app
        await stack.enter_async_context(metadata.started())
        await stack.enter_async_context(artifacts.started())
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
            )
            for app in (metadata.app, artifacts.app)
        ]
        yield clients[0], clients[1], root, files_dir


def upload(name: str, content: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, content, "application/octet-stream")}


async def test_uploads_go_to_the_artifact_store(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path],
) -> None:
    metadata, artifacts, root, files_dir = apps
    env = b"pandas==2.2\n"
    answer = await metadata.post("/api/python-env", files=upload("python_env_1.txt", env))
    assert answer.json() == {"message": "File 'python_env_1.txt' uploaded successfully"}
    got = await metadata.get("/api/python-env", params={"file_name": "python_env_1.txt"})
    assert got.status_code == 200 and got.content == env

    first = await metadata.post("/api/label", files=upload("abc.csv", b"a,b\n1,2\n"))
    assert "uploaded successfully" in first.json()["message"], first.text
    again = await metadata.post("/api/label", files=upload("abc.csv", b"other"))
    assert "already exists at the artifact store's labels folder" in again.json()["message"]
    label = await metadata.get("/api/label-data", params={"file_name": "abc.csv"})
    assert label.content == b"a,b\n1,2\n"

    log = await metadata.post(
        "/api/tensorboard",
        params={"pipeline_name": "Test-env"},
        files=upload("logs/run1/events.out", b"\x00events"),
    )
    assert "uploaded successfully" in log.json()["message"], log.text
    listed = await metadata.get("/api/tensorboard-logs", params={"pipeline_name": "Test-env"})
    assert listed.json() == {
        "pipeline_name": "Test-env",
        "files": [{"path": "logs/run1/events.out", "size": 7}],
    }
    zipped = await metadata.get("/api/download-python-env")
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"

    # The bytes are in the artifact store (its cmf-files folder), none in the files folder.
    assert (root / "cmf-files" / "env" / "python_env_1.txt").read_bytes() == env
    assert not any(p.is_file() for p in files_dir.rglob("*") if ".spool" not in p.parts)
    served = await artifacts.get("/api/native/v1/files/labels/abc.csv")
    assert served.content == b"a,b\n1,2\n"


async def test_an_upload_over_the_limit_stores_nothing_in_the_artifact_store(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path],
) -> None:
    metadata, artifacts, _, _ = apps
    answer = await metadata.post("/api/python-env", files=upload("big.txt", b"x" * (MiB + 10)))
    assert answer.status_code == 413, answer.text
    listed = await artifacts.get("/api/native/v1/files", params={"prefix": "env/"})
    assert listed.json() == {"files": []}


@pytest.mark.parametrize(
    "key",
    [
        "etc/passwd",
        "env",
        "env/",
        "env/%2E%2E/labels/x",
        "env/%2E/x",
        "env//x",
        "env/a\\b",
        "env/a%00b",
        "labels/" + "x" * 256,
        "tensorboard-logs/" + "/".join("s" * 34),
    ],
)
async def test_a_key_outside_the_folders_is_refused(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path], key: str
) -> None:
    _, artifacts, root, _ = apps
    # A NUL is refused at the edge, before the route (cmf_common.parameters).
    code = "invalid_parameter" if "%00" in key else "invalid_key"
    answer = await artifacts.put(f"/api/native/v1/files/{key}", content=b"x")
    assert_problem(answer, 422, code)
    assert_problem(await artifacts.get(f"/api/native/v1/files/{key}"), 422, code)
    assert not [p for p in (root / "cmf-files").rglob("*") if p.is_file()]


async def test_the_file_routes_answer_as_documented(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path],
) -> None:
    _, artifacts, _, _ = apps
    url = "/api/native/v1/files/env/x%3Ay.txt"
    assert_problem(await artifacts.get(url), 404, "file_not_found")
    assert (await artifacts.head(url)).status_code == 404
    put = await artifacts.put(url, content=b"12345")
    assert (put.status_code, put.json()) == (201, {"key": "env/x:y.txt", "size": 5, "stored": True})
    kept = await artifacts.put(url, params={"replace": "false"}, content=b"other")
    assert (kept.status_code, kept.json()["stored"]) == (200, False)
    head = await artifacts.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == "5"
    assert (await artifacts.get(url)).content == b"12345"
    assert_problem(
        await artifacts.get("/api/native/v1/files", params={"prefix": "../"}), 422, "invalid_key"
    )
