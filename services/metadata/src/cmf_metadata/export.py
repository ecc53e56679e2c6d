"""The export: the current tables, pipeline by pipeline, as the events the outbox carries.

See :func:`export_lines` for why a snapshot of the tables and not the outbox itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from cmf_common.access import current_prefix, url_inside
from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import Invalid
from cmf_common.events import Envelope, uuid7
from cmf_common.metadata_events import (
    SOURCE,
    ArtifactUpserted,
    ExecutionMerged,
    MetadataEvent,
    PipelineUpserted,
    StageUpserted,
)
from cmf_common.paging import decode_cursor, encode_cursor, query_scope
from cmf_metadata.event_data import artifact_of, context_of, execution_of
from cmf_metadata.store import export as store

EXPORT_CHUNK = 500  # entities per line, as the push writes them to the outbox
DEFAULT_EXPORT_LINES = 100
MAX_EXPORT_LINES = 1000
_PHASES = ("pipeline", "stages", "artifacts", "executions")
_EXPORT_SCOPE = query_scope("v1.export")


@dataclass(frozen=True)
class ExportPosition:
    """Where a page of the export resumes: a pipeline, a phase of it, the last id done."""

    pipeline_id: int = 0
    phase: int = 0
    after_id: int = 0

    def encode(self) -> str:
        return encode_cursor(_EXPORT_SCOPE, [self.pipeline_id, self.phase, self.after_id])

    @classmethod
    def decode(cls, token: str) -> ExportPosition:
        pipeline_id, phase, after_id = decode_cursor(token, _EXPORT_SCOPE, (int, int, int))
        if pipeline_id < 0 or after_id < 0 or not 0 <= phase < len(_PHASES):
            raise Invalid("the cursor is not one the export handed out", code="invalid_cursor")
        return cls(pipeline_id, phase, after_id)


def check_export_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_EXPORT_LINES:
        raise Invalid(
            f"limit must be between 1 and {MAX_EXPORT_LINES} lines", code="invalid_parameter"
        )


def export_lines(
    pool: asyncpg.Pool, *, cursor: str | None, limit: int = DEFAULT_EXPORT_LINES
) -> AsyncIterator[bytes]:
    """One page of the export: at most ``limit`` NDJSON lines, each an event envelope.

    Why a snapshot of the tables and not the outbox rows: the relay deletes published outbox
    rows after its retention, so the outbox alone cannot rebuild a graph older than that; the
    tables always can. The snapshot is written as the very events the outbox carries (same
    ``type`` and ``data``, with the creation times added), so a consumer rebuilds with the code
    that consumes the live stream. Per pipeline, in id order: ``pipeline.upserted``, then
    ``stage.upserted``, ``artifact.upserted`` (every artifact linked in the pipeline; a shared
    one appears under each of its pipelines) and ``execution.merged`` (each with its events as
    ``[{"artifact_uri", "type"}]``), at most 500 entities a line.

    Each line carries the envelope's fields (``cmf_common.events.Envelope``): a fresh ``id``,
    ``subject`` = the pipeline, ``seq`` = the pipeline's outbox sequence in the snapshot the
    page was read in, so a line reflects every event up to that ``seq``. It adds
    ``export_cursor``, where the next page starts after that line; a page shorter than
    ``limit`` is the last. Pages are separate snapshots: to be current, a consumer applies
    each pipeline's live events whose ``seq`` is greater than the smallest ``seq`` it exported
    for that pipeline (every event is an idempotent upsert, so overlap is harmless).

    Memory stays constant: one page is read in one repeatable-read transaction, 500 entities
    at a time, each batch written out before the next is read. The cursor and the limit are
    checked here, before anything is streamed. Only pipelines inside the request's pipeline
    prefix are exported (the services' own principal has none).
    """
    check_export_limit(limit)
    position = ExportPosition.decode(cursor) if cursor is not None else ExportPosition()
    return _export_page(pool, position, limit, current_prefix())


async def _export_page(
    pool: asyncpg.Pool, position: ExportPosition, limit: int, prefix: str | None
) -> AsyncIterator[bytes]:
    produced = 0
    async with read_snapshot(pool) as conn:
        snapshot_time = datetime.now(UTC).isoformat()
        # The first pipeline is the cursor's own (part of it may be left) and those after it.
        after_pipeline = max(position.pipeline_id - 1, 0)
        while True:
            pipelines = await store.export_pipelines(
                conn, after_id=after_pipeline, limit=16, prefix=prefix
            )
            if not pipelines:
                return
            for pipeline in pipelines:
                after_pipeline = pipeline["id"]
                start = position if pipeline["id"] == position.pipeline_id else None
                lines = _export_pipeline(conn, pipeline, start, snapshot_time)
                async with aclosing(lines):
                    async for line in lines:
                        yield line
                        produced += 1
                        if produced >= limit:
                            return


async def _export_pipeline(
    conn: Connection,
    pipeline: asyncpg.Record,
    start: ExportPosition | None,
    snapshot_time: str,
) -> AsyncGenerator[bytes, None]:
    pid, name, seq = pipeline["id"], pipeline["name"], pipeline["seq"]
    first_phase = start.phase if start is not None else 0
    for phase in range(first_phase, len(_PHASES)):
        after_id = start.after_id if start is not None and phase == start.phase else 0
        if _PHASES[phase] == "pipeline":
            if after_id == 0:
                cursor = ExportPosition(pid, phase, pid).encode()
                yield _line(
                    PipelineUpserted(context_of(pipeline)), name, seq, snapshot_time, cursor
                )
            continue
        while True:
            rows, event = await _export_chunk(conn, _PHASES[phase], pid, name, after_id)
            if not rows:
                break
            after_id = rows[-1]["id"]
            cursor = ExportPosition(pid, phase, after_id).encode()
            yield _line(event, name, seq, snapshot_time, cursor)
            if len(rows) < EXPORT_CHUNK:
                break


async def _export_chunk(
    conn: Connection, phase: str, pipeline: int, name: str, after_id: int
) -> tuple[list[asyncpg.Record], MetadataEvent]:
    if phase == "stages":
        rows = await store.export_stages(conn, pipeline, after_id=after_id, limit=EXPORT_CHUNK)
        return rows, StageUpserted(name, [context_of(r) for r in rows])
    if phase == "artifacts":
        rows = await store.export_artifacts(conn, pipeline, after_id=after_id, limit=EXPORT_CHUNK)
        return rows, ArtifactUpserted(name, [artifact_of(_url_inside(r)) for r in rows])
    rows = await store.export_executions(conn, pipeline, after_id=after_id, limit=EXPORT_CHUNK)
    return rows, ExecutionMerged(name, [execution_of(r) for r in rows])


def _url_inside(row: asyncpg.Record) -> asyncpg.Record | dict[str, object]:
    """The artifact row, its ``url`` as the request's pipeline prefix lets it see it."""
    if current_prefix() is None:
        return row
    return {**dict(row), "properties": url_inside(row["properties"])}


def _line(event: MetadataEvent, subject: str, seq: int, time: str, cursor: str) -> bytes:
    """One NDJSON line: the event's envelope, and where the page after it starts."""
    envelope = Envelope(
        id=str(uuid7()),
        type=event.TYPE,
        source=SOURCE,
        subject=subject,
        time=time,
        seq=seq,
        data=event.to_data(),
    )
    return envelope.to_json(export_cursor=cursor) + b"\n"
