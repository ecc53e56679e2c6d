"""Build the CMF pull document (docs/wire-contract.md §1.2, §2.3): the push payload's shape,
server ids.

A few set-based reads, then one pass in Python that nests them; the output keys, value types and
nesting match what the reference server answers, so the real client merges it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from cmf_common.access import current_prefix, url_inside
from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import NotFound
from cmf_common.tracing import span
from cmf_metadata.merge import PIPELINE_TYPE, STAGE_TYPE
from cmf_metadata.store import pull as store


@dataclass(frozen=True)
class PullQuery:
    pipeline_name: str | None
    exec_uuid: str | None = None
    last_sync_time: int | None = None


class ExecutionNotFound(Exception):
    """The requested ``exec_uuid`` is not in the pipeline: the reference says ``no_exec_uuid``."""


def as_the_reference_reads(query: PullQuery) -> PullQuery:
    """The request as the reference's server/app/get_data.py ``get_mlmd_from_server`` uses it:
    a named pipeline is answered whole (``dumptojson``, narrowed by ``exec_uuid`` only), so
    ``last_sync_time`` is ignored; without a pipeline every pipeline is answered
    (``extract_to_json``), narrowed by ``last_sync_time`` when it is set and not 0, and
    ``exec_uuid`` is ignored."""
    if query.pipeline_name is not None:
        return PullQuery(query.pipeline_name, query.exec_uuid)
    return PullQuery(None, last_sync_time=query.last_sync_time or None)


async def pull(pool: asyncpg.Pool, query: PullQuery) -> dict[str, Any]:
    query = as_the_reference_reads(query)
    with span("metadata.pull", pipeline=query.pipeline_name):
        async with read_snapshot(pool) as conn:
            return await document(conn, query)


async def document(
    conn: Connection, query: PullQuery, *, strict_exec_uuid: bool = True
) -> dict[str, Any]:
    """The pull document of ``query`` (as :func:`as_the_reference_reads` reads it) inside the
    caller's snapshot. An ``exec_uuid`` no execution of the pipeline has raises
    :class:`ExecutionNotFound`, unless not ``strict_exec_uuid``: then the stages come empty,
    as cmflib's ``dumptojson`` answers."""
    # Outside the request's pipeline prefix a pipeline is as absent as one never pushed.
    pipelines = await store.pipelines(conn, query.pipeline_name, current_prefix())
    if query.pipeline_name is not None and not pipelines:
        raise NotFound(f"Pipeline {query.pipeline_name} not found.")
    pipeline_ids = [p["id"] for p in pipelines]
    stages = await store.stages_of(conn, pipeline_ids)
    executions = await store.executions_of(
        conn, pipeline_ids, exec_uuid=query.exec_uuid, updated_after=query.last_sync_time
    )
    if query.exec_uuid is not None and not executions and strict_exec_uuid:
        raise ExecutionNotFound(query.exec_uuid)
    events = await store.events_of(conn, [e["id"] for e in executions])
    artifacts = {
        a["id"]: _artifact(a)
        for a in await store.artifacts_by_id(conn, sorted({ev["artifact_id"] for ev in events}))
    }

    events_by_execution: dict[int, list[dict[str, Any]]] = {}
    for ev in events:
        events_by_execution.setdefault(ev["execution_id"], []).append(
            {"type": ev["type"], "artifact": artifacts[ev["artifact_id"]]}
        )
    executions_by_stage: dict[int, list[dict[str, Any]]] = {}
    for ex in executions:
        executions_by_stage.setdefault(ex["stage_id"], []).append(
            _execution(ex, events_by_execution.get(ex["id"], []))
        )
    stages_by_pipeline: dict[int, list[dict[str, Any]]] = {}
    for st in stages:
        stage_executions = executions_by_stage.get(st["id"], [])
        if not _kept(st, stage_executions, query.last_sync_time):
            continue
        stages_by_pipeline.setdefault(st["pipeline_id"], []).append(
            _context(st, STAGE_TYPE, executions=stage_executions)
        )

    document = []
    for p in pipelines:
        pipeline_stages = stages_by_pipeline.get(p["id"], [])
        if not _kept(p, pipeline_stages, query.last_sync_time):
            continue
        document.append(_context(p, PIPELINE_TYPE, stages=pipeline_stages))
    return {"Pipeline": document}


def _kept(row: asyncpg.Record, children: list[Any], since: int | None) -> bool:
    """Since a sync time, a context stays if it changed or holds something that did."""
    return since is None or bool(children) or row["last_update_time_since_epoch"] > since


def _context(row: asyncpg.Record, type_name: str, **children: Any) -> dict[str, Any]:
    return {
        **children,
        "create_time_since_epoch": row["create_time_since_epoch"],
        "custom_properties": row["custom_properties"],
        "id": row["id"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "name": row["name"],
        "properties": row["properties"],
        "type": type_name,
        "type_id": row["type_id"],
    }


def _execution(row: asyncpg.Record, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": row["type"],
        "name": row["name"],
        "events": events,
        "create_time_since_epoch": row["create_time_since_epoch"],
        "custom_properties": row["custom_properties"],
        "id": row["id"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "properties": row["properties"],
        "type_id": row["type_id"],
    }


def _artifact(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "type": row["type"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "custom_properties": row["custom_properties"],
        "id": row["id"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "name": row["name"],
        "properties": url_inside(row["properties"]),
        "type_id": row["type_id"],
        "uri": row["uri"],
    }
