"""``cmf-server lineage rebuild|verify``: find the databases as ``cmf-server up`` does (the data
dir's embedded PostgreSQL, or DATABASE_URL; NEO4J_URI for the graph), read the metadata export
(in-process, or over HTTP with --metadata-url) and rebuild or check the lineage graph. Both may
run beside a running server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from pydantic import SecretStr

from cmf_common.db import create_pool
from cmf_common.events import Envelope
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
from cmf_metadata.settings import MetadataSettings


def _settings(
    data_dir: Path, *, export_over_http: bool
) -> tuple[MetadataSettings, LineageSettings]:
    """Databases as ``cmf-server up`` finds them: explicit URLs, else the data dir's embedded
    PostgreSQL (started or reused only when something still needs it)."""
    metadata, lineage = MetadataSettings(), LineageSettings()
    needs_metadata = not export_over_http and metadata.database_url is None
    needs_graph = not lineage.neo4j_uri and lineage.database_url is None
    if needs_metadata or needs_graph:
        from cmf_gateway import embedded_postgres

        uri, _server = embedded_postgres.start(data_dir.resolve())
        url = SecretStr(uri)
        if needs_metadata:
            metadata = metadata.model_copy(update={"database_url": url})
        if needs_graph:
            lineage = lineage.model_copy(update={"database_url": url})
    return metadata, lineage


def _in_process_export(metadata: MetadataSettings) -> ExportSource:
    from cmf_metadata import export as metadata_export

    async def lines() -> AsyncIterator[Envelope]:
        pool = await create_pool(
            metadata.require_database_url(),
            metadata.db_schema,
            max_size=2,
            application_name="cmf-lineage-rebuild",
        )
        try:
            cursor: str | None = None
            while True:
                count = 0
                async for raw in metadata_export.export_lines(pool, cursor=cursor, limit=1000):
                    count += 1
                    cursor = orjson.loads(raw).get("export_cursor")
                    yield Envelope.from_json(raw)
                if count < 1000 or cursor is None:
                    return
        finally:
            await pool.close()

    return lines


async def run(action: str, data_dir: Path, metadata_url: str | None) -> int:
    metadata, lineage = _settings(data_dir, export_over_http=metadata_url is not None)
    source = http_export(metadata_url) if metadata_url else _in_process_export(metadata)
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
