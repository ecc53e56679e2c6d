"""Pipelines and their stages: the ``/api/native/v1`` lists (with counts and the last push) and the
reference's lists of names.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from cmf_common.access import current_prefix
from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import NotFound
from cmf_common.paging import decode_cursor, query_scope
from cmf_common.tracing import span
from cmf_metadata.filters import check_text
from cmf_metadata.paging import DEFAULT_LIMIT, check_limit, split_page
from cmf_metadata.store import pipelines as store


async def find_pipeline(conn: Connection, name: str | None) -> int | None:
    """The id of the pipeline a list is filtered by (``None``: no filter);
    :class:`~cmf_common.errors.NotFound` when there is no pipeline of that name (or it is
    outside the request's pipeline prefix: as if there were none)."""
    if name is None:
        return None
    found = await store.pipeline_id(conn, name, current_prefix())
    if found is None:
        raise NotFound(f"pipeline {name!r} not found", code="pipeline_not_found")
    return found


def _context_item(row: asyncpg.Record) -> dict[str, Any]:
    """What ``/api/native/v1`` shows of a pipeline and of a stage alike (MLMD contexts both)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "properties": row["properties"],
        "custom_properties": row["custom_properties"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
    }


async def list_pipelines(
    pool: asyncpg.Pool, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> dict[str, Any]:
    """Pipelines by name, each with its counts, its last push's time and outbox sequence."""
    check_limit(limit)
    scope = query_scope("v1.pipelines")
    after = decode_cursor(cursor, scope, (str, int)) if cursor is not None else None
    prefix = current_prefix()
    async with read_snapshot(pool) as conn:
        total = await store.count_pipelines(conn, prefix)
        rows = await store.list_pipelines(
            conn, after=(after[0], after[1]) if after else None, limit=limit, prefix=prefix
        )
    rows, next_cursor = split_page(rows, limit, scope, key=("name", "id"))
    return {
        "items": [
            {
                **_context_item(r),
                # Every push that changes a pipeline stamps it, so its update time is the last
                # push's; `seq` is the pipeline's outbox sequence (the consistency token's).
                "last_push_time_since_epoch": r["last_update_time_since_epoch"],
                "seq": r["seq"],
                "stage_count": r["stages"],
                "execution_count": r["executions"],
                "artifact_count": r["artifacts"],
            }
            for r in rows
        ],
        "total": total,
        "next_cursor": next_cursor,
    }


async def list_stages(pool: asyncpg.Pool, pipeline_name: str) -> dict[str, Any]:
    """The pipeline's stages by name, each with its counts of executions and artifacts."""
    check_text("pipeline", pipeline_name)
    async with read_snapshot(pool) as conn:
        pipeline = await find_pipeline(conn, pipeline_name)
        assert pipeline is not None
        rows = await store.list_stages(conn, pipeline)
    return {
        "pipeline": pipeline_name,
        "items": [
            {
                **_context_item(r),
                "execution_count": r["executions"],
                "artifact_count": r["artifacts"],
            }
            for r in rows
        ],
    }


async def pipeline_names(pool: asyncpg.Pool) -> list[str]:
    """The reference's ``/pipelines``: every pipeline's name, the newest first."""
    with span("metadata.pipelines"):
        async with read_snapshot(pool) as conn:
            return await store.pipeline_names(conn, current_prefix())


async def stage_names(pool: asyncpg.Pool, pipeline_name: str) -> dict[str, Any]:
    """The reference's ``/pipeline-stages``: the names of the stages that have executions."""
    with span("metadata.pipeline_stages", pipeline=pipeline_name):
        async with read_snapshot(pool) as conn:
            pipeline = await store.pipeline_id(conn, pipeline_name, current_prefix())
            stages = [] if pipeline is None else await store.stage_names(conn, pipeline)
    return {"stages": stages, "total_stages": len(stages)}
