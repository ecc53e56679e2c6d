"""The SQL of pipelines and their stages: looking one up, its version, the lists and counts.

Functions take a connection the caller's transaction owns; nothing here commits. A ``prefix``
(the request's pipeline prefix, ``cmf_common.access``) restricts them to the pipelines whose
names start with it; ``None`` runs the unrestricted statement, unchanged.
"""

from __future__ import annotations

import asyncpg

from cmf_common.db import Connection


async def pipeline_id(conn: Connection, name: str, prefix: str | None = None) -> int | None:
    """The pipeline's id; ``None`` when there is none of that name inside ``prefix``."""
    if prefix is None:
        value = await conn.fetchval("SELECT id FROM pipelines WHERE name = $1", name)
    else:
        value = await conn.fetchval(
            "SELECT id FROM pipelines WHERE name = $1 AND starts_with(name, $2)", name, prefix
        )
    return int(value) if value is not None else None


async def pipeline_version(conn: Connection, name: str) -> int:
    """The pipeline's last outbox sequence: raised by every push that changed it."""
    value = await conn.fetchval("SELECT last_seq FROM outbox_sequences WHERE subject = $1", name)
    return int(value) if value is not None else 0


async def pipeline_names(conn: Connection, prefix: str | None = None) -> list[str]:
    # The reference's /pipelines is cmflib's CmfQuery.get_pipeline_names(), MLMD's
    # get_contexts_by_type("Parent_Context"), which has no ORDER BY; observed on the reference,
    # and what the UI needs (it opens the first entry): the newest pipeline first.
    if prefix is None:
        rows = await conn.fetch("SELECT name FROM pipelines ORDER BY id DESC")
    else:
        rows = await conn.fetch(
            "SELECT name FROM pipelines WHERE starts_with(name, $1) ORDER BY id DESC", prefix
        )
    return [r["name"] for r in rows]


async def count_pipelines(conn: Connection, prefix: str | None = None) -> int:
    if prefix is None:
        return int(await conn.fetchval("SELECT count(*) FROM pipelines"))
    return int(
        await conn.fetchval("SELECT count(*) FROM pipelines WHERE starts_with(name, $1)", prefix)
    )


async def list_pipelines(
    conn: Connection, *, after: tuple[str, int] | None, limit: int, prefix: str | None = None
) -> list[asyncpg.Record]:
    """Pipelines by name, with their counts, the last push's time and the outbox sequence."""
    return await conn.fetch(
        "SELECT p.id, p.name, p.properties, p.custom_properties,"  # noqa: S608
        "   p.create_time_since_epoch, p.last_update_time_since_epoch,"
        "   (SELECT count(*) FROM stages s WHERE s.pipeline_id = p.id) AS stages,"
        "   (SELECT count(*) FROM executions e WHERE e.pipeline_id = p.id) AS executions,"
        # The kept count of the pipeline's distinct artifacts (0005_pipeline_artifacts.sql):
        # counting them over its attributions read and sorted every one of them.
        "   (SELECT coalesce(sum(a.artifacts), 0)::bigint FROM pipeline_artifact_counts a"
        "      WHERE a.pipeline_id = p.id) AS artifacts,"
        "   coalesce((SELECT q.last_seq FROM outbox_sequences q WHERE q.subject = p.name), 0)"
        "     AS seq"
        " FROM pipelines p"
        " WHERE ($1::text IS NULL OR (p.name, p.id) > ($1::text, $2::bigint))"
        + (" AND starts_with(p.name, $4)" if prefix is not None else "")
        + " ORDER BY p.name, p.id LIMIT $3",
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
        *((prefix,) if prefix is not None else ()),
    )


async def list_stages(conn: Connection, pipeline: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT s.id, s.name, s.properties, s.custom_properties,"
        "   s.create_time_since_epoch, s.last_update_time_since_epoch,"
        "   (SELECT count(*) FROM executions e WHERE e.stage_id = s.id) AS executions,"
        "   (SELECT count(*) FROM attributions at WHERE at.stage_id = s.id) AS artifacts"
        " FROM stages s WHERE s.pipeline_id = $1 ORDER BY s.name, s.id",
        pipeline,
    )


async def stage_names(conn: Connection, pipeline: int) -> list[str]:
    """Distinct stages of the pipeline's executions, sorted."""
    rows = await conn.fetch(
        "SELECT stage FROM execution_stage_counts WHERE pipeline_id = $1 AND executions > 0"
        " ORDER BY stage",
        pipeline,
    )
    return [r["stage"] for r in rows]
