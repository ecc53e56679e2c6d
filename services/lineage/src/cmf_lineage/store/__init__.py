"""Graph store selection: Neo4j when ``NEO4J_URI`` is set, else PostgreSQL (schema lineage)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cmf_common.db import ping, service_pool
from cmf_common.health import Check
from cmf_common.inbox import INBOX_MIGRATIONS
from cmf_lineage.graph import GraphStore
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.settings import LineageSettings

MIGRATIONS = [INBOX_MIGRATIONS, "cmf_lineage.migrations"]


@dataclass(frozen=True)
class OpenStore:
    store: GraphStore
    kind: str  # "neo4j" or "postgres"
    check: Check


@asynccontextmanager
async def open_graph_store(settings: LineageSettings) -> AsyncIterator[OpenStore]:
    """The configured store, ready (schema, constraints), closed on exit."""
    if settings.neo4j_uri:
        from neo4j import AsyncGraphDatabase

        from cmf_lineage.store.neo4j import Neo4jGraphStore

        password = settings.neo4j_password
        auth = (settings.neo4j_user, password.get_secret_value()) if password else None
        driver = AsyncGraphDatabase.driver(settings.neo4j_uri, auth=auth, connection_timeout=10)
        try:
            neo4j_store = Neo4jGraphStore(driver)
            await neo4j_store.setup()
            yield OpenStore(neo4j_store, "neo4j", driver.verify_connectivity)
        finally:
            await driver.close()
        return
    from cmf_lineage.store.postgres import PostgresGraphStore

    async with service_pool(settings, MIGRATIONS, application_name="cmf-lineage") as pool:
        yield OpenStore(PostgresGraphStore(pool), "postgres", lambda: ping(pool))


async def open_graph_reader(opened: OpenStore) -> GraphReader:
    """The lineage reads over the store ``opened`` holds (its pool or driver)."""
    if opened.kind == "neo4j":
        from cmf_lineage.store.neo4j import Neo4jGraphStore
        from cmf_lineage.store.neo4j_reads import Neo4jGraphReader

        assert isinstance(opened.store, Neo4jGraphStore)
        neo4j = Neo4jGraphReader(opened.store.driver, opened.store.database)
        await neo4j.setup()
        return neo4j
    from cmf_lineage.store.postgres import PostgresGraphStore
    from cmf_lineage.store.postgres_reads import PostgresGraphReader

    assert isinstance(opened.store, PostgresGraphStore)
    return PostgresGraphReader(opened.store.pool)
