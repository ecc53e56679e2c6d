"""The lineage service: its graph store, projector, and the lineage reads (cached)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from cmf_common.access import SignedPrincipal
from cmf_common.committed import CommittedKeys, CommittedSource, RedisCommitted
from cmf_common.prefixes import NATIVE_V1, UPSTREAM_V1, include_first
from cmf_common.service import Checks, Service, build_service
from cmf_lineage.api import cmfquery as cmfquery_routes
from cmf_lineage.api import explorer as explorer_routes
from cmf_lineage.api import lineage as lineage_routes
from cmf_lineage.api import upstream as upstream_routes
from cmf_lineage.api.deps import LineageState
from cmf_lineage.board import RedisBoard, VersionBoard
from cmf_lineage.cache import Cache, LruCache, RedisCache
from cmf_lineage.consistency import Consistency, MetadataSequences
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import MIGRATIONS, open_graph_reader, open_graph_store
from cmf_lineage.versions import GraphVersions

__all__ = ["MIGRATIONS", "create_app", "create_service", "open_graph_reader"]


def open_cache(settings: LineageSettings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, ttl_s=settings.lineage_cache_ttl_s)
    return LruCache(settings.lineage_cache_max_entries)


def create_service(
    settings: LineageSettings | None = None,
    *,
    board: VersionBoard | None = None,
    committed: CommittedSource | None = None,
    metadata: httpx.AsyncClient | None = None,
) -> Service[LineageState]:
    """The lineage app and its typed handle (see :class:`cmf_common.service.Service`).

    The graph version is posted on ``board`` when one is given: the embedded server, whose
    projector runs in this process, hands in an in-process board when there is no Redis.
    Otherwise Redis's board when ``REDIS_URL`` is set, else none (reads take the store's).

    Reads wait for the pipelines' committed sequences (:mod:`cmf_lineage.consistency`): from
    ``committed`` when given (the embedded server's in-process board, which its metadata app posts
    on), else from Redis's; the metadata service is asked when the board fails, through
    ``metadata`` (a client whose base URL is the metadata service) or ``METADATA_URL``.
    """
    settings = settings or LineageSettings()

    @asynccontextmanager
    async def start() -> AsyncIterator[LineageState]:
        async with open_graph_store(settings) as opened:
            consumer = settings.lineage_consumer_group
            keys = CommittedKeys.of(settings.events_topic)
            graph_reader = await open_graph_reader(opened)
            own_board = (
                RedisBoard(settings.redis_url, committed=keys)
                if board is None and settings.redis_url
                else None
            )
            versions = GraphVersions(
                graph_reader,
                consumer,
                board if board is not None else own_board,
                sync_every_s=settings.lineage_version_sync_s,
            )
            cache = open_cache(settings)
            shared = (
                RedisCommitted(settings.redis_url, keys)
                if committed is None and settings.redis_url
                else None
            )
            client = metadata
            if client is None and settings.metadata_url:
                client = httpx.AsyncClient(base_url=settings.metadata_url, timeout=2.0)
            consistency = Consistency(
                opened.store,
                versions,
                consumer,
                settings.lineage_consistency_wait_s,
                local=committed,
                shared=shared,
                metadata=(
                    MetadataSequences(client, auth=SignedPrincipal.of(settings))
                    if client is not None
                    else None
                ),
            )
            try:
                reader = LineageReader(
                    graph_reader,
                    opened.store,
                    cache,
                    consumer=consumer,
                    wait_s=settings.lineage_consistency_wait_s,
                    versions=versions,
                    consistency=consistency,
                )
                projector = Projector(opened.store, consumer=consumer, versions=versions)
                async with versions.kept_synced():
                    yield LineageState(reader=reader, opened=opened, projector=projector)
            finally:
                await cache.close()
                if own_board is not None:
                    await own_board.close()
                if shared is not None:
                    await shared.close()
                if client is not None and metadata is None:
                    await client.aclose()

    def checks(state: LineageState | None) -> Checks:
        cache = state.reader.cache if state is not None else None
        redis: Checks = {"redis": cache.ping} if isinstance(cache, RedisCache) else {}
        if state is None or state.opened is None:
            return {"database": None, "neo4j": None, **redis}
        opened = state.opened
        return {"neo4j" if opened.kind == "neo4j" else "graph": opened.check, **redis}

    service = build_service(
        settings=settings,
        title="CMF Server — lineage",
        kind=LineageState,
        start=start,
        checks=checks,
    )
    app = service.app
    # Every CMF and seed route answers at /x and /api/x; ours only under /api/native/v1.
    for cmf_router in (lineage_routes.cmf, lineage_routes.seed):
        app.include_router(cmf_router)
        app.include_router(cmf_router, prefix="/api")
    app.include_router(lineage_routes.v1, prefix=NATIVE_V1)
    app.include_router(explorer_routes.router, prefix=NATIVE_V1)
    # Upstream's v1 generation: its lineage routes and CMFQuery's, in its envelope
    # (docs/upstream-v1.md §6), at both its prefixes, first in the app's routes.
    include_first(app, (upstream_routes.router, cmfquery_routes.router), UPSTREAM_V1)
    return service


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    return create_service(settings).app
