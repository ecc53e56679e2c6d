"""The artifact service's tests: both blob stores, the S3 one on the real S3 server of
``make services-up`` (SeaweedFS, signatures checked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from cmf_artifacts.storage import BlobStore
from cmf_artifacts.storage.local import LocalBlobStore
from cmf_artifacts.storage.s3 import S3BlobStore, open_s3
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


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    store: S3BlobStore = request.getfixturevalue("s3_store")
    return store
