"""The lineage service: its graph store, projector, and the lineage queries (cached)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cmf_common.health import Check
from cmf_common.service import service_app
from cmf_lineage.api import lineage as lineage_routes
from cmf_lineage.board import RedisBoard
from cmf_lineage.cache import Cache, LruCache, RedisCache
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import MIGRATIONS, OpenStore, open_graph_store, open_queries
from cmf_lineage.versions import GraphVersions

__all__ = ["MIGRATIONS", "create_app", "open_queries"]


def open_cache(settings: LineageSettings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, ttl_s=settings.lineage_cache_ttl_s)
    return LruCache(settings.lineage_cache_max_entries)


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_graph_store(settings) as opened:
            consumer = settings.lineage_consumer_group
            app.state.graph = opened
            queries = await open_queries(opened)
            # Without Redis the reads take the store's version, unless the embedded server
            # (whose projector runs in this process) gives them a board of their own.
            board = RedisBoard(settings.redis_url) if settings.redis_url else None
            versions = GraphVersions(
                queries, consumer, board, sync_every_s=settings.lineage_version_sync_s
            )
            app.state.versions = versions
            app.state.projector = Projector(opened.store, consumer=consumer, versions=versions)
            cache = open_cache(settings)
            app.state.cache = cache
            try:
                app.state.reader = LineageReader(
                    queries,
                    opened.store,
                    cache,
                    consumer=consumer,
                    wait_s=settings.lineage_consistency_wait_s,
                    versions=versions,
                )
                async with versions.kept_synced():
                    yield
            finally:
                await cache.close()
                if board is not None:
                    await board.close()

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
