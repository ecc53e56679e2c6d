"""The pipeline prefix in the artifact service (docs/prefixes.md): an
artifact of a pipeline outside a principal's prefix is pulled as one never recorded (the
metadata service, asked with the caller's principal, answers for that principal), a push to one
is refused with 403, and a blob by digest is read only when an artifact of a pipeline inside
the prefix has it. Both services in-process, real PostgreSQL, the local store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from artifacts_support import Recorded, Running, artifact_settings, pipeline_with_bytes, running
from pydantic import SecretStr

from cmf_testing.databases import ADMIN_URL, fresh_database, with_database
from cmf_testing.prefixes import HIDDEN, SECRET, VISIBLE, push_body, signed

HIDDEN_MODEL = b"the bytes of a model only teamB-secret has\n" * 50


@pytest.fixture(scope="module")
def recorded() -> dict[str, Recorded]:
    return pipeline_with_bytes()[1]


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with fresh_database("cmf_artifacts_prefix") as name:
        settings = artifact_settings(
            with_database(ADMIN_URL, name),
            tmp_path_factory.mktemp("blobs"),
            principal_secret=SecretStr(SECRET.decode()),
        )
        async with running(settings) as started:
            payload, recorded = pipeline_with_bytes()
            model = recorded["Model artifacts/model/model.pkl"]
            text = json.dumps(payload)
            visible = json.loads(text.replace("Test-env", VISIBLE))
            hidden = json.loads(
                text.replace("Test-env", HIDDEN).replace(model.uri, _md5(HIDDEN_MODEL))
            )
            for pipeline, made in ((VISIBLE, visible), (HIDDEN, hidden)):
                answer = await started.metadata.post(
                    "/api/mlmd_push", json=push_body(pipeline, made)
                )
                assert answer.json() == {"status": "success"}, answer.text
            yield started


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def client(services: Running) -> httpx.AsyncClient:
    return services.artifacts


def where(artifact: Recorded, pipeline: str) -> dict[str, str]:
    return {"pipeline_name": pipeline, "artifact_name": artifact.name}


async def test_an_artifact_of_a_pipeline_outside_is_pulled_as_unknown(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    data = recorded["Dataset artifacts/data.xml"]
    stored = await client.post(
        "/api/artifact_push", params=where(data, VISIBLE), content=data.content
    )
    assert stored.status_code in (200, 201), stored.text
    mine = await client.get("/api/artifact_pull", params=where(data, VISIBLE), headers=signed())
    assert mine.status_code == 200 and mine.content == data.content
    # The same bytes, recorded in teamB-secret too: not through teamB-secret.
    hidden = await client.get("/api/artifact_pull", params=where(data, HIDDEN), headers=signed())
    never = await client.get(
        "/api/artifact_pull", params=where(data, "never-pushed"), headers=signed()
    )
    assert hidden.status_code == never.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    assert hidden.json()["code"] == never.json()["code"]
    full = await client.get("/api/artifact_pull", params=where(data, HIDDEN))
    assert full.status_code == 200


async def test_a_push_to_a_pipeline_outside_is_refused_with_403(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    label = recorded["Label artifacts/labels.csv"]
    refused = await client.post(
        "/api/artifact_push", params=where(label, HIDDEN), content=label.content, headers=signed()
    )
    assert refused.status_code == 403, refused.text
    reader = signed(scopes=frozenset({"read"}))
    refused = await client.post(
        "/api/artifact_push", params=where(label, VISIBLE), content=label.content, headers=reader
    )
    assert refused.status_code == 403
    allowed = await client.post(
        "/api/artifact_push", params=where(label, VISIBLE), content=label.content, headers=signed()
    )
    assert allowed.status_code in (200, 201), allowed.text


async def test_a_blob_is_read_only_through_an_artifact_inside_the_prefix(
    client: httpx.AsyncClient, recorded: dict[str, Recorded]
) -> None:
    hidden = _md5(HIDDEN_MODEL)
    put = await client.put(f"/api/native/v1/blobs/{hidden}", content=HIDDEN_MODEL)
    assert put.status_code in (200, 201), put.text
    assert (await client.get(f"/api/native/v1/blobs/{hidden}")).status_code == 200
    for method in ("GET", "HEAD"):
        refused = await client.request(method, f"/api/native/v1/blobs/{hidden}", headers=signed())
        assert refused.status_code == 404, (method, refused.text)
    assert (
        await client.get(f"/api/native/v1/blobs/{hidden}/url", headers=signed())
    ).status_code == 404
    model = recorded["Model artifacts/model/model.pkl"]
    stored = await client.put(f"/api/native/v1/blobs/{model.uri}", content=model.content)
    assert stored.status_code in (200, 201)
    mine = await client.get(f"/api/native/v1/blobs/{model.uri}", headers=signed())
    assert mine.status_code == 200 and mine.content == model.content


async def test_an_unsigned_call_is_refused_when_a_principal_is_required(
    tmp_path: Path,
) -> None:
    async with fresh_database("cmf_artifacts_prefix_401") as name:
        settings = artifact_settings(
            with_database(ADMIN_URL, name),
            tmp_path,
            principal_secret=SecretStr(SECRET.decode()),
            require_principal=True,
        )
        async with running(settings) as started:
            answer = await started.artifacts.get(f"/api/native/v1/blobs/{'0' * 32}")
            assert answer.status_code == 401
            assert answer.headers["content-type"].startswith("application/problem+json")
            signed_call: dict[str, Any] = {"headers": signed()}
            answer = await started.artifacts.get(f"/api/native/v1/blobs/{'0' * 32}", **signed_call)
            assert answer.status_code == 404
