"""Executions: the seed's list, the ``/api/native/v1`` list and entity, and the reference's listings
(docs/wire-contract.md §1.4: a stage's executions, the 0.1.0 pipeline-wide list, the lineage
dropdown's names).

No FastAPI here: errors are :class:`~cmf_common.errors.Invalid` and
:class:`~cmf_common.errors.NotFound`; the HTTP boundary renders them.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from cmf_common.access import current_prefix
from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import NotFound
from cmf_common.paging import decode_cursor, query_scope
from cmf_common.tracing import span
from cmf_metadata.filters import ListQuery, PageQuery, check_text, json_like_pattern, list_request
from cmf_metadata.match_counts import MatchCounts
from cmf_metadata.paging import check_limit, keyset_page, pipeline_listing, split_page
from cmf_metadata.pipelines import find_pipeline
from cmf_metadata.properties import Row, merged_properties, original_time
from cmf_metadata.store import executions as store
from cmf_metadata.store.paging import NumberedPage, custom_plans
from cmf_metadata.store.pipelines import pipeline_id, pipeline_version

SORT_FIELDS = tuple(store.EXECUTION_SORTS)  # what /api/native/v1/executions sorts by

# MLMD's Event.Type; CMF writes INPUT (3) and OUTPUT (4).
EVENT_KINDS = {
    0: "UNKNOWN",
    1: "DECLARED_OUTPUT",
    2: "DECLARED_INPUT",
    3: "INPUT",
    4: "OUTPUT",
    5: "INTERNAL_INPUT",
    6: "INTERNAL_OUTPUT",
    7: "PENDING_OUTPUT",
}


async def seed_executions(
    pool: asyncpg.Pool, *, pipeline_name: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """``GET /executions``: executions in id order, ``{"items", "next_cursor"}``."""
    check_text("pipeline_name", pipeline_name)
    check_limit(limit)
    scope = query_scope("seed.executions", pipeline=pipeline_name)
    after = decode_cursor(cursor, scope, (int, int)) if cursor is not None else None
    async with read_snapshot(pool) as conn:
        filters = store.ExecutionFilters(
            pipeline_id=await find_pipeline(conn, pipeline_name), prefix=current_prefix()
        )
        rows = await store.list_executions(conn, filters, keyset_page("id", False, limit, after))
    rows, next_cursor = split_page(rows, limit, scope)
    return {
        "items": [
            {
                "id": r["id"],
                "uuid": r["uuid"],
                "pipeline": r["pipeline"],
                "stage": r["stage"],
                "type": r["type"],
                "properties": r["properties"],
                "custom_properties": r["custom_properties"],
                "create_time_since_epoch": r["create_time_since_epoch"],
                "original_create_time_since_epoch": original_time(r["custom_properties"]),
            }
            for r in rows
        ],
        "next_cursor": next_cursor,
    }


async def list_executions(pool: asyncpg.Pool, query: ListQuery) -> dict[str, Any]:
    """Executions matching every filter, one keyset page, with the total count of matches."""
    listing = list_request(
        "v1.executions", query, store.EXECUTION_SORTS, ("pipeline", "stage", "type")
    )
    with span("metadata.query.executions"):
        async with read_snapshot(pool) as conn:
            filters = store.ExecutionFilters(
                pipeline_id=await find_pipeline(conn, query.pipeline),
                stage=query.stage,
                type=query.type,
                properties=listing.properties,
                created_after=query.created_after,
                created_before=query.created_before,
                text=listing.text,
                text_in_json=json_like_pattern(query.q) if query.q else None,
                prefix=current_prefix(),
            )
            total, rows = await store.page_executions(conn, filters, listing.page)
    return listing.answer(total, rows, api_item)


async def get_execution(pool: asyncpg.Pool, execution_id: int) -> dict[str, Any]:
    """One execution with its events, each naming the artifact on the other side."""
    async with read_snapshot(pool) as conn:
        row = await store.execution(conn, execution_id, current_prefix())
        if row is None:
            raise NotFound(f"execution {execution_id} not found", code="execution_not_found")
        events = await store.events_of_execution(conn, execution_id)
    return {
        **api_item(row),
        "events": [
            {
                **event_item(e),
                "artifact": {"id": e["id"], "uri": e["uri"], "name": e["name"], "type": e["type"]},
            }
            for e in events
        ],
    }


def api_item(row: asyncpg.Record) -> dict[str, Any]:
    """An execution as ``/api/native/v1`` shows it."""
    return {
        "id": row["id"],
        "uuid": row["uuid"],
        "name": row["name"],
        "pipeline": row["pipeline"],
        "stage": row["stage"],
        "type": row["type"],
        "properties": row["properties"],
        "custom_properties": row["custom_properties"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "original_create_time_since_epoch": original_time(row["custom_properties"]),
    }


def event_item(row: asyncpg.Record) -> dict[str, Any]:
    """An MLMD event as ``/api/native/v1`` shows it; the caller adds the entity on its other
    side."""
    return {
        "type": row["event_type"],
        "kind": EVENT_KINDS.get(row["event_type"], "UNKNOWN"),
        "position": row["position"],
        "step_key": row["step_key"],
        "milliseconds_since_epoch": row["milliseconds_since_epoch"],
    }


def listing_item(row: Row) -> dict[str, Any]:
    """An execution as the reference's listings show it."""
    return {
        "execution_id": row["id"],
        "execution_properties": merged_properties(row["properties"], row["custom_properties"]),
    }


def execution_list_name(stage: str, uuid: str) -> str:
    """``<stage after the pipeline>_<first 4 characters of the uuid>``, the lineage dropdown's
    key (``Train_72d0``)."""
    short_stage = stage.split("/", 1)[1] if "/" in stage else stage
    return f"{short_stage}_{uuid.split('-')[0][:4]}"


async def executions_by_stage(
    pool: asyncpg.Pool,
    counts: MatchCounts,
    pipeline_name: str,
    stage: str,
    query: PageQuery,
) -> dict[str, Any]:
    """A filtered page's total comes from ``counts`` when this version of the pipeline was
    counted with this filter before (paging through a broad filter counts it once)."""

    async def read(conn: Connection, pipeline: int) -> NumberedPage:
        await custom_plans(conn)
        key = None
        if query.pattern is not None:
            version = await pipeline_version(conn, pipeline_name)
            key = ("executions-by-stage", pipeline, version, stage, query.pattern)
        page = await store.executions_page(
            conn,
            pipeline=pipeline,
            stage=stage,
            pattern=query.pattern,
            descending=query.descending,
            limit=query.limit,
            offset=query.offset,
            known_total=counts.get(key) if key is not None else None,
        )
        if key is not None and page.rows:
            counts.put(key, page.total)
        return page

    return await pipeline_listing(
        pool, "metadata.executions_by_stage", pipeline_name, read, listing_item
    )


async def pipeline_executions(
    pool: asyncpg.Pool, pipeline_name: str, query: PageQuery
) -> dict[str, Any]:
    """The 0.1.0 ``/executions/{pipeline}``, sorted by stage then id."""

    async def read(conn: Connection, pipeline: int) -> NumberedPage:
        await custom_plans(conn)
        return await store.pipeline_executions_page(
            conn,
            pipeline=pipeline,
            pattern=query.pattern,
            descending=query.descending,
            limit=query.limit,
            offset=query.offset,
        )

    return await pipeline_listing(
        pool, "metadata.pipeline_executions", pipeline_name, read, listing_item
    )


async def list_of_executions(pool: asyncpg.Pool, pipeline_name: str) -> list[str]:
    """The reference's ``/list-of-executions``: each execution's :func:`execution_list_name`."""
    with span("metadata.list_of_executions", pipeline=pipeline_name):
        async with read_snapshot(pool) as conn:
            pipeline = await pipeline_id(conn, pipeline_name, current_prefix())
            if pipeline is None:
                raise NotFound(f"Pipeline {pipeline_name} not found.")
            rows = await store.pipeline_execution_names(conn, pipeline)
    return [execution_list_name(r["type"], r["uuid"]) for r in rows]
