"""When a ``PUT`` of a digest the catalogue does not know asks the store for it (a blob that
``cmf artifact push`` wrote there): only when that spares sending the body."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from artifacts_support import artifact_settings, running

from cmf_artifacts.digests import object_key
from cmf_testing.databases import ADMIN_URL, fresh_database, with_database


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    async with fresh_database("cmf_lookup") as name:
        root = tmp_path / "blobs"
        settings = artifact_settings(with_database(ADMIN_URL, name), root, store_lookup_bytes=1000)
        async with running(settings) as started:
            yield started.artifacts, root


def written_by_another(root: Path, data: bytes) -> str:
    """``data`` put in the store's DVC layout behind the service's back; its md5."""
    digest = hashlib.md5(data).hexdigest()
    path = root / object_key(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


async def test_a_small_body_is_written_again_without_asking_the_store(
    store: tuple[httpx.AsyncClient, Path],
) -> None:
    client, root = store
    data = os.urandom(500)
    digest = written_by_another(root, data)
    answer = await client.put(f"/api/native/v1/blobs/{digest}", content=data)
    assert (answer.status_code, answer.json()["deduplicated"]) == (201, False)
    assert answer.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert (root / object_key(digest)).read_bytes() == data


async def test_a_large_body_or_an_expect_continue_finds_the_stored_blob_first(
    store: tuple[httpx.AsyncClient, Path],
) -> None:
    client, root = store
    large = os.urandom(5000)
    digest = written_by_another(root, large)
    answer = await client.put(f"/api/native/v1/blobs/{digest}", content=large)
    assert (answer.status_code, answer.json()["deduplicated"]) == (200, True)
    assert answer.json()["sha256"] is None  # found, not uploaded: its sha256 is unknown

    small = os.urandom(10)
    digest = written_by_another(root, small)
    answer = await client.put(
        f"/api/native/v1/blobs/{digest}", content=small, headers={"Expect": "100-continue"}
    )
    assert (answer.status_code, answer.json()["deduplicated"]) == (200, True)
    # HEAD always looks: a client asking before it sends learns of the blob.
    digest = written_by_another(root, b"tiny")
    assert (await client.head(f"/api/native/v1/blobs/{digest}")).status_code == 200
