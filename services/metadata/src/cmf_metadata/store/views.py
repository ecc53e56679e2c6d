"""The SQL of the web UI's views (``/api/native/v1/views/``): pipeline cards newest first, a
stage's property keys, a stage's executions and a pipeline's artifacts as numbered pages sorted by
any column (a property included), the artifact types of a pipeline with their counts.

The pages are numbered (offset and limit) because the UI's tables jump to any row of a
virtualised list; an unfiltered page in id order walks an index and takes its total from the
kept counts, so the first page of a 100,000-execution stage costs a few milliseconds. A filtered
or property-sorted page reads its matches once, counts them and sorts their (id, key) pairs
before it reads the page's rows (as :func:`cmf_metadata.store.paging.counted_page` does).
A pipeline card's counts are kept ones too (execution_stage_counts, pipeline_artifact_counts:
0002_listing_indexes.sql, 0005_pipeline_artifacts.sql), so a card costs the same whatever the
size of its pipeline.

Every value travels as a bind parameter; the only SQL assembled at run time is made of the
constant fragments below, picked by name. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from cmf_common.db import Connection
from cmf_metadata.store import paging

# --- pipelines -----------------------------------------------------------------------------------

_PIPELINE_CARD = (
    "SELECT p.id, p.name, p.create_time_since_epoch, p.last_update_time_since_epoch,"
    "   (SELECT count(*) FROM stages s WHERE s.pipeline_id = p.id) AS stages,"
    "   (SELECT coalesce(sum(c.executions), 0)::bigint FROM execution_stage_counts c"
    "      WHERE c.pipeline_id = p.id) AS executions,"
    "   (SELECT coalesce(sum(a.artifacts), 0)::bigint FROM pipeline_artifact_counts a"
    "      WHERE a.pipeline_id = p.id) AS artifacts"
    " FROM pipelines p"
)


async def pipeline_cards(
    conn: Connection, *, name_like: str | None, offset: int, limit: int, prefix: str | None = None
) -> tuple[int, list[asyncpg.Record]]:
    """Pipelines whose name matches ``name_like`` (an ILIKE pattern; ``None``: all) inside
    ``prefix``, the last pushed first, with their counts; and how many match."""
    where = " WHERE ($1::text IS NULL OR p.name ILIKE $1)"
    inside: tuple[str, ...] = ()
    if prefix is not None:
        where += " AND starts_with(p.name, $2)"
        inside = (prefix,)
    count = f"SELECT count(*) FROM pipelines p{where}"  # noqa: S608 (constant fragments)
    total = await conn.fetchval(count, name_like, *inside)
    n = len(inside)
    rows = await conn.fetch(
        f"{_PIPELINE_CARD}{where}"
        f" ORDER BY p.last_update_time_since_epoch DESC, p.id DESC LIMIT ${2 + n} OFFSET ${3 + n}",
        name_like,
        *inside,
        limit,
        offset,
    )
    return int(total), rows


async def pipeline_card(conn: Connection, pipeline: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_PIPELINE_CARD} WHERE p.id = $1", pipeline)


async def stage_id(conn: Connection, pipeline: int, stage: str) -> int | None:
    value = await conn.fetchval(
        "SELECT id FROM stages WHERE pipeline_id = $1 AND name = $2", pipeline, stage
    )
    return int(value) if value is not None else None


async def pipeline_stages(conn: Connection, pipeline: int) -> list[asyncpg.Record]:
    """The pipeline's stages by name with their counts, read from the kept per-stage counts
    (an artifact has one type, so a stage's artifacts are the sum over its types)."""
    return await conn.fetch(
        "SELECT s.id, s.name, s.create_time_since_epoch,"
        "   coalesce((SELECT c.executions FROM execution_stage_counts c"
        "      WHERE c.pipeline_id = s.pipeline_id AND c.stage = s.name), 0) AS executions,"
        "   coalesce((SELECT sum(a.artifacts) FROM stage_artifact_counts a"
        "      WHERE a.pipeline_id = s.pipeline_id AND a.stage = s.name), 0)::bigint AS artifacts"
        " FROM stages s WHERE s.pipeline_id = $1 ORDER BY s.name, s.id",
        pipeline,
    )


async def pipeline_artifact_types(conn: Connection, pipeline: int) -> list[asyncpg.Record]:
    """Each artifact type linked in the pipeline and how many distinct artifacts it has (the
    kept counts of 0005_pipeline_artifacts.sql)."""
    return await conn.fetch(
        "SELECT artifact_type AS type, artifacts FROM pipeline_artifact_counts"
        " WHERE pipeline_id = $1 ORDER BY 1",
        pipeline,
    )


# --- a stage's property keys ---------------------------------------------------------------------

# A value counts as a number when it is a JSON number or a string that reads as one (CMF sends
# execution custom values other than ints as strings: "0.2").
_NUMERIC = (
    "(jsonb_typeof(kv.value) = 'number' OR (jsonb_typeof(kv.value) = 'string'"
    r" AND kv.value #>> '{}' ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$'))"
)


async def stage_property_keys(
    conn: Connection, stage: int, *, sample: int
) -> tuple[int, list[asyncpg.Record]]:
    """The keys of both property bags among the stage's newest ``sample`` executions: each
    with its bag, how many of them have it, and whether every value is a number."""
    rows = await conn.fetch(
        "WITH recent AS MATERIALIZED (SELECT e.properties, e.custom_properties"  # noqa: S608
        "   FROM executions e WHERE e.stage_id = $1 ORDER BY e.id DESC LIMIT $2)"
        " SELECT (SELECT count(*) FROM recent) AS sampled, k.* FROM ("
        "  SELECT 'custom_properties' AS bag, kv.key, count(*) AS n,"
        f"   bool_and({_NUMERIC}) AS numeric"
        "   FROM recent, jsonb_each(recent.custom_properties) kv GROUP BY kv.key"
        "  UNION ALL"
        "  SELECT 'properties' AS bag, kv.key, count(*) AS n,"
        f"   bool_and({_NUMERIC}) AS numeric"
        "   FROM recent, jsonb_each(recent.properties) kv GROUP BY kv.key"
        " ) AS k ORDER BY k.bag, k.key",
        stage,
        sample,
    )
    sampled = int(rows[0]["sampled"]) if rows else 0
    return sampled, rows


# --- numbered pages sorted by any column ---------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    """A sort: a named column, or a property key (either bag, custom first)."""

    column: str | None  # a key of EXECUTION_COLUMNS / ARTIFACT_COLUMNS
    property: str | None = None
    descending: bool = False


# The sort expressions a page may use, by name, over the table aliased t.
EXECUTION_COLUMNS = {
    "id": "t.id",
    "create_time_since_epoch": "t.create_time_since_epoch",
    "last_update_time_since_epoch": "t.last_update_time_since_epoch",
    "type": "t.type",
}
ARTIFACT_COLUMNS = {
    "id": "t.id",
    "name": "t.name",
    "uri": "t.uri",
    "create_time_since_epoch": "t.create_time_since_epoch",
    "last_update_time_since_epoch": "t.last_update_time_since_epoch",
}
# jsonb orders numbers numerically, strings by collation, and puts each kind together.
_PROPERTY_KEY = "coalesce(t.custom_properties -> {0}, t.properties -> {0})"


def _sort_sql(stmt: paging.Statement, sort: Sort, columns: dict[str, str]) -> str:
    if sort.property is not None:
        return _PROPERTY_KEY.format(stmt.param(sort.property))
    assert sort.column is not None
    return columns[sort.column]


async def _sorted_page(
    conn: Connection,
    stmt: paging.Statement,
    sort: Sort,
    columns: dict[str, str],
    *,
    table: str,
    select: str,
    joins: str,
    offset: int,
    limit: int,
) -> tuple[int, list[asyncpg.Record]]:
    """The count of ``stmt``'s matches in ``table`` (aliased ``t``) and one page of them in
    ``sort`` order, read once."""
    key = _sort_sql(stmt, sort, columns)
    where = stmt.where_sql()
    direction = "DESC" if sort.descending else "ASC"
    order = f"k {direction} NULLS LAST, id {direction}"
    rows = await conn.fetch(
        f"WITH m AS MATERIALIZED (SELECT t.id, {key} AS k FROM {table} t{where}),"  # noqa: S608
        f" page AS MATERIALIZED (SELECT id, k FROM m ORDER BY {order}"
        f"   LIMIT {stmt.param(limit)} OFFSET {stmt.param(offset)})"
        " SELECT c.total, x.* FROM (SELECT count(*) AS total FROM m) AS c"
        f" LEFT JOIN LATERAL (SELECT {select}, page.k AS sort_key"
        f"   FROM page JOIN {table} t ON t.id = page.id{joins}) AS x ON true"
        f" ORDER BY x.sort_key {direction} NULLS LAST, x.id {direction}",
        *stmt.args,
    )
    return int(rows[0]["total"]), [r for r in rows if r["id"] is not None]


_EXECUTION_SELECT = (
    "t.id, t.uuid, t.type, t.name, t.properties, t.custom_properties,"
    " t.create_time_since_epoch, t.last_update_time_since_epoch,"
    " p.name AS pipeline, s.name AS stage"
)
_EXECUTION_JOINS = " JOIN pipelines p ON p.id = t.pipeline_id JOIN stages s ON s.id = t.stage_id"


def _execution_text(stmt: paging.Statement, pipeline: int, stage: str, text: str) -> None:
    """Free text: first the trigram-indexed search text (values JSON-escaped, lower-cased),
    then the values themselves decide (as the ``/executions`` list filters)."""
    stmt.where(
        "t.id IN (SELECT es.execution_id FROM execution_search es WHERE es.pipeline_id = {}"
        " AND es.stage = {} AND es.search_text LIKE lower({}))",
        pipeline,
        stage,
        text,
    )


async def stage_executions(
    conn: Connection,
    *,
    pipeline: int,
    stage: int,
    stage_name: str,
    text: str | None,
    text_in_json: str | None,
    sort: Sort,
    offset: int,
    limit: int,
) -> tuple[int, list[asyncpg.Record]]:
    """One numbered page of the stage's executions and how many match."""
    if text is None and sort.property is None and sort.column == "id":
        direction = "DESC" if sort.descending else "ASC"
        total = await conn.fetchval(
            "SELECT coalesce(sum(executions), 0)::bigint FROM execution_stage_counts"
            " WHERE pipeline_id = $1 AND stage = $2",
            pipeline,
            stage_name,
        )
        rows = await conn.fetch(
            f"SELECT {_EXECUTION_SELECT}, t.id AS sort_key"  # noqa: S608 (constants)
            f" FROM (SELECT id FROM executions WHERE stage_id = $1 ORDER BY id {direction}"
            "   LIMIT $2 OFFSET $3) AS page"
            f" JOIN executions t ON t.id = page.id{_EXECUTION_JOINS}"
            f" ORDER BY t.id {direction}",
            stage,
            limit,
            offset,
        )
        return int(total), rows
    stmt = paging.Statement()
    stmt.where("t.stage_id = {}", stage)
    if text is not None and text_in_json is not None:
        _execution_text(stmt, pipeline, stage_name, text_in_json)
        stmt.where("(" + paging.VALUES_MATCH.format(t="t") + ")", text)
    return await _sorted_page(
        conn,
        stmt,
        sort,
        EXECUTION_COLUMNS,
        table="executions",
        select=_EXECUTION_SELECT,
        joins=_EXECUTION_JOINS,
        offset=offset,
        limit=limit,
    )


async def executions_by_ids(
    conn: Connection, ids: list[int], prefix: str | None = None
) -> list[asyncpg.Record]:
    """The executions among ``ids`` (of pipelines inside ``prefix``)."""
    inside = "" if prefix is None else " AND " + paging.execution_in_prefix("t", "$2")
    return await conn.fetch(
        f"SELECT {_EXECUTION_SELECT} FROM executions t{_EXECUTION_JOINS}"  # noqa: S608
        f" WHERE t.id = ANY($1::bigint[]){inside}",
        ids,
        *((prefix,) if prefix is not None else ()),
    )


_ARTIFACT_SELECT = (
    "t.id, t.uri, t.name, t.type, t.properties, t.custom_properties,"
    " t.create_time_since_epoch, t.last_update_time_since_epoch,"
    " ARRAY(SELECT DISTINCT pp.name FROM attributions at2 JOIN stages s2 ON s2.id = at2.stage_id"
    "   JOIN pipelines pp ON pp.id = s2.pipeline_id WHERE at2.artifact_id = t.id"
    "   ORDER BY pp.name) AS pipelines"
)


async def pipeline_artifacts(
    conn: Connection,
    *,
    pipeline: int,
    type: str | None,
    text: str | None,
    sort: Sort,
    offset: int,
    limit: int,
) -> tuple[int, list[asyncpg.Record]]:
    """One numbered page of the pipeline's artifacts (of ``type``) and how many match."""
    stmt = paging.Statement()
    if type is None:
        stmt.where(
            "t.id IN (SELECT artifact_id FROM pipeline_artifacts WHERE pipeline_id = {})",
            pipeline,
        )
    else:
        stmt.where(
            "t.id IN (SELECT artifact_id FROM pipeline_artifacts WHERE pipeline_id = {}"
            " AND artifact_type = {})",
            pipeline,
            type,
        )
    if text is not None:
        stmt.where(
            "(t.uri ILIKE {0} OR t.name ILIKE {0} OR " + paging.VALUES_MATCH.format(t="t") + ")",
            text,
        )
    return await _sorted_page(
        conn,
        stmt,
        sort,
        ARTIFACT_COLUMNS,
        table="artifacts",
        select=_ARTIFACT_SELECT,
        joins="",
        offset=offset,
        limit=limit,
    )
