"""The same pushes projected into PostgreSQL and into Neo4j give byte-identical answers on every
lineage route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from lineage_support import Pusher, as_pipeline, empty_neo4j, executions_of, lineage_client
from neo4j import AsyncDriver

from cmf_common.events import Envelope
from cmf_lineage.cache import LruCache
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.store.neo4j_reads import Neo4jGraphReader
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_lineage.store.postgres_reads import PostgresGraphReader
from cmf_testing.generator import payload_text


@pytest.fixture
async def neo4j_driver() -> AsyncIterator[AsyncDriver]:
    async with empty_neo4j() as driver:
        yield driver


@pytest.mark.neo4j
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
    pg_reads = LineageReader(PostgresGraphReader(graph_pool), postgres, LruCache(), "cmf-lineage")
    n4_reads = LineageReader(neo4j_reader, neo4j, LruCache(), "cmf-lineage")
    async with lineage_client(pg_reads) as pg, lineage_client(n4_reads) as n4:
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
            (f"/api/native/v1/lineage/executions/{uuid}", {"pipeline": p})
            for p in ("Test-env", "Other-env")
        ]
        for path, params in paths:
            mine, theirs = await pg.get(path, params=params), await n4.get(path, params=params)
            assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), path
