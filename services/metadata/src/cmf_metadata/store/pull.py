"""The SQL of the CMF pull: a pipeline (or every pipeline) and what hangs off it, in the
reference's order.

Functions take a connection inside the caller's read-only snapshot; nothing here commits.
"""

from __future__ import annotations

import asyncpg

from cmf_common.db import Connection
from cmf_metadata.store.paging import artifact_in_prefix


async def pipelines(
    conn: Connection, name: str | None, prefix: str | None = None
) -> list[asyncpg.Record]:
    """The pipeline named ``name`` (``None``: every pipeline), inside ``prefix`` when given."""
    if prefix is not None:
        if name is None:
            return await conn.fetch(
                "SELECT * FROM pipelines WHERE starts_with(name, $1) ORDER BY id", prefix
            )
        return await conn.fetch(
            "SELECT * FROM pipelines WHERE name = $1 AND starts_with(name, $2)", name, prefix
        )
    if name is None:
        return await conn.fetch("SELECT * FROM pipelines ORDER BY id")
    return await conn.fetch("SELECT * FROM pipelines WHERE name = $1", name)


async def stages_of(conn: Connection, pipeline_ids: list[int]) -> list[asyncpg.Record]:
    """The newest stage first: the reference's dumptojson walks MLMD's
    get_children_contexts_by_context (no ORDER BY), which its pull answers newest first
    (fixtures/cmf/pull_example.json lists Train before Prepare)."""
    return await conn.fetch(
        "SELECT * FROM stages WHERE pipeline_id = ANY($1::bigint[]) ORDER BY id DESC",
        pipeline_ids,
    )


async def executions_of(
    conn: Connection,
    pipeline_ids: list[int],
    *,
    exec_uuid: str | None,
    updated_after: int | None,
) -> list[asyncpg.Record]:
    """A stage's executions as the reference's dumptojson reads them: MLMD's
    get_executions_by_context, whose default order is create_time_since_epoch DESC, id DESC
    (ml_metadata's metadata_store.py); the caller groups them by stage."""
    if exec_uuid is not None:
        return await conn.fetch(
            "SELECT e.* FROM executions e"
            " WHERE e.id IN (SELECT execution_id FROM execution_uuids"
            "                 WHERE pipeline_id = ANY($1::bigint[]) AND uuid = $2)"
            " ORDER BY e.create_time_since_epoch DESC, e.id DESC",
            pipeline_ids,
            exec_uuid,
        )
    return await conn.fetch(
        "SELECT e.* FROM executions e WHERE e.pipeline_id = ANY($1::bigint[])"
        " AND ($2::bigint IS NULL OR e.last_update_time_since_epoch > $2)"
        " ORDER BY e.create_time_since_epoch DESC, e.id DESC",
        pipeline_ids,
        updated_after,
    )


async def events_of(conn: Connection, execution_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT execution_id, artifact_id, type FROM events"
        " WHERE execution_id = ANY($1::bigint[]) ORDER BY execution_id, position",
        execution_ids,
    )


async def artifacts_by_id(
    conn: Connection, ids: list[int], prefix: str | None = None
) -> list[asyncpg.Record]:
    """The artifacts among ``ids`` (linked in a pipeline inside ``prefix``, when given)."""
    inside = "" if prefix is None else " AND " + artifact_in_prefix("a", "$2")
    return await conn.fetch(
        "SELECT a.id, a.type_id, a.type, a.uri, a.name, a.properties, a.custom_properties,"  # noqa: S608
        "   a.create_time_since_epoch, a.last_update_time_since_epoch"
        f" FROM artifacts a WHERE a.id = ANY($1::bigint[]){inside}",
        ids,
        *((prefix,) if prefix is not None else ()),
    )
