"""What the SQL of the entity lists shares: statements built from constant fragments, keyset
pages (the seed's lists and ``/api/native/v1``), numbered pages (the reference's listings), and the
filters executions and artifacts have in common.

Every value travels as a bind parameter. The only SQL assembled at run time is made of constant
fragments written in ``store/``: filter clauses chosen by which filters are set, and sort
expressions looked up by name in a table of :class:`SortColumn` (a caller passes a key of that
table, never SQL).

Functions take a connection the caller's transaction owns; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from cmf_common.db import Connection

# --- building statements from constant fragments -------------------------------------------------


class Statement:
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
ORIGINAL_TIME = "original_time_ms({t}.custom_properties, {t}.create_time_since_epoch)"


# --- keyset pages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeysetPage:
    """A keyset page: rows after ``after`` (the last row's sort key and id) in the sort order."""

    sort: str
    descending: bool = False
    after: tuple[int | str, int] | None = None
    limit: int = 100


def keyset_where(stmt: Statement, column: SortColumn, id_sql: str, page: KeysetPage) -> None:
    """Adds the keyset condition: rows strictly after the page's last row in the sort order."""
    if page.after is None:
        return
    op = "<" if page.descending else ">"
    if column.sql == id_sql:
        stmt.where(f"{id_sql} {op} {{}}", page.after[1])
    else:
        stmt.where(f"({column.sql}, {id_sql}) {op} ({{}}, {{}})", page.after[0], page.after[1])


def order_limit(stmt: Statement, key_sql: str, id_sql: str, page: KeysetPage) -> str:
    """ORDER BY and LIMIT: one row more than the page, to tell whether another page follows."""
    direction = "DESC" if page.descending else "ASC"
    keys = id_sql if key_sql == id_sql else f"{key_sql} {direction}, {id_sql}"
    return f" ORDER BY {keys} {direction} LIMIT {stmt.param(page.limit + 1)}"


async def count_matches(conn: Connection, stmt: Statement, table: str) -> int:
    """How many rows of ``table`` (with its alias) ``stmt``'s conditions match."""
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {table}" + stmt.where_sql(),  # noqa: S608 (constants)
            *stmt.args,
        )
    )


async def counted_page(
    conn: Connection,
    stmt: Statement,
    page: KeysetPage,
    column: SortColumn,
    *,
    table: str,
    columns: str,
    joins: str,
) -> tuple[int, list[asyncpg.Record]]:
    """The count and page of ``stmt``'s matches in ``table`` (aliased ``e`` or ``a``), read
    once: see :func:`cmf_metadata.store.executions.page_executions`."""
    alias = table.split()[-1]
    by_id = column.sql == f"{alias}.id"
    where = stmt.where_sql()
    matches = f"SELECT {alias}.id, {column.sql} AS sort_key FROM {table}{where}"  # noqa: S608
    key = "m.id" if by_id else "m.sort_key"
    keyset_where(stmt, SortColumn(key, column.kind), "m.id", page)
    in_page = stmt.where_sql() + order_limit(stmt, key, "m.id", page)
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


# --- the filters executions and artifacts share --------------------------------------------------


# Free text matches the values of both property bags (not their keys: every execution has a
# `Context_Type`). The pattern arrives LIKE-escaped with backslashes, ILIKE's default escape.
# An execution's uuid and stage are values of its properties.
VALUES_MATCH = (
    "EXISTS (SELECT 1 FROM jsonb_each_text({t}.properties) kv WHERE kv.value ILIKE {{0}})"
    " OR EXISTS (SELECT 1 FROM jsonb_each_text({t}.custom_properties) kv"
    " WHERE kv.value ILIKE {{0}})"
)

# One property filter: either bag holds the key with one of the candidate values (the string as
# given, and its number when it reads as one). `@>` uses the jsonb_path_ops GIN indexes.
PROPERTY_MATCH = (
    "({t}.properties @> ANY({{0}}::jsonb[]) OR {t}.custom_properties @> ANY({{0}}::jsonb[]))"
)


class SharedFilters(Protocol):
    """The filters of executions and artifacts alike."""

    @property
    def type(self) -> str | None: ...
    @property
    def properties(self) -> Sequence[Sequence[dict[str, Any]]]: ...
    @property
    def created_after(self) -> int | None: ...
    @property
    def created_before(self) -> int | None: ...


# --- the pipeline prefix (cmf_common.access): only what pipelines inside it hold ------------------

# An execution belongs to one pipeline; an artifact to every pipeline a stage it is attributed to
# belongs to. ``{t}`` is the table's alias, ``{p}`` the prefix's placeholder.
EXECUTION_IN_PREFIX = (
    "{t}.pipeline_id IN (SELECT vp.id FROM pipelines vp WHERE starts_with(vp.name, {p}))"
)
ARTIFACT_IN_PREFIX = (
    "EXISTS (SELECT 1 FROM attributions va JOIN stages vs ON vs.id = va.stage_id"
    " JOIN pipelines vp ON vp.id = vs.pipeline_id"
    " WHERE va.artifact_id = {t}.id AND starts_with(vp.name, {p}))"
)


def execution_in_prefix(t: str, p: str) -> str:
    return EXECUTION_IN_PREFIX.format(t=t, p=p)


def artifact_in_prefix(t: str, p: str) -> str:
    return ARTIFACT_IN_PREFIX.format(t=t, p=p)


def shared_where(stmt: Statement, t: str, f: SharedFilters) -> None:
    """The filters executions and artifacts share, on the table aliased ``t``."""
    if f.type is not None:
        stmt.where(f"{t}.type = {{}}", f.type)
    for candidates in f.properties:
        stmt.where(PROPERTY_MATCH.format(t=t), list(candidates))
    if f.created_after is not None:
        stmt.where(f"{t}.create_time_since_epoch >= {{}}", f.created_after)
    if f.created_before is not None:
        stmt.where(f"{t}.create_time_since_epoch < {{}}", f.created_before)


# --- numbered pages (the reference's listings) ---------------------------------------------------


# The reference's listings page by number (offset and count) in one or two constant statements:
# the matching rows are collected once, counted, and only the page's rows are joined to their
# properties.


@dataclass(frozen=True)
class NumberedPage:
    """A page of a reference listing and the total of its matches."""

    total: int
    rows: list[asyncpg.Record]


def numbered_page(rows: list[asyncpg.Record]) -> NumberedPage:
    """``total`` rides on every row; a page past the end has no row and so a total of 0, as
    the reference's ``count(*) over ()`` gives."""
    return NumberedPage(rows[0]["total"] if rows else 0, rows)


async def custom_plans(conn: Connection) -> None:
    """Plan each filtered statement for its own pattern: a selective one uses the trigram index,
    a broad one scans the stage (a generic plan would pick one for both)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


# A numbered page's ORDER BY direction, by ``descending``: the statements are written once for each.
DIRECTIONS = {False: "ASC", True: "DESC"}
