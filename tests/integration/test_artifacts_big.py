"""1 GiB up and down through the artifact service (``cmf-server serve artifacts``) on the real
S3 server, its RSS sampled all the while: the bytes stream through, neither the request nor the
object is ever held whole (issue 13, "Tests"). The throughput figures are bench/artifacts.py's.

The service runs with 5 MiB parts, two in flight: a streamed upload grows it by about
``(parts in flight + 3.5) × part size`` (docs/artifacts.md), ~28 MiB here, so the issue's
64 MiB bound holds with room for a loaded machine; holding the object would be 1 GiB."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import aioboto3
import httpx
import pytest
from support import (
    ServerProcess,
    drop_database,
    free_port,
    new_database,
    start_cmf_process,
)

from cmf_testing.rss import RssPeak
from cmf_testing.s3 import TEST_S3, require_s3

BUCKET = "cmf-artifacts-test"
MiB = 1024 * 1024
CHUNKS = 1024  # of 1 MiB: 1 GiB
RSS_GROWTH_BOUND = 64 * MiB
_BLOCK = os.urandom(MiB)


def chunks() -> Iterator[bytes]:
    """1 GiB, made as it is sent: each MiB the same random block behind its own number."""
    for i in range(CHUNKS):
        yield i.to_bytes(8, "big") + _BLOCK[8:]


async def _drop_prefix(prefix: str) -> None:
    async with aioboto3.Session().client("s3", **TEST_S3.client_args()) as s3:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix + "/"):
            for item in page.get("Contents", []):
                await s3.delete_object(Bucket=BUCKET, Key=item["Key"])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServerProcess]:
    require_s3()
    prefix = f"big-{uuid.uuid4().hex[:8]}"
    database_url = new_database()
    env = {
        "DATABASE_URL": database_url,
        **TEST_S3.env(BUCKET, prefix),
        "S3_PART_BYTES": str(5 * MiB),
        "S3_PARTS_IN_FLIGHT": "2",
        "REQUIRE_PRINCIPAL": "false",  # called directly, not through a gateway
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    try:
        with start_cmf_process(
            ["serve", "artifacts", "--port", str(port)], tmp_path, port, tmp_path, env
        ) as process:
            yield process
    finally:
        drop_database(database_url)
        asyncio.run(_drop_prefix(prefix))


@pytest.mark.timeout(300)
def test_a_gibibyte_goes_up_and_down_through_the_service_in_bounded_memory(
    service: ServerProcess,
) -> None:
    md5 = hashlib.md5()
    for chunk in chunks():
        md5.update(chunk)
    digest = md5.hexdigest()
    url = f"/api/native/v1/blobs/{digest}"
    with httpx.Client(base_url=service.base_url, timeout=120) as http:
        # Warm up the paths the big transfer takes (multipart upload, streamed read).
        small = os.urandom(12 * MiB)
        small_url = f"/api/native/v1/blobs/{hashlib.md5(small).hexdigest()}"
        assert http.put(small_url, content=small).status_code == 201
        assert http.get(small_url).content == small

        with RssPeak(service.process.pid) as up:
            put = http.put(
                url,
                content=chunks(),
                headers={"Content-Length": str(CHUNKS * MiB)},
            )
        assert put.status_code == 201, put.text
        assert put.json()["size"] == CHUNKS * MiB

        pulled = hashlib.md5()
        size = 0
        with RssPeak(service.process.pid) as down, http.stream("GET", url) as answer:
            assert answer.status_code == 200
            assert answer.headers["etag"] == f'"{digest}"'
            for part in answer.iter_bytes():
                pulled.update(part)
                size += len(part)
        assert size == CHUNKS * MiB
        assert pulled.hexdigest() == digest

    assert up.growth <= RSS_GROWTH_BOUND, (
        f"the upload grew the service by {up.growth / MiB:.0f} MiB"
    )
    assert down.growth <= RSS_GROWTH_BOUND, (
        f"the download grew the service by {down.growth / MiB:.0f} MiB"
    )
