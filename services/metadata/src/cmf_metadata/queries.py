"""The metadata service's read side: the seed's listings and ``/api/v1/``.

Listings page by keyset: a page ends with an opaque cursor that holds the last row's sort key and
id, so a page costs the same at any depth and rows pushed meanwhile never shift it. A cursor is
bound to the query it came from (the route, the filters and the sort, hashed into it) and carries
a checksum; anything else (garbled, truncated, edited, or from another query) is a 422. Cursors
are not signed: forging one only moves the start of a page of a query the caller may run anyway,
and every field is re-validated (types, ranges) before it reaches SQL as a bind parameter.

No FastAPI here: errors are :class:`~cmf_common.errors.Invalid` and
:class:`~cmf_common.errors.NotFound`; the HTTP boundary renders them as problem+json.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import orjson

from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import Invalid, NotFound
from cmf_common.paging import decode_cursor, encode_cursor, query_scope
from cmf_common.tracing import span
from cmf_metadata.merge import ORIGINAL_CREATE_TIME
from cmf_metadata.store import queries as store

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_PROPERTY_FILTERS = 20
MAX_EVENTS = 10_000
DEFAULT_EVENTS = 1000

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


# --- parsing query parameters --------------------------------------------------------------------


def check_text(name: str, value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database."""
    if value is not None and "\x00" in value:
        raise Invalid(f"{name} must not contain NUL characters", code="invalid_parameter")
    return value


_INTEGER = re.compile(r"[-+]?[0-9]+")
_DECIMAL = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def property_candidates(raw: str) -> list[dict[str, Any]]:
    """``key:value`` → the objects one of which either property bag must contain.

    The key ends at the first colon; the value is the rest, matched as given and, when it reads
    as a number, as that number too (CMF stores ``seed: 42`` but ``split: "0.2"``).
    """
    check_text("property", raw)
    key, colon, value = raw.partition(":")
    if not colon or not key:
        raise Invalid(
            f"property filter {raw!r} must be key:value (the key ends at the first colon)",
            code="invalid_property",
        )
    candidates: list[dict[str, Any]] = [{key: value}]
    if _INTEGER.fullmatch(value) and len(value) <= 40:
        candidates.append({key: int(value)})
    elif _DECIMAL.fullmatch(value) and len(value) <= 40:
        number = float(value)
        if math.isfinite(number):
            candidates.append({key: number})
    return candidates


def like_pattern(text: str) -> str:
    """``text`` as a substring ILIKE pattern, its ``%``, ``_`` and ``\\`` matched literally."""
    check_text("q", text)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def json_like_pattern(text: str) -> str:
    """``like_pattern`` of ``text`` as it appears inside a JSON string (``\\`` and ``"``
    escaped), to find it in properties rendered as JSON text."""
    return like_pattern(orjson.dumps(text).decode()[1:-1])


def parse_sort(sort: str, allowed: Sequence[str]) -> tuple[str, bool]:
    """``field`` or ``-field`` (descending), the field one of ``allowed``."""
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    if name not in allowed:
        raise Invalid(
            f"cannot sort by {sort!r}; sort by one of {', '.join(allowed)}"
            " (a leading '-' sorts descending)",
            code="invalid_sort",
        )
    return name, descending


def _check_range(after: int | None, before: int | None) -> None:
    if after is not None and before is not None and after >= before:
        raise Invalid("created_after must be less than created_before", code="invalid_parameter")


# --- shapes on the wire --------------------------------------------------------------------------


def original_time(custom: dict[str, Any]) -> int | None:
    """The client's creation time, which the merge keeps as a string custom property."""
    value = custom.get(ORIGINAL_CREATE_TIME)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _execution_item(row: asyncpg.Record) -> dict[str, Any]:
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


def _artifact_item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "uri": row["uri"],
        "name": row["name"],
        "type": row["type"],
        "pipelines": list(row["pipelines"]),
        "properties": row["properties"],
        "custom_properties": row["custom_properties"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "original_create_time_since_epoch": original_time(row["custom_properties"]),
    }


# --- shared plumbing -----------------------------------------------------------------------------


async def _pipeline(conn: Connection, name: str | None) -> int | None:
    if name is None:
        return None
    found = await store.pipeline_id(conn, name)
    if found is None:
        raise NotFound(f"pipeline {name!r} not found", code="pipeline_not_found")
    return found


def _page(sort: str, descending: bool, limit: int, after: list[Any] | None) -> store.Page:
    return store.Page(
        sort=sort,
        descending=descending,
        after=(after[0], after[1]) if after is not None else None,
        limit=limit,
    )


def _next_cursor(
    rows: list[asyncpg.Record], limit: int, scope: str
) -> tuple[list[asyncpg.Record], str | None]:
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(scope, [last["sort_key"], last["id"]])


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_parameter")


# --- the seed's routes ---------------------------------------------------------------------------


async def seed_executions(
    pool: asyncpg.Pool, *, pipeline_name: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """``GET /executions``: executions in id order, ``{"items", "next_cursor"}``."""
    check_text("pipeline_name", pipeline_name)
    _check_limit(limit)
    scope = query_scope("seed.executions", pipeline=pipeline_name)
    after = decode_cursor(cursor, scope, (int, int)) if cursor is not None else None
    async with read_snapshot(pool) as conn:
        filters = store.ExecutionFilters(pipeline_id=await _pipeline(conn, pipeline_name))
        rows = await store.list_executions(conn, filters, _page("id", False, limit, after))
    rows, next_cursor = _next_cursor(rows, limit, scope)
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


async def seed_artifacts(
    pool: asyncpg.Pool,
    *,
    pipeline_name: str | None,
    type_name: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """``GET /artifacts``: artifacts in id order, ``{"items", "next_cursor"}``.

    ``stored`` is always false for now: the artifact service, which will hold the bytes and
    know which artifacts it has, comes in a later issue.
    """
    check_text("pipeline_name", pipeline_name)
    check_text("type", type_name)
    _check_limit(limit)
    scope = query_scope("seed.artifacts", pipeline=pipeline_name, type=type_name)
    after = decode_cursor(cursor, scope, (int, int)) if cursor is not None else None
    async with read_snapshot(pool) as conn:
        filters = store.ArtifactFilters(
            pipeline_id=await _pipeline(conn, pipeline_name), type=type_name
        )
        rows = await store.list_artifacts(conn, filters, _page("id", False, limit, after))
    rows, next_cursor = _next_cursor(rows, limit, scope)
    return {
        "items": [
            {
                "id": r["id"],
                "uri": r["uri"],
                "name": r["name"],
                "type": r["type"],
                "properties": r["properties"],
                "custom_properties": r["custom_properties"],
                "create_time_since_epoch": r["create_time_since_epoch"],
                "stored": False,
            }
            for r in rows
        ],
        "next_cursor": next_cursor,
    }


# --- /api/v1/ ------------------------------------------------------------------------------------


async def list_pipelines(
    pool: asyncpg.Pool, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> dict[str, Any]:
    """Pipelines by name, each with its counts, its last push's time and outbox sequence."""
    _check_limit(limit)
    scope = query_scope("v1.pipelines")
    after = decode_cursor(cursor, scope, (str, int)) if cursor is not None else None
    async with read_snapshot(pool) as conn:
        total = await store.count_pipelines(conn)
        rows = await store.list_pipelines(
            conn, after=(after[0], after[1]) if after else None, limit=limit
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(scope, [rows[-1]["name"], rows[-1]["id"]])
    return {
        "items": [
            {
                "id": r["id"],
                "name": r["name"],
                "properties": r["properties"],
                "custom_properties": r["custom_properties"],
                "create_time_since_epoch": r["create_time_since_epoch"],
                "last_update_time_since_epoch": r["last_update_time_since_epoch"],
                # Every push that changes a pipeline stamps it, so its update time is the last
                # push's; `seq` is the pipeline's outbox sequence (the consistency token's).
                "last_push_time_since_epoch": r["last_update_time_since_epoch"],
                "seq": r["seq"],
                "stage_count": r["stages"],
                "execution_count": r["executions"],
                "artifact_count": r["artifacts"],
            }
            for r in rows
        ],
        "total": total,
        "next_cursor": next_cursor,
    }


async def pipeline_stages(pool: asyncpg.Pool, pipeline_name: str) -> dict[str, Any]:
    check_text("pipeline", pipeline_name)
    async with read_snapshot(pool) as conn:
        pipeline = await _pipeline(conn, pipeline_name)
        assert pipeline is not None
        rows = await store.stages_of(conn, pipeline)
    return {
        "pipeline": pipeline_name,
        "items": [
            {
                "id": r["id"],
                "name": r["name"],
                "properties": r["properties"],
                "custom_properties": r["custom_properties"],
                "create_time_since_epoch": r["create_time_since_epoch"],
                "last_update_time_since_epoch": r["last_update_time_since_epoch"],
                "execution_count": r["executions"],
                "artifact_count": r["artifacts"],
            }
            for r in rows
        ],
    }


@dataclass(frozen=True)
class ListQuery:
    """The filters, sort and page of an ``/api/v1`` list; executions take exactly these."""

    pipeline: str | None = None
    stage: str | None = None
    type: str | None = None
    properties: tuple[str, ...] = ()
    created_after: int | None = None
    created_before: int | None = None
    q: str | None = None
    sort: str = "id"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True)
class ArtifactQuery(ListQuery):
    """Artifacts take the same, and the artifact service's exact lookups."""

    uri: str | None = None
    name: str | None = None


def _properties(raw: Sequence[str]) -> list[list[dict[str, Any]]]:
    if len(raw) > MAX_PROPERTY_FILTERS:
        raise Invalid(f"at most {MAX_PROPERTY_FILTERS} property filters", code="invalid_parameter")
    return [property_candidates(p) for p in raw]


def _scope_of(route: str, query: ListQuery) -> str:
    fields = asdict(query)
    del fields["limit"], fields["cursor"]  # a page size may change between pages
    return query_scope(route, **fields)


@dataclass(frozen=True)
class _Listing:
    """A validated ``/api/v1`` list request: what both entity listings share."""

    page: store.Page
    properties: list[list[dict[str, Any]]]
    text: str | None
    scope: str


def _listing(
    route: str,
    query: ListQuery,
    sorts: Mapping[str, store.SortColumn],
    text_fields: tuple[str, ...],
) -> _Listing:
    for name in text_fields:
        check_text(name, getattr(query, name))
    _check_limit(query.limit)
    _check_range(query.created_after, query.created_before)
    sort, descending = parse_sort(query.sort, list(sorts))
    scope = _scope_of(route, query)
    after = (
        None
        if query.cursor is None
        else decode_cursor(query.cursor, scope, (sorts[sort].kind, int))
    )
    return _Listing(
        page=_page(sort, descending, query.limit, after),
        properties=_properties(query.properties),
        text=like_pattern(query.q) if query.q else None,
        scope=scope,
    )


def _listed(
    total: int,
    rows: list[asyncpg.Record],
    listing: _Listing,
    item: Callable[[asyncpg.Record], dict[str, Any]],
) -> dict[str, Any]:
    rows, next_cursor = _next_cursor(rows, listing.page.limit, listing.scope)
    return {"items": [item(r) for r in rows], "total": total, "next_cursor": next_cursor}


async def list_executions(pool: asyncpg.Pool, query: ListQuery) -> dict[str, Any]:
    """Executions matching every filter, one keyset page, with the total count of matches."""
    listing = _listing("v1.executions", query, store.EXECUTION_SORTS, ("pipeline", "stage", "type"))
    with span("metadata.query.executions"):
        async with read_snapshot(pool) as conn:
            filters = store.ExecutionFilters(
                pipeline_id=await _pipeline(conn, query.pipeline),
                stage=query.stage,
                type=query.type,
                properties=listing.properties,
                created_after=query.created_after,
                created_before=query.created_before,
                text=listing.text,
                text_in_json=json_like_pattern(query.q) if query.q else None,
            )
            total, rows = await store.page_executions(conn, filters, listing.page)
    return _listed(total, rows, listing, _execution_item)


async def list_artifacts(pool: asyncpg.Pool, query: ArtifactQuery) -> dict[str, Any]:
    """Artifacts matching every filter, one keyset page, with the total count of matches.

    ``uri`` and ``pipeline`` + ``name`` are the artifact service's exact lookups.
    """
    listing = _listing(
        "v1.artifacts", query, store.ARTIFACT_SORTS, ("pipeline", "stage", "type", "uri", "name")
    )
    with span("metadata.query.artifacts"):
        async with read_snapshot(pool) as conn:
            filters = store.ArtifactFilters(
                pipeline_id=await _pipeline(conn, query.pipeline),
                stage=query.stage,
                type=query.type,
                uri=query.uri,
                name=query.name,
                properties=listing.properties,
                created_after=query.created_after,
                created_before=query.created_before,
                text=listing.text,
            )
            total, rows = await store.page_artifacts(conn, filters, listing.page)
    return _listed(total, rows, listing, _artifact_item)


def _event(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "type": row["event_type"],
        "kind": EVENT_KINDS.get(row["event_type"], "UNKNOWN"),
        "position": row["position"],
        "step_key": row["step_key"],
        "milliseconds_since_epoch": row["milliseconds_since_epoch"],
    }


async def get_execution(pool: asyncpg.Pool, execution_id: int) -> dict[str, Any]:
    """One execution with its events, each naming the artifact on the other side."""
    async with read_snapshot(pool) as conn:
        row = await store.execution(conn, execution_id)
        if row is None:
            raise NotFound(f"execution {execution_id} not found", code="execution_not_found")
        events = await store.events_of_execution(conn, execution_id)
    return {
        **_execution_item(row),
        "events": [
            {
                **_event(e),
                "artifact": {"id": e["id"], "uri": e["uri"], "name": e["name"], "type": e["type"]},
            }
            for e in events
        ],
    }


async def get_artifact(
    pool: asyncpg.Pool, artifact_id: int, *, event_limit: int = DEFAULT_EVENTS
) -> dict[str, Any]:
    """One artifact with its events (the first ``event_limit`` by execution id), each naming
    the execution on the other side, and ``events_total``: the shared Environment artifact
    has an event for every execution."""
    if not 0 <= event_limit <= MAX_EVENTS:
        raise Invalid(f"events must be between 0 and {MAX_EVENTS}", code="invalid_parameter")
    async with read_snapshot(pool) as conn:
        row = await store.artifact(conn, artifact_id)
        if row is None:
            raise NotFound(f"artifact {artifact_id} not found", code="artifact_not_found")
        events = await store.events_of_artifact(conn, artifact_id, limit=event_limit)
        total = await store.count_events_of_artifact(conn, artifact_id)
    return {
        **_artifact_item(row),
        "events": [
            {
                **_event(e),
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
