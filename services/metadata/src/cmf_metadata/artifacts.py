"""Artifacts: the seed's list, the ``/api/native/v1`` list and entity, the artifact types, and the
reference's listings (docs/wire-contract.md §1.4: a stage's artifacts of one type, the 0.1.0
pipeline-wide list).

No FastAPI here: errors are :class:`~cmf_common.errors.Invalid` and
:class:`~cmf_common.errors.NotFound`; the HTTP boundary renders them.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from cmf_common.access import current_prefix, url_inside
from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import Invalid, NotFound
from cmf_common.paging import decode_cursor, query_scope
from cmf_common.tracing import span
from cmf_metadata.executions import event_item
from cmf_metadata.filters import ArtifactQuery, PageQuery, check_text, list_request
from cmf_metadata.paging import check_limit, keyset_page, pipeline_listing, split_page
from cmf_metadata.pipelines import find_pipeline
from cmf_metadata.properties import Row, merged_properties, original_time
from cmf_metadata.store import artifacts as store
from cmf_metadata.store.paging import NumberedPage
from cmf_metadata.store.pipelines import pipeline_id
from cmf_metadata.stored import NothingStored, StoredBlobs, with_stored

SORT_FIELDS = tuple(store.ARTIFACT_SORTS)  # what /api/native/v1/artifacts sorts by
MAX_EVENTS = 10_000
DEFAULT_EVENTS = 1000


async def seed_artifacts(
    pool: asyncpg.Pool,
    *,
    pipeline_name: str | None,
    type_name: str | None,
    limit: int,
    cursor: str | None,
    stored: StoredBlobs = NothingStored(),  # noqa: B008 (stateless)
) -> dict[str, Any]:
    """``GET /artifacts``: artifacts in id order, ``{"items", "next_cursor"}``; ``stored``
    says whether the artifact service holds the artifact's bytes."""
    check_text("pipeline_name", pipeline_name)
    check_text("type", type_name)
    check_limit(limit)
    scope = query_scope("seed.artifacts", pipeline=pipeline_name, type=type_name)
    after = decode_cursor(cursor, scope, (int, int)) if cursor is not None else None
    async with read_snapshot(pool) as conn:
        filters = store.ArtifactFilters(
            pipeline_id=await find_pipeline(conn, pipeline_name),
            type=type_name,
            prefix=current_prefix(),
        )
        rows = await store.list_artifacts(conn, filters, keyset_page("id", False, limit, after))
    rows, next_cursor = split_page(rows, limit, scope)
    items = [
        {
            "id": r["id"],
            "uri": r["uri"],
            "name": r["name"],
            "type": r["type"],
            "properties": url_inside(r["properties"]),
            "custom_properties": r["custom_properties"],
            "create_time_since_epoch": r["create_time_since_epoch"],
        }
        for r in rows
    ]
    return {"items": await with_stored(items, stored), "next_cursor": next_cursor}


async def list_artifacts(
    pool: asyncpg.Pool,
    query: ArtifactQuery,
    stored: StoredBlobs = NothingStored(),  # noqa: B008 (stateless)
) -> dict[str, Any]:
    """Artifacts matching every filter, one keyset page, with the total count of matches.

    ``uri`` and ``pipeline`` + ``name`` are the artifact service's exact lookups.
    """
    listing = list_request(
        "v1.artifacts", query, store.ARTIFACT_SORTS, ("pipeline", "stage", "type", "uri", "name")
    )
    with span("metadata.query.artifacts"):
        async with read_snapshot(pool) as conn:
            filters = store.ArtifactFilters(
                pipeline_id=await find_pipeline(conn, query.pipeline),
                stage=query.stage,
                type=query.type,
                uri=query.uri,
                name=query.name,
                properties=listing.properties,
                created_after=query.created_after,
                created_before=query.created_before,
                text=listing.text,
                prefix=current_prefix(),
            )
            total, rows = await store.page_artifacts(conn, filters, listing.page)
    answer = listing.answer(total, rows, api_item)
    await with_stored(answer["items"], stored)
    return answer


async def get_artifact(
    pool: asyncpg.Pool,
    artifact_id: int,
    *,
    event_limit: int = DEFAULT_EVENTS,
    stored: StoredBlobs = NothingStored(),  # noqa: B008 (stateless)
) -> dict[str, Any]:
    """One artifact with its events (the first ``event_limit`` by execution id), each naming
    the execution on the other side, and ``events_total``: the shared Environment artifact
    has an event for every execution."""
    if not 0 <= event_limit <= MAX_EVENTS:
        raise Invalid(f"events must be between 0 and {MAX_EVENTS}", code="invalid_parameter")
    prefix = current_prefix()
    async with read_snapshot(pool) as conn:
        row = await store.artifact(conn, artifact_id, prefix)
        if row is None:
            raise NotFound(f"artifact {artifact_id} not found", code="artifact_not_found")
        events = await store.events_of_artifact(conn, artifact_id, limit=event_limit, prefix=prefix)
        total = await store.count_events_of_artifact(conn, artifact_id, prefix)
    item = (await with_stored([api_item(row)], stored))[0]
    return {
        **item,
        "events": [
            {
                **event_item(e),
                "execution": {
                    "id": e["id"],
                    "uuid": e["uuid"],
                    "name": e["name"],
                    "type": e["type"],
                    "pipeline": e["pipeline"],
                    "stage": e["stage"],
                },
            }
            for e in events
        ],
        "events_total": total,
    }


def api_item(row: asyncpg.Record) -> dict[str, Any]:
    """An artifact as ``/api/native/v1`` shows it: the pipelines it is linked in, those
    inside the request's pipeline prefix (the artifact itself was found through one)."""
    prefix = current_prefix()
    pipelines = list(row["pipelines"])
    return {
        "id": row["id"],
        "uri": row["uri"],
        "name": row["name"],
        "type": row["type"],
        "pipelines": pipelines
        if prefix is None
        else [p for p in pipelines if p.startswith(prefix)],
        "properties": url_inside(row["properties"]),
        "custom_properties": row["custom_properties"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "original_create_time_since_epoch": original_time(row["custom_properties"]),
    }


def listing_item(row: Row) -> dict[str, Any]:
    """An artifact as the reference's stage listing shows it."""
    return {
        "artifact_id": row["id"],
        "name": row["name"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "artifact_properties": merged_properties(
            url_inside(row["properties"]), row["custom_properties"]
        ),
    }


def legacy_listing_item(row: Row) -> dict[str, Any]:
    """An artifact as the 0.1.0 pipeline-wide listing shows it."""
    return {
        "artifact_id": row["id"],
        "name": row["name"],
        "execution": row["execution"],
        "uri": row["uri"],
        "create_time_since_epoch": row["created"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "artifact_properties": merged_properties(
            url_inside(row["properties"]), row["custom_properties"]
        ),
    }


async def artifact_types(pool: asyncpg.Pool) -> list[str]:
    """The reference's ``/artifact_types``."""
    with span("metadata.artifact_types"):
        async with read_snapshot(pool) as conn:
            return await store.artifact_type_names(conn, current_prefix())


async def artifact_types_by_stage(pool: asyncpg.Pool, pipeline_name: str, stage: str) -> list[str]:
    with span("metadata.artifact_types_by_stage", pipeline=pipeline_name):
        async with read_snapshot(pool) as conn:
            pipeline = await pipeline_id(conn, pipeline_name, current_prefix())
            if pipeline is None:
                return []
            return await store.artifact_types_in_stage(conn, pipeline, stage)


async def artifacts_by_stage(
    pool: asyncpg.Pool,
    pipeline_name: str,
    stage: str,
    artifact_type: str,
    sort_field: str,
    query: PageQuery,
) -> dict[str, Any]:
    """Sorted by ``lower(name)`` when ``sort_field`` is ``name``, else by creation time."""

    async def read(conn: Connection, pipeline: int) -> NumberedPage:
        return await store.artifacts_page(
            conn,
            pipeline=pipeline,
            stage=stage,
            artifact_type=artifact_type,
            pattern=query.pattern,
            by_name=sort_field == "name",
            descending=query.descending,
            limit=query.limit,
            offset=query.offset,
        )

    return await pipeline_listing(
        pool, "metadata.artifacts_by_stage", pipeline_name, read, listing_item
    )


async def pipeline_artifacts(
    pool: asyncpg.Pool, pipeline_name: str, artifact_type: str, sort_field: str, query: PageQuery
) -> dict[str, Any]:
    """The 0.1.0 ``/artifacts/{pipeline}/{type}``."""

    async def read(conn: Connection, pipeline: int) -> NumberedPage:
        return await store.pipeline_artifacts_page(
            conn,
            pipeline=pipeline,
            artifact_type=artifact_type,
            pattern=query.pattern,
            sort_field=sort_field,
            descending=query.descending,
            limit=query.limit,
            offset=query.offset,
        )

    return await pipeline_listing(
        pool, "metadata.pipeline_artifacts", pipeline_name, read, legacy_listing_item
    )
