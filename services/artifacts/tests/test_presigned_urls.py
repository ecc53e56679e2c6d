"""Presigned URLs on the real S3 server (SeaweedFS, signatures checked): a blob is read, and a
session's part is sent, straight to S3 without this service carrying the bytes; a URL whose
signature was tampered with is refused by S3. The service and the metadata app in-process."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from artifacts_support import artifact_settings, running
from pydantic import SecretStr

from cmf_testing.databases import ADMIN_URL, fresh_database, with_database
from cmf_testing.problems import assert_problem
from cmf_testing.s3 import S3Server, bucket_name

MiB = 1024 * 1024


@pytest.fixture(scope="module")
async def client(
    s3_server: S3Server, s3_bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with fresh_database("cmf_presigned") as name:
        settings = artifact_settings(
            with_database(ADMIN_URL, name),
            tmp_path_factory.mktemp("presigned"),
            artifact_storage_type="s3",
            s3_endpoint_url=s3_server.endpoint_url,
            s3_access_key_id=SecretStr(s3_server.access_key_id),
            s3_secret_access_key=SecretStr(s3_server.secret_access_key),
            s3_bucket=s3_bucket,
            s3_prefix=bucket_name("presigned") + "/",
        )
        async with running(settings) as started:
            yield started.artifacts


@pytest.fixture
async def s3_http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client: what a client holding only the URL has (no credentials)."""
    async with httpx.AsyncClient(timeout=60) as http:
        yield http


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tampered(url: str) -> str:
    """``url`` with the last digit of its signature changed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_a_presigned_url_reads_the_blob_straight_from_s3(
    client: httpx.AsyncClient, s3_http: httpx.AsyncClient, s3_server: S3Server
) -> None:
    data = os.urandom(300_000)
    put = await client.put(f"/api/native/v1/blobs/{md5(data)}", content=data)
    assert put.status_code == 201, put.text
    answer = await client.get(f"/api/native/v1/blobs/{md5(data)}/url")
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert url.startswith(s3_server.endpoint_url + "/")
    assert answer.json()["expires_in"] == 3600
    direct = await s3_http.get(url)
    assert direct.status_code == 200, direct.text
    assert direct.content == data
    assert (await s3_http.get(tampered(url))).status_code == 403


async def test_a_blob_not_stored_has_no_url(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/api/native/v1/blobs/{md5(b'never stored')}/url")
    assert_problem(answer, 404, "blob_not_found")


async def test_a_part_sent_to_its_presigned_url_completes_the_session(
    client: httpx.AsyncClient, s3_http: httpx.AsyncClient
) -> None:
    data = os.urandom(6 * MiB)
    begun = await client.post("/api/native/v1/uploads", json={"digest": md5(data)})
    assert begun.status_code == 201, begun.text
    base = f"/api/native/v1/uploads/{begun.json()['session']['id']}"
    answer = await client.get(f"{base}/parts/1/url")
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert (await s3_http.put(tampered(url), content=data[: 5 * MiB])).status_code == 403
    sent = await s3_http.put(url, content=data[: 5 * MiB])
    assert sent.status_code == 200, sent.text
    # The last part through the service; the session lists both, the first as S3 holds it.
    assert (await client.put(f"{base}/parts/2", content=data[5 * MiB :])).status_code == 200
    parts = (await client.get(base)).json()["parts"]
    assert [(p["number"], p["size"]) for p in parts] == [(1, 5 * MiB), (2, MiB)]
    assert parts[0]["etag"] == sent.headers["etag"].strip('"')
    done = await client.post(
        f"{base}/complete",
        json={"parts": [{"number": 1, "etag": sent.headers["etag"]}, {"number": 2}]},
    )
    assert done.status_code == 201, done.text
    pulled = await client.get(f"/api/native/v1/blobs/{md5(data)}")
    assert pulled.content == data
