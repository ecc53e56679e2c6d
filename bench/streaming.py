"""A large blob streamed up and down the native blob routes, for the benchmarks that time it
(``bench.artifacts`` against S3 straight, ``bench.gateway`` through the gateway): the file, the
upload and download loops (the serving process's RSS: ``cmf_testing.rss``). Not a benchmark of
its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
import httpx

from cmf_testing.s3 import TEST_S3

MiB = 1024 * 1024
CHUNK = MiB
TIMEOUT = httpx.Timeout(600.0)


def make_file(size: int) -> tuple[Path, str]:
    """A file of ``size`` random bytes in /var/tmp, and its md5."""
    digest = hashlib.md5()
    with tempfile.NamedTemporaryFile(
        prefix="cmf-bench-blob-", dir="/var/tmp", delete=False
    ) as handle:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK * 8, left))
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    return Path(handle.name), digest.hexdigest()


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk


def blob_url(base: str, md5: str) -> str:
    return f"{base}/api/native/v1/blobs/{md5}"


async def upload(http: httpx.AsyncClient, base: str, path: Path, md5: str, size: int) -> float:
    """Seconds to stream the file at ``path`` up as the blob ``md5`` (stored, or new)."""
    started = time.perf_counter()
    answer = await http.put(
        blob_url(base, md5), content=file_chunks(path), headers={"Content-Length": str(size)}
    )
    assert answer.status_code in (200, 201), answer.text
    return time.perf_counter() - started


async def download(http: httpx.AsyncClient, base: str, md5: str, size: int) -> float:
    """Seconds to stream the blob ``md5`` down, its bytes counted and thrown away."""
    started = time.perf_counter()
    got = 0
    async with http.stream("GET", blob_url(base, md5)) as answer:
        async for chunk in answer.aiter_raw(CHUNK):
            got += len(chunk)
    assert got == size, got
    return time.perf_counter() - started


async def download_aiohttp(http: aiohttp.ClientSession, base: str, md5: str, size: int) -> float:
    """``download`` with aiohttp. httpx spends about 1 s of CPU per GiB reading a stream (1.3 s
    with ``aiter_raw(CHUNK)``), more than the service spends serving it (0.5-0.8 s), so on two
    shared cores it, not the service, would set the pace; aiohttp reads a GiB in 0.3 s."""
    started = time.perf_counter()
    got = 0
    async with http.get(blob_url(base, md5)) as answer:
        assert answer.status == 200, answer.status
        async for chunk in answer.content.iter_any():
            got += len(chunk)
    assert got == size, got
    return time.perf_counter() - started


async def transfer(base: str, md5: str, path: Path, size: int) -> tuple[float, float]:
    """Seconds to ``upload`` then ``download`` the blob at ``base``, on a client of their own."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        up = await upload(http, base, path, md5, size)
        down = await download(http, base, md5, size)
    return up, down


def s3_client(session: aioboto3.Session) -> Any:
    return session.client("s3", **TEST_S3.client_args())
