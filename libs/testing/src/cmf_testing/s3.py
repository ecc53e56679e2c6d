"""The S3 server the tests and the benchmarks share (SeaweedFS, which ``make services-up``
starts with one identity, so every request is really signed and checked).

``CMF_TEST_S3_ENDPOINT_URL``, ``CMF_TEST_S3_ACCESS_KEY_ID`` and ``CMF_TEST_S3_SECRET_ACCESS_KEY``
(``scripts/services.sh env`` prints them) name another.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass


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
