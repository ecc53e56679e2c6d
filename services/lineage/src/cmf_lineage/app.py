"""The lineage service: its graph store, projector, and the lineage queries (cached)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cmf_common.health import Check
from cmf_common.service import service_app
from cmf_lineage.api import lineage as lineage_routes
from cmf_lineage.cache import Cache, LruCache, RedisCache
from cmf_lineage.projector import Projector
from cmf_lineage.queries import LineageQueries
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import MIGRATIONS, OpenStore, open_graph_store

__all__ = ["MIGRATIONS", "create_app"]


def open_cache(settings: LineageSettings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, ttl_s=settings.lineage_cache_ttl_s)
    return LruCache(settings.lineage_cache_max_entries)


async def open_queries(opened: OpenStore) -> LineageQueries:
    """The lineage reads over the store ``opened`` holds (its pool or driver)."""
    if opened.kind == "neo4j":
        from cmf_lineage.store.neo4j import Neo4jGraphStore
        from cmf_lineage.store.neo4j_queries import Neo4jLineageQueries

        assert isinstance(opened.store, Neo4jGraphStore)
        neo4j = Neo4jLineageQueries(opened.store.driver, opened.store.database)
        await neo4j.setup()
        return neo4j
    from cmf_lineage.store.postgres import PostgresGraphStore
    from cmf_lineage.store.postgres_queries import PostgresLineageQueries

    assert isinstance(opened.store, PostgresGraphStore)
    return PostgresLineageQueries(opened.store.pool)


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_graph_store(settings) as opened:
            app.state.graph = opened
            app.state.projector = Projector(opened.store, consumer=settings.lineage_consumer_group)
            cache = open_cache(settings)
            app.state.cache = cache
            try:
                app.state.reader = LineageReader(
                    await open_queries(opened),
                    opened.store,
                    cache,
                    consumer=settings.lineage_consumer_group,
                    wait_s=settings.lineage_consistency_wait_s,
                )
                yield
            finally:
                await cache.close()

    def checks(app: FastAPI) -> dict[str, Check | None]:
        opened: OpenStore | None = getattr(app.state, "graph", None)
        cache = getattr(app.state, "cache", None)
        redis: dict[str, Check | None] = (
            {"redis": cache.ping} if isinstance(cache, RedisCache) else {}
        )
        if opened is None:
            return {"database": None, "neo4j": None, **redis}
        return {"neo4j" if opened.kind == "neo4j" else "graph": opened.check, **redis}

    app = service_app(
        settings=settings, title="CMF Server — lineage", lifespan=lifespan, checks=checks
    )
    # Every CMF and seed route answers at /x and /api/x; ours only under /api/v1.
    app.include_router(lineage_routes.cmf)
    app.include_router(lineage_routes.cmf, prefix="/api")
    app.include_router(lineage_routes.v1, prefix="/api/v1")
    return app
