"""The S3 server the tests and the benchmarks share (SeaweedFS, which ``make services-up``
starts with one identity, so every request is really signed and checked).

``CMF_TEST_S3_ENDPOINT_URL``, ``CMF_TEST_S3_ACCESS_KEY_ID`` and ``CMF_TEST_S3_SECRET_ACCESS_KEY``
(``scripts/services.sh env`` prints them) name another.
"""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def client_args(self) -> dict[str, str]:
        """What an S3 client (``aioboto3.Session().client("s3", **…)``) needs for this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "region_name": "us-east-1",
        }

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The artifact service's settings for ``bucket`` on this server."""
        return {
            "ARTIFACT_STORAGE_TYPE": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_ACCESS_KEY_ID": self.access_key_id,
            "S3_SECRET_ACCESS_KEY": self.secret_access_key,
            "S3_BUCKET": bucket,
            "S3_PREFIX": prefix,
        }


TEST_S3 = S3Server(
    os.environ.get("CMF_TEST_S3_ENDPOINT_URL", "http://127.0.0.1:9000"),
    os.environ.get("CMF_TEST_S3_ACCESS_KEY_ID", "cmf-test-access"),
    os.environ.get("CMF_TEST_S3_SECRET_ACCESS_KEY", "cmf-test-secret-key"),
)


class S3Unreachable(RuntimeError):
    """The test S3 server does not answer: a test that needs it fails (it never skips)."""


def require_s3(server: S3Server = TEST_S3) -> S3Server:
    """``server`` if it answers (an unsigned request is refused with 403), else
    :class:`S3Unreachable`."""
    try:
        urllib.request.urlopen(server.endpoint_url + "/", timeout=5)
    except urllib.error.HTTPError as exc:
        if exc.code == 403:
            return server
        raise S3Unreachable(f"S3 at {server.endpoint_url} answered {exc.code}") from exc
    except OSError as exc:
        raise S3Unreachable(
            f"S3 is not reachable at {server.endpoint_url} ({exc}); run `make services-up`"
        ) from exc
    raise S3Unreachable(f"S3 at {server.endpoint_url} accepted an unsigned request")


def bucket_name(prefix: str = "cmf-test") -> str:
    """A new bucket name (``<prefix>-<random>``; S3 names are lowercase)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def drop_bucket(s3: Any, bucket: str) -> None:
    """Delete every object of ``bucket``, then the bucket (gone already: nothing to do). On
    SeaweedFS each bucket holds volumes of its own, so a bucket left behind by every run
    would in the end leave none for new ones."""
    try:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                await s3.delete_object(Bucket=bucket, Key=item["Key"])
        await s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        return


async def _drop(bucket: str, server: S3Server) -> None:
    async with aioboto3.Session().client("s3", **server.client_args()) as s3:
        await drop_bucket(s3, bucket)


@contextmanager
def own_bucket(prefix: str, server: S3Server = TEST_S3) -> Iterator[str]:
    """A new bucket name on the test S3 server (which must answer), the bucket dropped at the
    end; whoever uses the name creates the bucket (the artifact service does on start)."""
    require_s3(server)
    name = bucket_name(prefix)
    try:
        yield name
    finally:
        asyncio.run(_drop(name, server))
