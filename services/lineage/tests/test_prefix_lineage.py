"""The pipeline prefix in the lineage service, on both graph stores: its tangled trees, walks
and CMFQuery answers keep to the pipelines inside a principal's prefix, in the store's
queries, and the cache keeps each prefix's answers apart (docs/prefixes.md).

The scene of ``cmf_testing.prefixes``, pushed through the real merge and projected: every route
is called by a principal restricted to ``teamA-`` with what lies outside it (``teamB-secret``'s
names and ids), and with ``teamA-p``'s own artifacts, which ``teamB-shared`` shares: neither may
bring anything only the pipelines outside hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from lineage_support import GraphUnderTest, Pusher
from pydantic import SecretStr

from cmf_common.dialects import served_routes
from cmf_common.service import install_state
from cmf_lineage.api.deps import LineageState
from cmf_lineage.app import create_app
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_testing.prefixes import HIDDEN, SCENE, SECRET, SHARED, VISIBLE, filled, leaks_of, signed


@pytest.fixture
def app(reader: LineageReader) -> FastAPI:
    lineage = create_app(LineageSettings(principal_secret=SecretStr(SECRET.decode())))
    install_state(lineage, LineageState(reader=reader))
    return lineage


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lineage") as http:
        yield http


async def _ids(pool: asyncpg.Pool, pipeline: str, model_like: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        model = await conn.fetchrow(
            "SELECT id, name, uri FROM artifacts WHERE type = 'Model' AND name LIKE $1",
            model_like,
        )
        execution = await conn.fetchrow(
            "SELECT e.id, e.uuid FROM executions e JOIN pipelines p ON p.id = e.pipeline_id"
            " WHERE p.name = $1 ORDER BY e.id DESC LIMIT 1",
            pipeline,
        )
    assert model is not None and execution is not None
    return {
        "pipeline_name": pipeline,
        "uuid": execution["uuid"],
        "artifact_id": model["id"],
        "artifact_name": model["name"],
        "uri": model["uri"],
        "execution_id": execution["id"],
    }


@pytest.fixture
async def scene(
    graph: GraphUnderTest, push_events: Pusher, payload: dict[str, Any], metadata_pool: Any
) -> dict[str, dict[str, Any]]:
    """The scene pushed and projected; what each request names: ``hidden`` (outside the
    prefix) and ``shared`` (``teamA-p``'s own, which ``teamB-shared`` shares)."""
    for name, make in SCENE:
        await Projector(graph.store).apply(await push_events(make(payload), name))
    return {
        "hidden": await _ids(metadata_pool, HIDDEN, "hiddenzz/%"),
        "shared": await _ids(metadata_pool, VISIBLE, "artifacts/%"),
    }


async def test_no_answer_holds_what_lies_outside_the_prefix(
    app: FastAPI, client: httpx.AsyncClient, scene: dict[str, dict[str, Any]]
) -> None:
    asked, found = 0, []
    for target in scene.values():
        query = {"uri": target["uri"], "pipeline_name": target["pipeline_name"]}
        ids = [target["execution_id"]]
        body = {"execution_id": ids, "exe_ids": ids}
        for entry in served_routes("lineage", app.routes):
            path = filled(entry.path, target)
            if path is None or entry.path in ("/livez", "/readyz", "/metrics"):
                continue
            for method in sorted(entry.methods & {"GET", "POST"}):
                kw: dict[str, Any] = {"params": query} if method == "GET" else {"json": body}
                found += await leaks_of(client, method, path, **kw)
                asked += 1
    assert asked > 60
    assert not found, "\n".join(found)


async def test_a_shared_artifact_is_walked_inside_the_prefix_only(
    client: httpx.AsyncClient, scene: dict[str, dict[str, Any]]
) -> None:
    name = scene["shared"]["artifact_name"]
    path = f"/v1/artifacts/name/{name}/executions"
    everyone = await client.get(path)
    assert SHARED in everyone.text and VISIBLE in everyone.text
    mine = await client.get(path, headers=signed())
    assert mine.json()["status"] == "success"
    assert VISIBLE in mine.text and SHARED not in mine.text
    # The unrestricted answer is cached: the restricted one is not served from it, nor after.
    assert SHARED in (await client.get(path)).text
    ancestors = await client.get(f"/v1/artifacts/name/{name}/ancestors", headers=signed())
    assert ancestors.json()["status"] == "success" and SHARED not in ancestors.text
    seed = await client.get(
        f"/api/native/v1/lineage/artifacts/{scene['shared']['artifact_id']}", headers=signed()
    )
    assert seed.status_code == 200 and SHARED not in seed.text and VISIBLE in seed.text


async def test_a_pipeline_outside_is_as_unknown_as_one_never_pushed(
    client: httpx.AsyncClient, scene: dict[str, dict[str, Any]]
) -> None:
    for route in ("artifacts/lineage", "hierarchical-lineage"):
        hidden = await client.get(f"/api/v1/pipelines/{HIDDEN}/{route}", headers=signed())
        never = await client.get(f"/api/v1/pipelines/never-pushed/{route}", headers=signed())
        assert hidden.status_code == never.status_code == 404
        mine = await client.get(f"/api/v1/pipelines/{VISIBLE}/{route}", headers=signed())
        assert mine.status_code == 200
    tree = await client.get(
        f"/api/artifact-lineage/tangled-tree/{quote(VISIBLE)}", headers=signed()
    )
    assert tree.status_code == 200 and SHARED not in tree.text
