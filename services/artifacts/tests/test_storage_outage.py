"""The artifact service's dependencies going away. S3 (one of the test's own, moto's server
mode, stopped and started again): the blob and file routes answer 503 with ``Retry-After`` in
problem+json, never a 500 or an answer cut off after its head, readiness says the storage is
down, and the service serves again by itself once S3 is back. The metadata service (not
answering at ``METADATA_URL``): a push or pull by name is a 503 with ``Retry-After``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from artifacts_support import artifact_settings, running
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from cmf_artifacts.app import create_service
from cmf_testing.databases import ADMIN_URL, fresh_database, with_database
from cmf_testing.network import free_port
from cmf_testing.problems import assert_problem
from cmf_testing.s3 import bucket_name
from cmf_testing.waiting import eventually_async


class OwnS3:
    """moto's S3 on a loopback port of its own, which a test may stop and start again (its
    objects live in this process, so they are there again after a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def s3() -> Iterator[OwnS3]:
    own = OwnS3()
    own.start()
    yield own
    own.stop()


@pytest.fixture
async def client(s3: OwnS3, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with fresh_database("cmf_s3_outage") as name:
        settings = artifact_settings(
            with_database(ADMIN_URL, name),
            tmp_path,
            artifact_storage_type="s3",
            s3_endpoint_url=f"http://127.0.0.1:{s3.port}",
            s3_access_key_id=SecretStr("moto-access"),
            s3_secret_access_key=SecretStr("moto-secret"),
            s3_bucket=bucket_name("outage"),
        )
        async with running(settings) as started:
            yield started.artifacts


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def test_s3_down_is_a_503_with_retry_after_until_it_is_back(
    s3: OwnS3, client: httpx.AsyncClient
) -> None:
    data = os.urandom(1000)
    stored = f"/api/native/v1/blobs/{md5(data)}"
    assert (await client.put(stored, content=data)).status_code == 201
    file = "/api/native/v1/files/env/requirements.txt"
    assert (await client.put(file, content=b"numpy\n")).status_code == 201
    s3.stop()

    other = os.urandom(1000)
    answers = {
        "GET a stored blob": await client.get(stored),
        "PUT a new blob": await client.put(f"/api/native/v1/blobs/{md5(other)}", content=other),
        "HEAD a blob not catalogued": await client.head(f"/api/native/v1/blobs/{md5(other)}"),
        "GET a file": await client.get(file),
        "begin a session": await client.post("/api/native/v1/uploads", json={"digest": md5(other)}),
    }
    for what, answer in answers.items():
        assert answer.status_code == 503, (what, answer.status_code, answer.text)
        assert answer.headers["retry-after"] == "1", what
        if answer.content:
            assert_problem(answer, 503, "storage_unavailable")
    assert (await client.get("/readyz")).status_code == 503

    s3.start()

    async def served_again() -> None:
        answer = await client.get(stored)
        assert answer.status_code == 200, answer.text
        assert answer.content == data

    await eventually_async(served_again, timeout=20)
    assert (await client.get(file)).content == b"numpy\n"
    assert (
        await client.put(f"/api/native/v1/blobs/{md5(other)}", content=other)
    ).status_code == 201


async def test_a_metadata_service_that_does_not_answer_is_a_503_with_retry_after(
    tmp_path: Path,
) -> None:
    """Distributed, the artifact service resolves names at METADATA_URL: when nothing answers
    there, a push or pull by name is a 503 the client may retry."""
    async with fresh_database("cmf_metadata_outage") as name:
        settings = artifact_settings(
            with_database(ADMIN_URL, name),
            tmp_path,
            metadata_url=f"http://127.0.0.1:{free_port()}",
        )
        service = create_service(settings)
        transport = httpx.ASGITransport(app=service.app)
        async with (
            service.started(),
            httpx.AsyncClient(transport=transport, base_url="http://artifacts") as client,
        ):
            query = {"pipeline_name": "p", "artifact_name": "data.csv:" + "0" * 32}
            for answer in (
                await client.get("/api/artifact_pull", params=query),
                await client.post("/api/artifact_push", params=query, content=b"x"),
            ):
                assert_problem(answer, 503, "metadata_unavailable")
                assert answer.headers["retry-after"] == "1"
