"""Re-projecting the whole graph from the metadata service's export, and checking a live graph
against it.

The export is the metadata tables written as the very events the outbox carries, so the same
projector code builds the graph; see ``cmf_metadata.export.export_lines``. Its lines are
applied in batches; their ids are fresh, so nothing from the live stream is mistaken for them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from cmf_common.events import Envelope
from cmf_common.prefixes import NATIVE_V1
from cmf_lineage.graph import GraphSnapshot, GraphStore
from cmf_lineage.store.memory import MemoryGraphStore

ExportSource = Callable[[], AsyncIterator[Envelope]]
APPLY_BATCH = 200  # export lines per graph transaction (each line holds up to 500 entities)
PAGE_LINES = 1000
EXPORT_PATH = f"{NATIVE_V1}/export"


def http_export(
    metadata_url: str,
    *,
    timeout_s: float = 120,
    transport: httpx.AsyncBaseTransport | None = None,
    page_lines: int = PAGE_LINES,
    auth: httpx.Auth | None = None,
) -> ExportSource:
    """Pages of ``GET {metadata_url}/api/native/v1/export`` until a short page.

    ``transport`` reaches the metadata service another way than the network (the process's
    in-process ``httpx.ASGITransport``, which holds a whole page in memory: give it a smaller
    ``page_lines``). ``auth`` signs the calls (``cmf_common.access.SignedPrincipal``: a
    metadata service behind a gateway requires a principal)."""

    async def lines() -> AsyncIterator[Envelope]:
        cursor: str | None = None
        async with httpx.AsyncClient(
            base_url=metadata_url, timeout=timeout_s, transport=transport, auth=auth
        ) as client:
            while True:
                params: dict[str, str | int] = {"limit": page_lines}
                if cursor is not None:
                    params["cursor"] = cursor
                count = 0
                async with client.stream("GET", EXPORT_PATH, params=params) as answer:
                    answer.raise_for_status()
                    async for raw in answer.aiter_lines():
                        if not raw.strip():
                            continue
                        body = orjson.loads(raw)
                        cursor = body.get("export_cursor")
                        count += 1
                        yield Envelope.from_json(raw)
                if count < page_lines or cursor is None:
                    return

    return lines


@dataclass
class Progress:
    """A one-line progress report on stderr, redrawn at most ten times a second on a terminal
    (elsewhere only the final line is written)."""

    label: str
    lines: int = 0
    writes: int = 0
    started: float = 0.0
    shown: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def add(self, lines: int, writes: int) -> None:
        self.lines += lines
        self.writes += writes
        now = time.monotonic()
        if sys.stderr.isatty() and now - self.shown > 0.1:
            self.shown = now
            self._draw(end="")

    def done(self) -> None:
        self._draw(end="\n")

    def _draw(self, end: str) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        print(
            f"\r{self.label}: {self.lines:,} export lines, {self.writes:,} graph writes,"
            f" {elapsed:,.1f} s ({self.writes / elapsed:,.0f} writes/s)",
            end=end,
            file=sys.stderr,
            flush=True,
        )


async def project_export(
    source: ExportSource, store: GraphStore, consumer: str, progress: Progress | None = None
) -> int:
    """Apply every export line to ``store``; returns the graph writes made."""
    writes = 0
    pending: list[Envelope] = []

    async def flush() -> None:
        nonlocal writes
        batch = await store.apply(consumer, pending)
        made = batch.writes() if batch is not None else 0
        writes += made
        if progress is not None:
            progress.add(len(pending), made)
        pending.clear()

    async for envelope in source():
        pending.append(envelope)
        if len(pending) >= APPLY_BATCH:
            await flush()
    if pending:
        await flush()
    if progress is not None:
        progress.done()
    return writes


async def expected_graph(source: ExportSource) -> GraphSnapshot:
    """The graph the export describes, projected in memory."""
    memory = MemoryGraphStore()
    await project_export(source, memory, "verify")
    return await memory.snapshot()


async def verify(source: ExportSource, store: GraphStore) -> list[str]:
    """Differences between the live graph and the export's (empty when they agree)."""
    expected = await expected_graph(source)
    return (await store.snapshot()).differences(expected, limit=50)


async def rebuild_postgres(
    database_url: str, source: ExportSource, consumer: str, schema: str = "lineage"
) -> int:
    """Project the export into a fresh schema, switch it in for ``schema``, then apply the
    export once more so that whatever the live projector wrote into the old schema meanwhile
    is carried over (every write is an idempotent upsert)."""
    import asyncpg

    from cmf_common.db import create_pool
    from cmf_common.migrations import migrate
    from cmf_lineage.store import MIGRATIONS
    from cmf_lineage.store.postgres import PostgresGraphStore

    staging, retired = f"{schema}_rebuild", f"{schema}_retired"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{staging}" CASCADE')
    finally:
        await admin.close()
    pool = await create_pool(database_url, staging, max_size=2)
    try:
        await migrate(pool, staging, MIGRATIONS)
        writes = await project_export(
            source, PostgresGraphStore(pool), consumer, Progress("rebuild")
        )
    finally:
        await pool.close()
    admin = await asyncpg.connect(database_url)
    try:
        async with admin.transaction():
            await _carry_blobs(admin, schema, staging)
            await admin.execute(f'DROP SCHEMA IF EXISTS "{retired}" CASCADE')
            await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await admin.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{retired}"')
            await admin.execute(f'ALTER SCHEMA "{staging}" RENAME TO "{schema}"')
            # Dropping the old tables also makes live connections re-plan against the new ones.
            await admin.execute(f'DROP SCHEMA "{retired}" CASCADE')
    finally:
        await admin.close()
    pool = await create_pool(database_url, schema, max_size=2)
    try:
        await project_export(source, PostgresGraphStore(pool), consumer, Progress("catch-up"))
    finally:
        await pool.close()
    return writes


async def _carry_blobs(admin: Any, schema: str, staging: str) -> None:
    """Copy what the artifact service's events wrote (blobs, their count) from the live schema
    into the rebuilt one, in the switch's transaction: the metadata export does not carry
    them. Blob events the live projector applies meanwhile are in the copy (the switch takes
    its tables' locks), later ones go to the rebuilt schema."""
    if not await admin.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".blobs'):
        return
    await admin.execute(
        f'INSERT INTO "{staging}".blobs (digest, size, sha256)'  # noqa: S608 (our schema names)
        f' SELECT digest, size, sha256 FROM "{schema}".blobs ON CONFLICT DO NOTHING'
    )
    await admin.execute(
        f'INSERT INTO "{staging}".blob_progress (consumer, applied)'  # noqa: S608
        f' SELECT consumer, applied FROM "{schema}".blob_progress ON CONFLICT DO NOTHING'
    )


async def rebuild_neo4j(
    store: object,
    source: ExportSource,
    consumer: str,
    emptied: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Neo4j Community has one database, so there is no second graph to switch to: the graph
    is emptied and re-projected in place (lineage reads are incomplete until it finishes).
    ``emptied`` runs once the graph is empty: the graph's version went back, so the version
    board's value must go too (see :mod:`cmf_lineage.versions`)."""
    from cmf_lineage.store.neo4j import Neo4jGraphStore

    assert isinstance(store, Neo4jGraphStore)
    await store.delete_everything(keep_blobs=True)
    if emptied is not None:
        await emptied()
    await store.setup()
    return await project_export(source, store, consumer, Progress("rebuild"))
