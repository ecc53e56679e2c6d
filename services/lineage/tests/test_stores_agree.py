"""The same pushes projected into PostgreSQL and into Neo4j give byte-identical answers on every
lineage route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from lineage_support import Pusher, as_pipeline, empty_neo4j, executions_of
from neo4j import AsyncDriver

from cmf_common.events import Envelope
from cmf_common.service import install_state
from cmf_lineage.api.deps import LineageState
from cmf_lineage.app import create_app
from cmf_lineage.cache import LruCache
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.store.neo4j_reads import Neo4jGraphReader
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_lineage.store.postgres_reads import PostgresGraphReader
from cmf_testing.generator import payload_text


@pytest.fixture
async def neo4j_driver() -> AsyncIterator[AsyncDriver]:
    async with empty_neo4j() as driver:
        yield driver


def _client(graph_reader: GraphReader, store: Any) -> httpx.AsyncClient:
    app = create_app(LineageSettings())
    install_state(app, LineageState(LineageReader(graph_reader, store, LruCache(), "cmf-lineage")))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lineage")


async def test_postgres_and_neo4j_answer_every_route_alike(
    graph_pool: asyncpg.Pool,
    neo4j_driver: AsyncDriver,
    push_events: Pusher,
    payload: dict[str, Any],
) -> None:
    events: list[Envelope] = await push_events(payload)
    events += await push_events(as_pipeline(payload, "Other-env"), "Other-env")
    events += await push_events(json.loads(payload_text("Chain", 25)), "Chain")
    postgres = PostgresGraphStore(graph_pool)
    neo4j = Neo4jGraphStore(neo4j_driver)
    await neo4j.setup()
    neo4j_reader = Neo4jGraphReader(neo4j_driver)
    await neo4j_reader.setup()
    for store in (postgres, neo4j):
        await Projector(store).apply(events)
    async with (
        _client(PostgresGraphReader(graph_pool), postgres) as pg,
        _client(neo4j_reader, neo4j) as n4,
    ):
        full = (await pg.get("/display_lineage", params={"pipeline_name": "Chain"})).json()
        ids = [n["id"].split(":")[1] for n in full["nodes"] if n["kind"] == "artifact"]
        uuid = executions_of(payload)[1]["properties"]["Execution_uuid"]
        paths: list[tuple[str, dict[str, Any]]] = [
            (f"/{tree}/tangled-tree/{p}", {})
            for tree in ("artifact-lineage", "artifact-execution-lineage")
            for p in ("Test-env", "Other-env", "Chain", "NoSuch")
        ]
        paths += [
            (f"/execution-lineage/tangled-tree/{u}/{p}", {})
            for u in ("72d0", "6e89", "zzzz")
            for p in ("Test-env", "Other-env")
        ]
        paths += [
            ("/display_lineage", {"pipeline_name": p, "level": level})
            for p in ("Test-env", "Chain")
            for level in ("pipeline", "stage", "execution", "artifact")
        ]
        paths += [
            (f"/lineage/{i}", {"direction": d, "depth": depth, "max_nodes": cap})
            for i in ids[::7]
            for d in ("upstream", "downstream", "both")
            for depth, cap in ((3, 1000), (100, 7))
        ]
        paths += [
            (f"/api/v1/lineage/executions/{uuid}", {"pipeline": p})
            for p in ("Test-env", "Other-env")
        ]
        for path, params in paths:
            mine, theirs = await pg.get(path, params=params), await n4.get(path, params=params)
            assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), path
