"""``cmf-server lineage rebuild|verify``: find the databases as ``cmf-server up`` does (the data
dir's embedded PostgreSQL, or DATABASE_URL; NEO4J_URI for the graph), read the metadata service's
export API (``GET /api/native/v1/export``: in-process on the data dir's database, or over HTTP with
--metadata-url) and rebuild or check the lineage graph. Both may run beside a running
server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from pydantic import SecretStr

from cmf_common.access import SignedPrincipal
from cmf_common.events import Envelope
from cmf_common.settings import IN_PROCESS_URLS
from cmf_lineage.board import RedisBoard
from cmf_lineage.rebuild import (
    ExportSource,
    http_export,
    rebuild_neo4j,
    rebuild_postgres,
    verify,
)
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import open_graph_store
from cmf_metadata.app import create_app as create_metadata
from cmf_metadata.settings import MetadataSettings

# ASGITransport holds a whole answer in memory: pages of 100 lines (each up to 500 entities).
IN_PROCESS_PAGE_LINES = 100
_SMALL_POOL = {"database_pool_min": 1, "database_pool_max": 2}


def _settings(
    data_dir: Path, *, export_over_http: bool
) -> tuple[MetadataSettings, LineageSettings]:
    """Databases as ``cmf-server up`` finds them: explicit URLs, else the data dir's embedded
    PostgreSQL (started or reused only when something still needs it)."""
    metadata, lineage = MetadataSettings(), LineageSettings()
    needs_metadata = not export_over_http and metadata.database_url is None
    needs_graph = not lineage.neo4j_uri and lineage.database_url is None
    if needs_metadata or needs_graph:
        from cmf_server import embedded_postgres

        uri, _server = embedded_postgres.start(data_dir.resolve())
        url = SecretStr(uri)
        if needs_metadata:
            metadata = metadata.model_copy(update={"database_url": url})
        if needs_graph:
            lineage = lineage.model_copy(update={"database_url": url})
    return metadata, lineage


def in_process_export(metadata: MetadataSettings) -> ExportSource:
    """The metadata service's export API, called in this process: its app runs (its own pool,
    migrations) and is read through ``httpx.ASGITransport``, as the HTTP source reads a remote
    one. Never its tables."""

    async def lines() -> AsyncIterator[Envelope]:
        app = create_metadata(metadata.model_copy(update=_SMALL_POOL))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            source = http_export(
                IN_PROCESS_URLS["metadata"],
                transport=transport,
                page_lines=IN_PROCESS_PAGE_LINES,
                auth=SignedPrincipal.of(metadata),
            )
            async for envelope in source():
                yield envelope

    return lines


async def run(action: str, data_dir: Path, metadata_url: str | None) -> int:
    metadata, lineage = _settings(data_dir, export_over_http=metadata_url is not None)
    source = (
        http_export(metadata_url, auth=SignedPrincipal.of(lineage))
        if metadata_url
        else in_process_export(metadata)
    )
    consumer = lineage.lineage_consumer_group
    if action == "verify":
        async with open_graph_store(lineage) as opened:
            differences = await verify(source, opened.store)
        for line in differences:
            print(line)
        print(
            f"lineage verify: {'clean' if not differences else 'DIFFERENT'} ({opened.kind})",
            file=sys.stderr,
        )
        return 0 if not differences else 1
    if lineage.neo4j_uri:
        board = RedisBoard(lineage.redis_url) if lineage.redis_url else None

        async def emptied() -> None:
            if board is not None:
                await board.forget(consumer)

        try:
            async with open_graph_store(lineage) as opened:
                writes = await rebuild_neo4j(opened.store, source, consumer, emptied)
        finally:
            if board is not None:
                await board.close()
    else:
        writes = await rebuild_postgres(
            lineage.require_database_url(), source, consumer, schema=lineage.db_schema
        )
    print(f"lineage rebuild: done, {writes:,} graph writes", file=sys.stderr)
    return 0
