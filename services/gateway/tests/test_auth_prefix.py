"""The auth matrix's wrong-prefix row, end to end in the embedded server's composition with
auth on: a token restricted to ``teamA-`` lists, pulls and pushes only inside it (its
principal, signed by the gateway, is applied by the services: docs/access.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from auth_support import SECRET

from cmf_artifacts.settings import ArtifactSettings
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.settings import LineageSettings
from cmf_metadata.settings import MetadataSettings
from cmf_server.embedded import embedded_server
from cmf_testing.fixtures import CMF_FIXTURES
from cmf_testing.prefixes import HIDDEN, PREFIX, SCENE, VISIBLE, push_body


@dataclass(frozen=True)
class Scene:
    client: httpx.AsyncClient  # its own token sees every pipeline
    tokens: dict[str, str]
    payload: dict[str, Any]


@pytest.fixture(scope="module")
async def scene(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scene]:
    from pydantic import SecretStr

    url = SecretStr(fresh_database_url)
    files = tmp_path_factory.mktemp("files")
    gateway = embedded_server(
        GatewaySettings(
            auth="on",
            database_url=url,
            principal_secret=SecretStr(SECRET.decode()),
            kafka_bootstrap_servers=None,
            rate_limit_address_rps=0,
        ),
        MetadataSettings(database_url=url, files_dir=files / "files"),
        LineageSettings(database_url=url, neo4j_uri=None, redis_url=None),
        ArtifactSettings(database_url=url, artifacts_dir=files / "artifacts"),
    )
    transport = httpx.ASGITransport(app=gateway)
    async with (
        gateway.own.router.lifespan_context(gateway.own),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        assert gateway.access is not None and gateway.access.store is not None
        store = gateway.access.store
        tokens = {
            kind: (await store.create(f"prefix-{kind}", scope, pipeline_prefix=prefix))[0]
            for kind, scope, prefix in (
                ("all", "write", None),
                ("read", "read", PREFIX),
                ("write", "write", PREFIX),
            )
        }
        http.headers["Authorization"] = f"Bearer {tokens['all']}"
        payload = json.loads((CMF_FIXTURES / "push_example_decoded.json").read_text())
        for name, make in SCENE[:2]:
            answer = await http.post("/api/mlmd_push", json=push_body(name, make(payload)))
            assert answer.json() == {"status": "success"}, answer.text
        yield Scene(http, tokens, payload)


def _as(scene: Scene, kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {scene.tokens[kind]}"}


async def test_a_prefixed_token_lists_only_its_pipelines(scene: Scene) -> None:
    client = scene.client
    everything = await client.get("/api/pipelines")
    assert {VISIBLE, HIDDEN} <= set(everything.json())
    mine = await client.get("/api/pipelines", headers=_as(scene, "read"))
    assert mine.status_code == 200 and mine.json() == [VISIBLE]
    native = await client.get("/api/native/v1/pipelines", headers=_as(scene, "read"))
    assert HIDDEN not in native.text and VISIBLE in native.text


async def test_a_prefixed_token_pulls_nothing_outside(scene: Scene) -> None:
    client = scene.client
    inside = await client.post(
        "/api/mlmd_pull", json={"pipeline_name": VISIBLE}, headers=_as(scene, "read")
    )
    assert inside.status_code == 200
    outside = await client.post(
        "/api/mlmd_pull", json={"pipeline_name": HIDDEN}, headers=_as(scene, "read")
    )
    # Answered as a pipeline that does not exist (it names only what was asked).
    assert outside.status_code == 404, outside.text


async def test_a_prefixed_token_pushes_nothing_outside(scene: Scene) -> None:
    client = scene.client
    client = scene.client
    name, make = SCENE[1]
    refused = await client.post(
        "/api/mlmd_push", json=push_body(name, make(scene.payload)), headers=_as(scene, "write")
    )
    assert refused.status_code == 403, refused.text
    assert "prefix" in refused.json()["detail"]
