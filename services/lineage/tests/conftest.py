"""Lineage tests: events made by the real metadata push, projected into real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from lineage_support import GraphUnderTest, Pusher, Scene, empty_neo4j, lineage_client

from cmf_common.db import create_pool
from cmf_common.events import Envelope
from cmf_common.migrations import migrate
from cmf_common.outbox import envelope_of
from cmf_lineage.app import MIGRATIONS as LINEAGE_MIGRATIONS
from cmf_lineage.cache import LruCache
from cmf_lineage.graph import GraphStore
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.store.neo4j_reads import Neo4jGraphReader
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_lineage.store.postgres_reads import PostgresGraphReader
from cmf_metadata.app import MIGRATIONS as METADATA_MIGRATIONS
from cmf_metadata.push import push


@pytest.fixture
async def metadata_pool(make_database_url: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(make_database_url(), "metadata", max_size=4)
    await migrate(pool, "metadata", METADATA_MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
async def graph_pool(make_database_url: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(make_database_url(), "lineage", max_size=4)
    await migrate(pool, "lineage", LINEAGE_MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture(params=["postgres", "neo4j"])
async def graph(
    request: pytest.FixtureRequest, graph_pool: asyncpg.Pool
) -> AsyncIterator[GraphUnderTest]:
    """Every contract test runs once on each store."""
    if request.param == "postgres":

        async def truncate() -> None:
            async with graph_pool.acquire() as conn:
                await conn.execute(
                    "TRUNCATE pipelines, stages, executions, artifacts,"
                    " artifact_pipelines, edges, consumer_inbox,"
                    " consumer_progress, blobs, blob_progress"
                )

        yield GraphUnderTest(PostgresGraphStore(graph_pool), truncate)
        return
    async with empty_neo4j() as driver:
        store = Neo4jGraphStore(driver)
        await store.setup()
        yield GraphUnderTest(store, store.delete_everything)


@pytest.fixture
async def graph_reader(graph: GraphUnderTest) -> GraphReader:
    """The lineage read side over the store under test."""
    if isinstance(graph.store, PostgresGraphStore):
        return PostgresGraphReader(graph.store.pool)
    assert isinstance(graph.store, Neo4jGraphStore)
    neo4j = Neo4jGraphReader(graph.store.driver)
    await neo4j.setup()
    return neo4j


@pytest.fixture
def store(graph: GraphUnderTest) -> GraphStore:
    return graph.store


@pytest.fixture
def payload(fixtures_dir: Path) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads((fixtures_dir / "push_example_decoded.json").read_text())
    return decoded


@pytest.fixture
def push_events(metadata_pool: asyncpg.Pool) -> Pusher:
    """Push a payload through the real merge; returns the outbox events it wrote."""

    async def run(payload: dict[str, Any], pipeline: str = "Test-env") -> list[Envelope]:
        async with metadata_pool.acquire() as conn:
            before = await conn.fetchval("SELECT coalesce(max(position), 0) FROM outbox")
        await push(
            metadata_pool, pipeline_name=pipeline, json_payload=json.dumps(payload), exec_uuid=None
        )
        async with metadata_pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM outbox WHERE position > $1 ORDER BY position", before
            )
        return [envelope_of(r) for r in rows]

    return run


@pytest.fixture
def scene(
    graph: GraphUnderTest, graph_reader: GraphReader, push_events: Pusher, payload: dict[str, Any]
) -> Scene:
    return Scene(graph, graph_reader, push_events, payload)


@pytest.fixture
def reader(graph: GraphUnderTest, graph_reader: GraphReader) -> LineageReader:
    """A reader over the store under test, as a lineage process without a board has."""
    return LineageReader(graph_reader, graph.store, LruCache(), consumer="cmf-lineage")


@pytest.fixture
async def client(reader: LineageReader) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the lineage app, in-process, answering through ``reader``."""
    async with lineage_client(reader) as http:
        yield http


@pytest.fixture
async def loaded(graph: GraphUnderTest, push_events: Pusher, payload: dict[str, Any]) -> None:
    """The captured example pushed through the real merge, projected."""
    await Projector(graph.store).apply(await push_events(payload))
