"""kill -9 of the artifact service mid-upload, on the real S3 server: nothing is visible at
the blob's address, what the dead stream left is aborted on restart, and a resumable session
goes on where it was."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest
from support import ServerProcess, drop_database, free_port, new_database, start_cmf_process

from cmf_testing.s3 import TEST_S3, require_s3
from cmf_testing.waiting import eventually_async

BUCKET = "cmf-artifacts-test"
MiB = 1024 * 1024


@pytest.fixture
def database_url() -> Iterator[str]:
    url = new_database()
    yield url
    drop_database(url)


@pytest.fixture
async def s3() -> AsyncIterator[Any]:
    require_s3()
    async with aioboto3.Session().client("s3", **TEST_S3.client_args()) as client:
        yield client


def serve(tmp_path: Path, database_url: str, prefix: str, port: int) -> ServerProcess:
    env = {
        "DATABASE_URL": database_url,
        **TEST_S3.env(BUCKET, prefix),
        # What a dead process left is stale after a second, and the restart sweeps every
        # second: a sweep that S3 fails (a busy SeaweedFS beside other tests) is tried again
        # within the test's wait, not an hour later.
        "STALE_UPLOAD_AGE": "PT1S",
        "STALE_SWEEP_EVERY_S": "1",
        # Called directly, not through a gateway: no signed principal (docs/prefixes.md).
        "REQUIRE_PRINCIPAL": "false",
    }
    args = ["serve", "artifacts", "--port", str(port)]
    return start_cmf_process(args, tmp_path, port, tmp_path, env)


async def send_part_of(port: int, path: str, total: int, sent: bytes) -> asyncio.StreamWriter:
    """A PUT of ``total`` bytes of which only ``sent`` go out (the rest never will)."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    writer.write(sent)
    await writer.drain()
    return writer


async def uploads(s3: Any, prefix: str) -> list[dict[str, Any]]:
    listed = await s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix + "/")
    return list(listed.get("Uploads", []))


async def test_a_kill_mid_upload_leaves_nothing_visible_and_the_session_resumes(
    tmp_path: Path, database_url: str, s3: Any
) -> None:
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    port = free_port()
    streamed = os.urandom(12 * MiB)
    streamed_md5 = hashlib.md5(streamed).hexdigest()
    resumed = os.urandom(7 * MiB)
    resumed_md5 = hashlib.md5(resumed).hexdigest()
    first = serve(tmp_path, database_url, prefix, port)
    try:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=60) as http:
            begun = await http.post("/api/native/v1/uploads", json={"digest": resumed_md5})
            session = begun.json()["session"]["id"]
            part = await http.put(
                f"/api/native/v1/uploads/{session}/parts/1", content=resumed[: 5 * MiB]
            )
            assert part.status_code == 200, part.text
        # A streamed PUT past its first S3 part (6 MiB by default), and a second part, both cut off.
        stream = await send_part_of(
            port, f"/api/native/v1/blobs/{streamed_md5}", len(streamed), streamed[: 9 * MiB]
        )
        cut = await send_part_of(
            port, f"/api/native/v1/uploads/{session}/parts/2", 2 * MiB, resumed[5 * MiB : 6 * MiB]
        )

        async def stream_upload_begun() -> None:
            keys = [u["Key"] for u in await uploads(s3, prefix)]
            assert any(k.endswith(streamed_md5[2:]) for k in keys), keys

        await eventually_async(stream_upload_begun, timeout=30)
        first.process.kill()
        first.process.wait(timeout=30)
        for writer in (stream, cut):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    finally:
        first.stop()

    key = f"{prefix}/files/md5/{streamed_md5[:2]}/{streamed_md5[2:]}"
    with pytest.raises(s3.exceptions.ClientError):
        await s3.head_object(Bucket=BUCKET, Key=key)

    with serve(tmp_path, database_url, prefix, free_port()) as second:

        async def only_the_session_is_left() -> None:
            keys = [u["Key"] for u in await uploads(s3, prefix)]
            assert keys == [f"{prefix}/uploads/{session}"], keys

        await eventually_async(only_the_session_is_left, timeout=30)
        async with httpx.AsyncClient(base_url=second.base_url, timeout=60) as http:
            assert (await http.head(f"/api/native/v1/blobs/{streamed_md5}")).status_code == 404
            base = f"/api/native/v1/uploads/{session}"
            held = (await http.get(base)).json()["parts"]
            assert [(p["number"], p["size"]) for p in held] == [(1, 5 * MiB)]
            await http.put(f"{base}/parts/2", content=resumed[5 * MiB :])
            done = await http.post(
                f"{base}/complete", json={"parts": [{"number": 1}, {"number": 2}]}
            )
            assert done.status_code == 201, done.text
            pulled = await http.get(f"/api/native/v1/blobs/{resumed_md5}")
            assert pulled.content == resumed
