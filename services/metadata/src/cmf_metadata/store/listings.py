"""All SQL of the CMF listing routes (docs/wire-contract.md §1.4, §1.9) and the model card.

Every statement is a constant; values, filters and sort choices are parameters. Functions take a
connection inside the caller's (read-only) transaction. A page is one statement: the matching
rows are collected once, counted, and only the page's rows are joined to their properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from cmf_common.db import Connection


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[asyncpg.Record]


def _page(rows: list[asyncpg.Record]) -> Page:
    """``total`` rides on every row; a page past the end has no row and so a total of 0, as
    the reference's ``count(*) over ()`` gives."""
    return Page(rows[0]["total"] if rows else 0, rows)


async def custom_plans(conn: Connection) -> None:
    """Plan each filtered statement for its own pattern: a selective one uses the trigram index,
    a broad one scans the stage (a generic plan would pick one for both)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def pipeline_id(conn: Connection, name: str) -> int | None:
    value = await conn.fetchval("SELECT id FROM pipelines WHERE name = $1", name)
    return int(value) if value is not None else None


async def pipeline_version(conn: Connection, name: str) -> int:
    """The pipeline's last outbox sequence: raised by every push that changed it."""
    value = await conn.fetchval("SELECT last_seq FROM outbox_sequences WHERE subject = $1", name)
    return int(value) if value is not None else 0


async def pipeline_names(conn: Connection) -> list[str]:
    return [r["name"] for r in await conn.fetch("SELECT name FROM pipelines ORDER BY id")]


async def artifact_type_names(conn: Connection) -> list[str]:
    """Artifact types in the order they were first stored (MLMD's type registration order)."""
    rows = await conn.fetch(
        "SELECT name FROM types WHERE kind = 1 AND name <> 'Environment' ORDER BY id"
    )
    return [r["name"] for r in rows]


async def stage_names(conn: Connection, pipeline: int) -> list[str]:
    """Distinct stages of the pipeline's executions, sorted."""
    rows = await conn.fetch(
        "SELECT stage FROM execution_stage_counts WHERE pipeline_id = $1 AND executions > 0"
        " ORDER BY stage",
        pipeline,
    )
    return [r["stage"] for r in rows]


async def artifact_types_in_stage(conn: Connection, pipeline: int, stage: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT artifact_type FROM stage_artifact_counts"
        " WHERE pipeline_id = $1 AND stage = $2 AND artifact_type <> 'Environment'"
        "   AND artifacts > 0"
        " ORDER BY artifact_type",
        pipeline,
        stage,
    )
    return [r["artifact_type"] for r in rows]


# A filtered page and its count are two statements in one snapshot: the page walks the sort
# index and stops at its last row when the filter is broad (or sorts the few matches the
# trigram index finds when it is selective); the count may scan the stage in parallel.
_FILTERED_PAGE = (
    "SELECT e.id, e.properties, e.custom_properties"
    " FROM (SELECT execution_id, sort_time FROM execution_search"
    "       WHERE pipeline_id = $1 AND stage = $2 AND search_text LIKE lower($3)"
    "       ORDER BY sort_time {direction} NULLS LAST, execution_id {direction}"
    "       LIMIT $4 OFFSET $5) AS page"
    " JOIN executions e ON e.id = page.execution_id"
    " ORDER BY page.sort_time {direction} NULLS LAST, page.execution_id {direction}"
)
_FILTERED_COUNT = (
    "SELECT count(*) FROM execution_search"
    " WHERE pipeline_id = $1 AND stage = $2 AND search_text LIKE lower($3)"
)
# An unfiltered page walks the sort index; its total is the stage's kept count.
_WHOLE_PAGE = (
    "SELECT c.executions AS total, e.id, e.properties, e.custom_properties"
    " FROM (SELECT execution_id, sort_time FROM execution_search"
    "       WHERE pipeline_id = $1 AND stage = $2"
    "       ORDER BY sort_time {direction} NULLS LAST, execution_id {direction}"
    "       LIMIT $3 OFFSET $4) AS page"
    " JOIN executions e ON e.id = page.execution_id"
    " JOIN execution_stage_counts c ON c.pipeline_id = $1 AND c.stage = $2"
    " ORDER BY page.sort_time {direction} NULLS LAST, page.execution_id {direction}"
)
_DIRECTIONS = {False: "ASC", True: "DESC"}
_FILTERED_PAGES = {d: _FILTERED_PAGE.replace("{direction}", w) for d, w in _DIRECTIONS.items()}
_WHOLE_PAGES = {d: _WHOLE_PAGE.replace("{direction}", w) for d, w in _DIRECTIONS.items()}


async def executions_page(
    conn: Connection,
    *,
    pipeline: int,
    stage: str,
    pattern: str | None,
    descending: bool,
    limit: int,
    offset: int,
    known_total: int | None = None,
) -> Page:
    """A stage's executions sorted by their client creation time; ``pattern`` is a LIKE
    pattern over the lower-case search text (``None``: every execution). ``known_total`` is
    the filtered count when the caller already knows it for this snapshot."""
    if pattern is None:
        return _page(await conn.fetch(_WHOLE_PAGES[descending], pipeline, stage, limit, offset))
    rows = await conn.fetch(_FILTERED_PAGES[descending], pipeline, stage, pattern, limit, offset)
    if not rows:
        return Page(0, [])  # past the end the reference's count(*) over () gives 0
    if known_total is None:
        known_total = await conn.fetchval(_FILTERED_COUNT, pipeline, stage, pattern)
    return Page(known_total, rows)


async def pipeline_executions_page(
    conn: Connection,
    *,
    pipeline: int,
    pattern: str | None,
    descending: bool,
    limit: int,
    offset: int,
) -> Page:
    """The 0.1.0 ``/executions/{pipeline}``: every stage, sorted by stage then id."""
    rows = await conn.fetch(
        "WITH matched AS MATERIALIZED ("
        "  SELECT execution_id, stage FROM execution_search"
        "  WHERE pipeline_id = $1 AND ($2::text IS NULL OR search_text LIKE lower($2))"
        "), page AS ("
        "  SELECT execution_id, stage FROM matched"
        "  ORDER BY CASE WHEN $3 THEN NULL ELSE stage END ASC,"
        "           CASE WHEN $3 THEN stage END DESC,"
        "           CASE WHEN $3 THEN NULL ELSE execution_id END ASC,"
        "           CASE WHEN $3 THEN execution_id END DESC"
        "  LIMIT $4 OFFSET $5"
        ") SELECT (SELECT count(*) FROM matched) AS total,"
        "   e.id, e.properties, e.custom_properties"
        " FROM page JOIN executions e ON e.id = page.execution_id"
        " ORDER BY CASE WHEN $3 THEN NULL ELSE page.stage END ASC,"
        "          CASE WHEN $3 THEN page.stage END DESC,"
        "          CASE WHEN $3 THEN NULL ELSE page.execution_id END ASC,"
        "          CASE WHEN $3 THEN page.execution_id END DESC",
        pipeline,
        pattern,
        descending,
        limit,
        offset,
    )
    return _page(rows)


# The UI's first artifacts view (by name, no filter) walks the stage's name index and reads
# the kept count; other sorts and filters go through every artifact of the type in the stage.
_NAMED_PAGE = (
    "SELECT c.artifacts AS total, a.id, a.name, a.create_time_since_epoch,"
    "   a.properties, a.custom_properties"
    " FROM (SELECT artifact_id, sort_name FROM stage_artifacts"
    "       WHERE pipeline_id = $1 AND stage = $2 AND artifact_type = $3"
    "       ORDER BY sort_name {direction}, artifact_id {direction}"
    "       LIMIT $4 OFFSET $5) AS page"
    " JOIN artifacts a ON a.id = page.artifact_id"
    " JOIN stage_artifact_counts c"
    "   ON c.pipeline_id = $1 AND c.stage = $2 AND c.artifact_type = $3"
    " ORDER BY page.sort_name {direction}, page.artifact_id {direction}"
)
_NAMED_PAGES = {d: _NAMED_PAGE.replace("{direction}", w) for d, w in _DIRECTIONS.items()}


async def artifacts_page(
    conn: Connection,
    *,
    pipeline: int,
    stage: str,
    artifact_type: str,
    pattern: str | None,
    by_name: bool,
    descending: bool,
    limit: int,
    offset: int,
) -> Page:
    """Artifacts of one type with an event on an execution of the stage; sorted by
    ``lower(name)`` or by the server's creation time, then id. The filter runs over the
    reference's text: id, name, the creation-time renderings, every property."""
    if pattern is None and by_name:
        return _page(
            await conn.fetch(
                _NAMED_PAGES[descending], pipeline, stage, artifact_type, limit, offset
            )
        )
    rows = await conn.fetch(
        "WITH matched AS MATERIALIZED ("
        "  SELECT a.id, s.sort_name, a.create_time_since_epoch AS sort_time"
        "  FROM stage_artifacts s JOIN artifacts a ON a.id = s.artifact_id"
        "  WHERE s.pipeline_id = $1 AND s.stage = $2 AND s.artifact_type = $3"
        "    AND ($4::text IS NULL OR lower(a.id::text || a.name"
        "    || cmf_time_text(a.create_time_since_epoch::double precision)"
        "    || a.properties::text || a.custom_properties::text) LIKE lower($4))"
        "), page AS ("
        "  SELECT id, sort_name, sort_time FROM matched"
        "  ORDER BY CASE WHEN $5 AND NOT $6 THEN sort_name END ASC,"
        "           CASE WHEN $5 AND $6 THEN sort_name END DESC,"
        "           CASE WHEN NOT $5 AND NOT $6 THEN sort_time END ASC,"
        "           CASE WHEN NOT $5 AND $6 THEN sort_time END DESC,"
        "           CASE WHEN $6 THEN NULL ELSE id END ASC,"
        "           CASE WHEN $6 THEN id END DESC"
        "  LIMIT $7 OFFSET $8"
        ") SELECT (SELECT count(*) FROM matched) AS total, a.id, a.name,"
        "   a.create_time_since_epoch, a.properties, a.custom_properties"
        " FROM page JOIN artifacts a ON a.id = page.id"
        " ORDER BY CASE WHEN $5 AND NOT $6 THEN page.sort_name END ASC,"
        "          CASE WHEN $5 AND $6 THEN page.sort_name END DESC,"
        "          CASE WHEN NOT $5 AND NOT $6 THEN page.sort_time END ASC,"
        "          CASE WHEN NOT $5 AND $6 THEN page.sort_time END DESC,"
        "          CASE WHEN $6 THEN NULL ELSE page.id END ASC,"
        "          CASE WHEN $6 THEN page.id END DESC",
        pipeline,
        stage,
        artifact_type,
        pattern,
        by_name,
        descending,
        limit,
        offset,
    )
    return _page(rows)


# The 0.1.0 artifact listing's sort columns, by the name the client sends.
LEGACY_ARTIFACT_SORTS = (
    "name",
    "artifact_id",
    "uri",
    "create_time_since_epoch",
    "last_update_time_since_epoch",
)


async def pipeline_artifacts_page(
    conn: Connection,
    *,
    pipeline: int,
    artifact_type: str,
    pattern: str | None,
    sort_field: str,
    descending: bool,
    limit: int,
    offset: int,
) -> Page:
    """The 0.1.0 ``/artifacts/{pipeline}/{type}``: the pipeline's artifacts of one type, with
    the stages that used each and the creation time as an HTTP date."""
    sort_index = LEGACY_ARTIFACT_SORTS.index(sort_field)
    rows = await conn.fetch(
        "WITH linked AS ("
        "  SELECT DISTINCT ev.artifact_id FROM executions e"
        "  JOIN events ev ON ev.execution_id = e.id WHERE e.pipeline_id = $1"
        "), described AS ("
        "  SELECT a.id, a.name, a.uri, a.create_time_since_epoch, a.last_update_time_since_epoch,"
        "    a.properties, a.custom_properties,"
        "    (SELECT string_agg(DISTINCT st.name, ', ') FROM events ev2"
        "       JOIN executions e2 ON e2.id = ev2.execution_id"
        "       JOIN stages st ON st.id = e2.stage_id WHERE ev2.artifact_id = a.id) AS execution,"
        "    to_char(timezone('GMT', to_timestamp(a.create_time_since_epoch / 1000)),"
        "            'Dy, DD Mon YYYY HH24:MI:SS GMT') AS created"
        "  FROM artifacts a JOIN linked ON linked.artifact_id = a.id WHERE a.type = $2"
        "), matched AS MATERIALIZED ("
        "  SELECT * FROM described d WHERE $3::text IS NULL OR lower(d.id::text || d.name"
        "    || coalesce(d.execution, '') || d.uri || d.created"
        "    || d.last_update_time_since_epoch::text || d.properties::text"
        "    || d.custom_properties::text) LIKE lower($3)"
        ") SELECT (SELECT count(*) FROM matched) AS total, m.* FROM matched m"
        " ORDER BY"
        "   CASE WHEN $4 = 0 AND NOT $5 THEN m.name END ASC,"
        "   CASE WHEN $4 = 0 AND $5 THEN m.name END DESC,"
        "   CASE WHEN $4 = 2 AND NOT $5 THEN m.uri END ASC,"
        "   CASE WHEN $4 = 2 AND $5 THEN m.uri END DESC,"
        "   CASE WHEN $4 = 3 AND NOT $5 THEN m.create_time_since_epoch END ASC,"
        "   CASE WHEN $4 = 3 AND $5 THEN m.create_time_since_epoch END DESC,"
        "   CASE WHEN $4 = 4 AND NOT $5 THEN m.last_update_time_since_epoch END ASC,"
        "   CASE WHEN $4 = 4 AND $5 THEN m.last_update_time_since_epoch END DESC,"
        "   CASE WHEN $5 THEN NULL ELSE m.id END ASC,"
        "   CASE WHEN $5 THEN m.id END DESC"
        " LIMIT $6 OFFSET $7",
        pipeline,
        artifact_type,
        pattern,
        sort_index,
        descending,
        limit,
        offset,
    )
    return _page(rows)


async def pipeline_execution_names(conn: Connection, pipeline: int) -> list[asyncpg.Record]:
    """Stage and uuid of every execution of the pipeline, newest stage and execution first."""
    return await conn.fetch(
        "SELECT e.type, e.uuid FROM executions e"
        " WHERE e.pipeline_id = $1 ORDER BY e.stage_id DESC, e.id DESC",
        pipeline,
    )


# ---- the model card ----------------------------------------------------------------------------


async def artifact(conn: Connection, artifact_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT a.id, a.type, a.uri, a.name, a.create_time_since_epoch,"
        " a.last_update_time_since_epoch, a.properties, a.custom_properties FROM artifacts a"
        " WHERE a.id = $1",
        artifact_id,
    )


async def executions_of_artifact(conn: Connection, artifact_id: int) -> list[asyncpg.Record]:
    """Every execution that used or produced the artifact, by id."""
    return await conn.fetch(
        "SELECT e.id, e.properties, e.custom_properties FROM executions e"
        " WHERE e.id IN (SELECT execution_id FROM events WHERE artifact_id = $1)"
        " ORDER BY e.id",
        artifact_id,
    )


async def artifacts_of_executions(
    conn: Connection, execution_ids: Sequence[int], event_type: int, leave_out: int
) -> list[asyncpg.Record]:
    """The artifacts the executions read (``INPUT``) or wrote (``OUTPUT``), by id."""
    return await conn.fetch(
        "SELECT a.id, a.type, a.uri, a.name, a.create_time_since_epoch,"
        " a.last_update_time_since_epoch, a.properties, a.custom_properties FROM artifacts a"
        " WHERE a.id IN (SELECT artifact_id FROM events"
        "                WHERE execution_id = ANY($1::bigint[]) AND type = $2)"
        "   AND a.id <> $3"
        " ORDER BY a.id",
        list(execution_ids),
        event_type,
        leave_out,
    )
