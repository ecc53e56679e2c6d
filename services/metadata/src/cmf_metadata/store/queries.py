"""All SQL of the metadata read side: the seed's listings, ``/api/v1/`` and the export.

Every value travels as a bind parameter. The only SQL assembled at run time is made of constant
fragments written here: filter clauses chosen by which filters are set, and sort expressions
looked up by name in :data:`EXECUTION_SORTS` / :data:`ARTIFACT_SORTS` (a caller passes a key of
those tables, never SQL).

Artifacts belong to pipelines and stages through ``attributions`` (one row per artifact and
stage it was linked in), which is both exact and cheap: the Environment artifact that every
execution reads has one attribution per stage, not one event per execution.

Functions take a connection the caller's transaction owns; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from cmf_common.db import Connection

# --- building statements from constant fragments -------------------------------------------------


class _Statement:
    """Collects bind parameters and WHERE clauses; ``{}`` in a fragment takes the next value."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self.clauses: list[str] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, fragment: str, *values: Any) -> None:
        self.clauses.append(fragment.format(*(self.param(v) for v in values)))

    def where_sql(self) -> str:
        """The WHERE clause of the conditions added since the last call."""
        sql = " WHERE " + " AND ".join(self.clauses) if self.clauses else ""
        self.clauses = []
        return sql


@dataclass(frozen=True)
class SortColumn:
    sql: str  # a constant expression over the listed table's alias
    kind: type[int] | type[str]
    indexed: bool = False  # an index (alone and after pipeline_id) yields rows in this order


# The original (client) creation time: a string custom property; a value that is not an integer
# falls back to the server's creation time, so the sort key is never NULL (keyset needs that).
_ORIGINAL_TIME = "original_time_ms({t}.custom_properties, {t}.create_time_since_epoch)"

EXECUTION_SORTS: dict[str, SortColumn] = {
    "id": SortColumn("e.id", int, indexed=True),
    "create_time_since_epoch": SortColumn("e.create_time_since_epoch", int),
    "last_update_time_since_epoch": SortColumn("e.last_update_time_since_epoch", int),
    "original_create_time_since_epoch": SortColumn(_ORIGINAL_TIME.format(t="e"), int, indexed=True),
}
ARTIFACT_SORTS: dict[str, SortColumn] = {
    "id": SortColumn("a.id", int, indexed=True),
    "name": SortColumn("a.name", str),
    "type": SortColumn("a.type", str),
    "create_time_since_epoch": SortColumn("a.create_time_since_epoch", int),
    "last_update_time_since_epoch": SortColumn("a.last_update_time_since_epoch", int),
    "original_create_time_since_epoch": SortColumn(_ORIGINAL_TIME.format(t="a"), int),
}


@dataclass(frozen=True)
class Page:
    """A keyset page: rows after ``after`` (the last row's sort key and id) in the sort order."""

    sort: str
    descending: bool = False
    after: tuple[int | str, int] | None = None
    limit: int = 100


def _keyset(stmt: _Statement, column: SortColumn, id_sql: str, page: Page) -> None:
    """Adds the keyset condition: rows strictly after the page's last row in the sort order."""
    if page.after is None:
        return
    op = "<" if page.descending else ">"
    if column.sql == id_sql:
        stmt.where(f"{id_sql} {op} {{}}", page.after[1])
    else:
        stmt.where(f"({column.sql}, {id_sql}) {op} ({{}}, {{}})", page.after[0], page.after[1])


def _order(stmt: _Statement, key_sql: str, id_sql: str, page: Page) -> str:
    """ORDER BY and LIMIT: one row more than the page, to tell whether another page follows."""
    direction = "DESC" if page.descending else "ASC"
    keys = id_sql if key_sql == id_sql else f"{key_sql} {direction}, {id_sql}"
    return f" ORDER BY {keys} {direction} LIMIT {stmt.param(page.limit + 1)}"


# Free text matches the values of both property bags (not their keys: every execution has a
# `Context_Type`). The pattern arrives LIKE-escaped with backslashes, ILIKE's default escape.
# An execution's uuid and stage are values of its properties.
_VALUES_MATCH = (
    "EXISTS (SELECT 1 FROM jsonb_each_text({t}.properties) kv WHERE kv.value ILIKE {{0}})"
    " OR EXISTS (SELECT 1 FROM jsonb_each_text({t}.custom_properties) kv"
    " WHERE kv.value ILIKE {{0}})"
)
# One property filter: either bag holds the key with one of the candidate values (the string as
# given, and its number when it reads as one). `@>` uses the jsonb_path_ops GIN indexes.
_PROPERTY_MATCH = (
    "({t}.properties @> ANY({{0}}::jsonb[]) OR {t}.custom_properties @> ANY({{0}}::jsonb[]))"
)


# --- pipelines and stages ------------------------------------------------------------------------


async def pipeline_id(conn: Connection, name: str) -> int | None:
    value = await conn.fetchval("SELECT id FROM pipelines WHERE name = $1", name)
    return int(value) if value is not None else None


async def count_pipelines(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM pipelines"))


async def list_pipelines(
    conn: Connection, *, after: tuple[str, int] | None, limit: int
) -> list[asyncpg.Record]:
    """Pipelines by name, with their counts, the last push's time and the outbox sequence."""
    return await conn.fetch(
        "SELECT p.id, p.name, p.properties, p.custom_properties,"
        "   p.create_time_since_epoch, p.last_update_time_since_epoch,"
        "   (SELECT count(*) FROM stages s WHERE s.pipeline_id = p.id) AS stages,"
        "   (SELECT count(*) FROM executions e WHERE e.pipeline_id = p.id) AS executions,"
        "   (SELECT count(DISTINCT at.artifact_id) FROM attributions at"
        "      JOIN stages s ON s.id = at.stage_id WHERE s.pipeline_id = p.id) AS artifacts,"
        "   coalesce((SELECT q.last_seq FROM outbox_sequences q WHERE q.subject = p.name), 0)"
        "     AS seq"
        " FROM pipelines p"
        " WHERE $1::text IS NULL OR (p.name, p.id) > ($1::text, $2::bigint)"
        " ORDER BY p.name, p.id LIMIT $3",
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )


async def stages_of(conn: Connection, pipeline: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT s.id, s.name, s.properties, s.custom_properties,"
        "   s.create_time_since_epoch, s.last_update_time_since_epoch,"
        "   (SELECT count(*) FROM executions e WHERE e.stage_id = s.id) AS executions,"
        "   (SELECT count(*) FROM attributions at WHERE at.stage_id = s.id) AS artifacts"
        " FROM stages s WHERE s.pipeline_id = $1 ORDER BY s.name, s.id",
        pipeline,
    )


# --- executions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionFilters:
    pipeline_id: int | None = None
    stage: str | None = None
    type: str | None = None
    # One entry per property filter: the candidate objects, e.g. [{"seed": "42"}, {"seed": 42}].
    properties: Sequence[Sequence[dict[str, Any]]] = field(default_factory=tuple)
    created_after: int | None = None  # inclusive, epoch ms (server time)
    created_before: int | None = None  # exclusive
    text: str | None = None  # an ILIKE pattern for property values, already escaped
    text_in_json: str | None = None  # the same text JSON-escaped, as a LIKE pattern


def _shared_where(stmt: _Statement, t: str, f: ExecutionFilters | ArtifactFilters) -> None:
    """The filters executions and artifacts share, on the table aliased ``t``."""
    if f.type is not None:
        stmt.where(f"{t}.type = {{}}", f.type)
    for candidates in f.properties:
        stmt.where(_PROPERTY_MATCH.format(t=t), list(candidates))
    if f.created_after is not None:
        stmt.where(f"{t}.create_time_since_epoch >= {{}}", f.created_after)
    if f.created_before is not None:
        stmt.where(f"{t}.create_time_since_epoch < {{}}", f.created_before)


def _execution_where(stmt: _Statement, f: ExecutionFilters) -> None:
    if f.pipeline_id is not None:
        stmt.where("e.pipeline_id = {}", f.pipeline_id)
    if f.stage is not None:
        stmt.where("e.stage_id IN (SELECT st.id FROM stages st WHERE st.name = {})", f.stage)
    _shared_where(stmt, "e", f)
    if f.text is not None:
        # A first cut through the search text the CMF listing keeps per execution (migration
        # 0002: its properties as JSON, lower-cased, under a trigram index), which holds every
        # value JSON-escaped; the values themselves decide. Measured on 100,000 executions: a
        # uuid prefix in 2 ms instead of 2 s.
        stmt.where(
            "e.id IN (SELECT es.execution_id FROM execution_search es"
            " WHERE es.search_text LIKE lower({}))",
            f.text_in_json,
        )
        stmt.where("(" + _VALUES_MATCH.format(t="e") + ")", f.text)


_EXECUTION_COLUMNS = (
    "e.id, e.uuid, e.type, e.name, e.properties, e.custom_properties,"
    " e.create_time_since_epoch, e.last_update_time_since_epoch,"
    " p.name AS pipeline, s.name AS stage"
)
_EXECUTION_JOINS = " JOIN pipelines p ON p.id = e.pipeline_id JOIN stages s ON s.id = e.stage_id"


async def list_executions(
    conn: Connection, filters: ExecutionFilters, page: Page
) -> list[asyncpg.Record]:
    """One page (and one row more, when there is one), each row with its ``sort_key``, read in
    sort order along an index."""
    column = EXECUTION_SORTS[page.sort]
    stmt = _Statement()
    _execution_where(stmt, filters)
    _keyset(stmt, column, "e.id", page)
    where = stmt.where_sql()
    return await conn.fetch(
        f"SELECT {_EXECUTION_COLUMNS}, {column.sql} AS sort_key"  # noqa: S608 (constants)
        f" FROM executions e{_EXECUTION_JOINS}{where}" + _order(stmt, column.sql, "e.id", page),
        *stmt.args,
    )


async def page_executions(
    conn: Connection, filters: ExecutionFilters, page: Page
) -> tuple[int, list[asyncpg.Record]]:
    """The number of matches and one page (and one row more, when there is one).

    Without a property filter, in an order an index yields (id, the original creation time):
    a walk along that index, and a count apart. Otherwise one statement reads the matches
    once (through the GIN indexes for properties), counts them, and sorts the page out of
    their (id, sort key) pairs before it reads the page's rows: cost in proportion to the
    matches, never to the table. The planner cannot estimate jsonb containment, and a
    pipeline's executions sit together in id order, so a walk may read most of the table
    before its first match (measured: 45 ms instead of 5 ms for the first page of 2,500
    matches among 100,000); and sorting pairs beats sorting whole rows (10 ms instead of
    34 ms for a 10,000-execution pipeline by creation time). Both CTEs are fences: without
    the second the planner merge-joins the page with the table in id order, the walk again.
    """
    column = EXECUTION_SORTS[page.sort]
    if not filters.properties and column.indexed:
        return await count_executions(conn, filters), await list_executions(conn, filters, page)
    stmt = _Statement()
    _execution_where(stmt, filters)
    return await _counted_page(
        conn,
        stmt,
        page,
        column,
        table="executions e",
        columns=_EXECUTION_COLUMNS,
        joins=_EXECUTION_JOINS,
    )


async def _counted_page(
    conn: Connection,
    stmt: _Statement,
    page: Page,
    column: SortColumn,
    *,
    table: str,
    columns: str,
    joins: str,
) -> tuple[int, list[asyncpg.Record]]:
    """The count and page of ``stmt``'s matches in ``table`` (aliased ``e`` or ``a``), read
    once: see :func:`page_executions`."""
    alias = table.split()[-1]
    by_id = column.sql == f"{alias}.id"
    where = stmt.where_sql()
    matches = f"SELECT {alias}.id, {column.sql} AS sort_key FROM {table}{where}"  # noqa: S608
    key = "m.id" if by_id else "m.sort_key"
    _keyset(stmt, SortColumn(key, column.kind), "m.id", page)
    in_page = stmt.where_sql() + _order(stmt, key, "m.id", page)
    direction = "DESC" if page.descending else "ASC"
    order = "x.id" if by_id else f"x.sort_key {direction}, x.id"
    rows = await conn.fetch(
        f"WITH m AS MATERIALIZED ({matches}),"  # noqa: S608 (constant fragments)
        f" page AS MATERIALIZED (SELECT m.id, m.sort_key FROM m{in_page})"
        " SELECT t.total, x.* FROM (SELECT count(*) AS total FROM m) AS t"
        f" LEFT JOIN LATERAL (SELECT {columns}, page.sort_key"
        f"   FROM page JOIN {table} ON {alias}.id = page.id{joins}) AS x ON true"
        f" ORDER BY {order} {direction}",
        *stmt.args,
    )
    return int(rows[0]["total"]), [r for r in rows if r["id"] is not None]


async def count_executions(conn: Connection, filters: ExecutionFilters) -> int:
    stmt = _Statement()
    _execution_where(stmt, filters)
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM executions e" + stmt.where_sql(),  # noqa: S608 (constants)
            *stmt.args,
        )
    )


async def execution(conn: Connection, execution_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_EXECUTION_COLUMNS} FROM executions e"  # noqa: S608 (a constant column list)
        " JOIN pipelines p ON p.id = e.pipeline_id JOIN stages s ON s.id = e.stage_id"
        " WHERE e.id = $1",
        execution_id,
    )


async def events_of_execution(conn: Connection, execution_id: int) -> list[asyncpg.Record]:
    """The execution's events in pushed order, each with its artifact."""
    return await conn.fetch(
        "SELECT ev.type AS event_type, ev.position, ev.step_key, ev.milliseconds_since_epoch,"
        "   a.id, a.uri, a.name, a.type"
        " FROM events ev JOIN artifacts a ON a.id = ev.artifact_id"
        " WHERE ev.execution_id = $1 ORDER BY ev.position, ev.type, a.id",
        execution_id,
    )


# --- artifacts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactFilters:
    pipeline_id: int | None = None
    stage: str | None = None
    type: str | None = None
    uri: str | None = None
    name: str | None = None
    properties: Sequence[Sequence[dict[str, Any]]] = field(default_factory=tuple)
    created_after: int | None = None
    created_before: int | None = None
    text: str | None = None


def _artifact_where(stmt: _Statement, f: ArtifactFilters) -> None:
    # Membership as an id array read from (stage_id, artifact_id) alone: the planner then
    # looks the page up by primary key instead of merging the whole artifacts table (measured:
    # 11 ms instead of 84 ms for a page of a 20,000-artifact pipeline among 200,000).
    if f.pipeline_id is not None:
        stmt.where(
            "a.id = ANY(ARRAY(SELECT at.artifact_id FROM attributions at"
            " WHERE at.stage_id IN (SELECT st.id FROM stages st WHERE st.pipeline_id = {})))",
            f.pipeline_id,
        )
    if f.stage is not None:
        stmt.where(
            "a.id = ANY(ARRAY(SELECT at.artifact_id FROM attributions at"
            " WHERE at.stage_id IN (SELECT st.id FROM stages st WHERE st.name = {})))",
            f.stage,
        )
    if f.uri is not None:
        stmt.where("a.uri = {}", f.uri)
    if f.name is not None:
        stmt.where("a.name = {}", f.name)
    _shared_where(stmt, "a", f)
    if f.text is not None:
        stmt.where(
            "(a.uri ILIKE {0} OR a.name ILIKE {0} OR a.type ILIKE {0} OR "
            + _VALUES_MATCH.format(t="a")
            + ")",
            f.text,
        )


_ARTIFACT_COLUMNS = (
    "a.id, a.uri, a.name, a.type, a.properties, a.custom_properties,"
    " a.create_time_since_epoch, a.last_update_time_since_epoch,"
    " ARRAY(SELECT DISTINCT pp.name FROM attributions pa"
    "   JOIN stages ps ON ps.id = pa.stage_id JOIN pipelines pp ON pp.id = ps.pipeline_id"
    "   WHERE pa.artifact_id = a.id ORDER BY pp.name) AS pipelines"
)


async def list_artifacts(
    conn: Connection, filters: ArtifactFilters, page: Page
) -> list[asyncpg.Record]:
    column = ARTIFACT_SORTS[page.sort]
    stmt = _Statement()
    _artifact_where(stmt, filters)
    _keyset(stmt, column, "a.id", page)
    return await conn.fetch(
        f"SELECT {_ARTIFACT_COLUMNS}, {column.sql} AS sort_key"  # noqa: S608 (constant fragments)
        " FROM artifacts a" + stmt.where_sql() + _order(stmt, column.sql, "a.id", page),
        *stmt.args,
    )


async def page_artifacts(
    conn: Connection, filters: ArtifactFilters, page: Page
) -> tuple[int, list[asyncpg.Record]]:
    """The number of matches and one page, as :func:`page_executions` reads them."""
    column = ARTIFACT_SORTS[page.sort]
    if not filters.properties and column.indexed:
        return await count_artifacts(conn, filters), await list_artifacts(conn, filters, page)
    stmt = _Statement()
    _artifact_where(stmt, filters)
    return await _counted_page(
        conn, stmt, page, column, table="artifacts a", columns=_ARTIFACT_COLUMNS, joins=""
    )


async def count_artifacts(conn: Connection, filters: ArtifactFilters) -> int:
    stmt = _Statement()
    _artifact_where(stmt, filters)
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM artifacts a" + stmt.where_sql(),  # noqa: S608 (constants)
            *stmt.args,
        )
    )


async def artifact(conn: Connection, artifact_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts a WHERE a.id = $1",  # noqa: S608 (constants)
        artifact_id,
    )


async def events_of_artifact(
    conn: Connection, artifact_id: int, *, limit: int
) -> list[asyncpg.Record]:
    """The artifact's events by execution id, each with its execution, at most ``limit``."""
    return await conn.fetch(
        "SELECT ev.type AS event_type, ev.position, ev.step_key, ev.milliseconds_since_epoch,"
        "   e.id, e.uuid, e.type, e.name, p.name AS pipeline, s.name AS stage"
        " FROM events ev JOIN executions e ON e.id = ev.execution_id"
        " JOIN pipelines p ON p.id = e.pipeline_id JOIN stages s ON s.id = e.stage_id"
        " WHERE ev.artifact_id = $1 ORDER BY ev.execution_id, ev.type LIMIT $2",
        artifact_id,
        limit,
    )


async def count_events_of_artifact(conn: Connection, artifact_id: int) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM events WHERE artifact_id = $1", artifact_id)
    )
