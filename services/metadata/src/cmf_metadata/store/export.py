"""The SQL of the export: the current tables, per pipeline, in id order, in chunks.

Functions take a connection the caller's transaction owns; nothing here commits.
"""

from __future__ import annotations

import asyncpg

from cmf_common.db import Connection


async def export_pipelines(
    conn: Connection, *, after_id: int, limit: int, prefix: str | None = None
) -> list[asyncpg.Record]:
    """Pipelines in id order after ``after_id`` (those inside ``prefix``, when given), each
    with its outbox sequence now."""
    return await conn.fetch(
        "SELECT p.id, p.name, p.properties, p.custom_properties,"  # noqa: S608 (constant fragments)
        "   p.create_time_since_epoch, p.last_update_time_since_epoch,"
        "   coalesce((SELECT q.last_seq FROM outbox_sequences q WHERE q.subject = p.name), 0)"
        "     AS seq"
        " FROM pipelines p WHERE p.id > $1"
        + (" AND starts_with(p.name, $3)" if prefix is not None else "")
        + " ORDER BY p.id LIMIT $2",
        after_id,
        limit,
        *((prefix,) if prefix is not None else ()),
    )


async def export_stages(
    conn: Connection, pipeline: int, *, after_id: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT s.id, s.name, s.properties, s.custom_properties,"
        "   s.create_time_since_epoch, s.last_update_time_since_epoch"
        " FROM stages s WHERE s.pipeline_id = $1 AND s.id > $2 ORDER BY s.id LIMIT $3",
        pipeline,
        after_id,
        limit,
    )


async def export_artifacts(
    conn: Connection, pipeline: int, *, after_id: int, limit: int
) -> list[asyncpg.Record]:
    """The artifacts linked in ``pipeline`` (shared ones appear under each of their pipelines).

    Each stage's next ids come from its (stage_id, artifact_id) index range, so a chunk costs
    the same wherever it starts (3-6 ms for 500 of a 20,000-artifact pipeline; an id array of
    the whole pipeline, rebuilt for every chunk, would make the export quadratic).
    """
    return await conn.fetch(
        "SELECT a.id, a.uri, a.type, a.name, a.properties, a.custom_properties,"
        "   a.create_time_since_epoch, a.last_update_time_since_epoch"
        " FROM artifacts a"
        " WHERE a.id IN ("
        "   SELECT DISTINCT x.artifact_id FROM stages st"
        "   CROSS JOIN LATERAL (SELECT at.artifact_id FROM attributions at"
        "     WHERE at.stage_id = st.id AND at.artifact_id > $2"
        "     ORDER BY at.artifact_id LIMIT $3) AS x"
        "   WHERE st.pipeline_id = $1 ORDER BY x.artifact_id LIMIT $3)"
        " ORDER BY a.id",
        pipeline,
        after_id,
        limit,
    )


async def export_executions(
    conn: Connection, pipeline: int, *, after_id: int, limit: int
) -> list[asyncpg.Record]:
    """Executions with their stage and events (``[{"artifact_uri", "type"}]`` in pushed order)."""
    return await conn.fetch(
        "SELECT e.id, e.uuid, s.name AS stage, e.type, e.name, e.properties,"
        "   e.custom_properties, e.create_time_since_epoch, e.last_update_time_since_epoch,"
        "   coalesce((SELECT json_agg(json_build_object('artifact_uri', a.uri, 'type', ev.type)"
        "                             ORDER BY ev.position, ev.type, a.id)"
        "             FROM events ev JOIN artifacts a ON a.id = ev.artifact_id"
        "             WHERE ev.execution_id = e.id), '[]'::json) AS events"
        " FROM executions e JOIN stages s ON s.id = e.stage_id"
        " WHERE e.pipeline_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3",
        pipeline,
        after_id,
        limit,
    )
