"""The artifact service's tests: both blob stores, the S3 one on the real S3 server of
``make services-up`` (SeaweedFS, signatures checked) and on moto's server mode (an S3 that
checks no signatures, started here on a loopback port: a second S3 implementation the adapter
must work with)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from cmf_artifacts.storage import BlobStore
from cmf_artifacts.storage.local import LocalBlobStore
from cmf_artifacts.storage.s3 import S3BlobStore, open_s3
from cmf_testing.network import free_port
from cmf_testing.s3 import S3Server, S3Unreachable, bucket_name, require_s3

# Small parts, so a few MiB exercise multipart uploads (S3's minimum part is 5 MiB).
PART_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    try:
        return require_s3()
    except S3Unreachable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def s3_bucket() -> str:
    """One bucket (each bucket takes SeaweedFS volumes of its own); each test has a prefix of
    its own in it."""
    return "cmf-artifacts-test"


@pytest.fixture
async def s3_store(s3_server: S3Server, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    async with AsyncExitStack() as stack:
        yield await open_s3(
            stack,
            endpoint_url=s3_server.endpoint_url,
            access_key_id=s3_server.access_key_id,
            secret_access_key=s3_server.secret_access_key,
            region="us-east-1",
            bucket=s3_bucket,
            prefix=bucket_name("t"),
            part_bytes=PART_BYTES,
        )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """moto's S3 in server mode, in this process, on a loopback port."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}", "moto-access", "moto-secret")
    finally:
        server.stop()


@pytest.fixture
async def moto_store(moto_server: S3Server) -> AsyncIterator[S3BlobStore]:
    """The S3 adapter on moto: a bucket of its own per test (moto's are free)."""
    async with AsyncExitStack() as stack:
        yield await open_s3(
            stack,
            endpoint_url=moto_server.endpoint_url,
            access_key_id=moto_server.access_key_id,
            secret_access_key=moto_server.secret_access_key,
            region="us-east-1",
            bucket=bucket_name("moto"),
            prefix="dvc",
            part_bytes=PART_BYTES,
        )


@pytest.fixture(params=["local", "s3", "moto"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    store: S3BlobStore = request.getfixturevalue(f"{request.param}_store")
    return store
