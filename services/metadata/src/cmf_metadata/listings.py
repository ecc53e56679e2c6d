"""The CMF listing routes and the model card (docs/wire-contract.md §1.4, §1.9), in the
reference's shapes.

The reference builds these from MLMD's property tables and pandas; here one or two set-based
reads per request (``store.listings``) and pure functions that shape the rows the way the
reference's JSON comes out: properties and custom properties merged into ``[{name, value}]``
with every value a string, and the model card's ``DataFrame.to_json(orient="records")`` rows.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import asyncpg

from cmf_common.db import Connection, json_dumps
from cmf_common.errors import NotFound
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_common.tracing import span
from cmf_metadata.match_counts import MatchCounts
from cmf_metadata.store import listings as store

CUSTOM_PREFIX = "custom_properties_"
MODEL = "Model"
DROPPED_EXECUTION_COLUMNS = ("Git_Start_Commit", "Git_End_Commit")
FLOAT_DECIMALS = 10  # pandas to_json's double_precision


class Row(Protocol):
    """A stored row: an asyncpg record, or a dict in tests."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True)
class PageQuery:
    """The reference's paging, sorting and free-text filter (docs/wire-contract.md §1.7),
    already validated."""

    active_page: int = 1
    record_per_page: int = 5
    sort_order: str = "asc"
    filter_value: str = ""

    @property
    def limit(self) -> int:
        return self.record_per_page

    @property
    def offset(self) -> int:
        return (self.active_page - 1) * self.record_per_page

    @property
    def descending(self) -> bool:
        return self.sort_order.lower() == "desc"

    @property
    def pattern(self) -> str | None:
        return like_pattern(self.filter_value)


# ---- pure shaping ------------------------------------------------------------------------------


def like_pattern(value: str) -> str | None:
    """``%value%`` for LIKE with ``%``, ``_`` and ``\\`` taken as text; ``None`` for no filter.

    The store lower-cases both sides, so the match is the reference's ILIKE.
    """
    if value == "":
        return None
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def pg_float_text(value: float) -> str:
    """A double as PostgreSQL prints it (``float8out``): the shortest exact digits, exponent
    form below 1e-4 and from 1e15 up, no trailing ``.0``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    exponent += len("".join(map(str, digit_tuple))) - len(digits)
    point = len(digits) + exponent  # digits before the decimal point
    lead = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 15:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        power = point - 1
        return f"{lead}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    if point <= 0:
        return f"{lead}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{lead}{digits}{'0' * (point - len(digits))}"
    return f"{lead}{digits[:point]}.{digits[point:]}"


def property_text(value: Any) -> str | None:
    """A property value as the reference's SQL renders it: ``coalesce`` of its typed columns,
    cast to text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return pg_float_text(value)
    return json_dumps(value)  # a struct


def merged_properties(
    properties: Mapping[str, Any], custom: Mapping[str, Any]
) -> list[dict[str, str | None]]:
    """Properties, then custom properties, as one ``[{name, value}]`` list of strings."""
    return [
        {"name": name, "value": property_text(value)}
        for source in (properties, custom)
        for name, value in source.items()
    ]


def execution_item(row: Row) -> dict[str, Any]:
    return {
        "execution_id": row["id"],
        "execution_properties": merged_properties(row["properties"], row["custom_properties"]),
    }


def artifact_item(row: Row) -> dict[str, Any]:
    return {
        "artifact_id": row["id"],
        "name": row["name"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "artifact_properties": merged_properties(row["properties"], row["custom_properties"]),
    }


def legacy_artifact_item(row: Row) -> dict[str, Any]:
    return {
        "artifact_id": row["id"],
        "name": row["name"],
        "execution": row["execution"],
        "uri": row["uri"],
        "create_time_since_epoch": row["created"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "artifact_properties": merged_properties(row["properties"], row["custom_properties"]),
    }


def execution_list_name(stage: str, uuid: str) -> str:
    """``<stage after the pipeline>_<first 4 characters of the uuid>``, the lineage dropdown's
    key (``Train_72d0``)."""
    short_stage = stage.split("/", 1)[1] if "/" in stage else stage
    return f"{short_stage}_{uuid.split('-')[0][:4]}"


# The model card: cmflib's CmfQuery flattens each MLMD node into a one-row DataFrame (properties
# as they are, custom properties prefixed), pandas concatenates them (columns sorted, missing
# cells NaN, integer columns with a gap turned to floats) and to_json writes the records.


def _mlmd_value(value: Any) -> Any:
    """What CmfQuery reads back from an MLMD value: a string, an int, else a double."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return value
    return json_dumps(value)  # a struct, kept readable


def _copy(
    target: dict[str, Any], source: Mapping[str, Any], prefix: str = "", resolve: bool = False
) -> None:
    for name, value in source.items():
        key = prefix + name
        if resolve and key in target:
            base, index = key, 0
            while key in target:
                index += 1
                key = f"{base}_{index}"
        target[key] = _mlmd_value(value)


def model_artifact_row(row: Row) -> dict[str, Any]:
    flat: dict[str, Any] = {
        "id": row["id"],
        "type": row["type"],
        "uri": row["uri"],
        "name": row["name"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
    }
    _copy(flat, row["properties"])
    _copy(flat, row["custom_properties"], CUSTOM_PREFIX, resolve=True)
    return flat


def model_execution_row(row: Row) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _copy(flat, row["properties"])
    _copy(flat, row["custom_properties"], CUSTOM_PREFIX, resolve=True)
    for column in DROPPED_EXECUTION_COLUMNS:
        flat.pop(column, None)
    return flat


_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _round(value: float) -> float | None:
    return round(value, FLOAT_DECIMALS) if math.isfinite(value) else None


def frame_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]] | str:
    """``pd.concat`` of one-row frames, then ``to_json(orient="records")``; ``""`` when empty."""
    rows = list(rows)
    if not rows:
        return ""
    columns = sorted({name for row in rows for name in row})
    records: list[dict[str, Any]] = [{} for _ in rows]
    for column in columns:
        cells = [row.get(column, _MISSING) for row in rows]
        present = [c for c in cells if c is not _MISSING and c is not None]
        numeric = bool(present) and all(_is_number(c) for c in present)
        whole = numeric and len(present) == len(cells) and all(isinstance(c, int) for c in present)
        for record, cell in zip(records, cells, strict=True):
            if cell is _MISSING or cell is None:
                record[column] = None
            elif numeric and not whole:
                record[column] = _round(float(cell))
            elif isinstance(cell, float):
                record[column] = _round(cell)
            else:
                record[column] = cell
    return records


# ---- the routes' domain ------------------------------------------------------------------------


@asynccontextmanager
async def reading(pool: asyncpg.Pool, name: str, **attributes: Any) -> AsyncIterator[Connection]:
    """A connection in a read-only, repeatable-read transaction, inside a span."""
    with span(name, **attributes):
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn


async def pipelines(pool: asyncpg.Pool) -> list[str]:
    async with reading(pool, "metadata.pipelines") as conn:
        return await store.pipeline_names(conn)


async def artifact_types(pool: asyncpg.Pool) -> list[str]:
    async with reading(pool, "metadata.artifact_types") as conn:
        return await store.artifact_type_names(conn)


async def pipeline_stages(pool: asyncpg.Pool, pipeline_name: str) -> dict[str, Any]:
    async with reading(pool, "metadata.pipeline_stages", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        stages = [] if pipeline is None else await store.stage_names(conn, pipeline)
    return {"stages": stages, "total_stages": len(stages)}


async def artifact_types_by_stage(pool: asyncpg.Pool, pipeline_name: str, stage: str) -> list[str]:
    async with reading(pool, "metadata.artifact_types_by_stage", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        if pipeline is None:
            return []
        return await store.artifact_types_in_stage(conn, pipeline, stage)


def _listing(page: store.Page | None, item: Any) -> dict[str, Any]:
    if page is None:
        return {"total_items": 0, "items": []}
    return {"total_items": page.total, "items": [item(r) for r in page.rows]}


async def executions_by_stage(
    pool: asyncpg.Pool,
    counts: MatchCounts,
    pipeline_name: str,
    stage: str,
    query: PageQuery,
) -> dict[str, Any]:
    """A filtered page's total comes from ``counts`` when this version of the pipeline was
    counted with this filter before (paging through a broad filter counts it once)."""
    async with reading(pool, "metadata.executions_by_stage", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        page = None
        if pipeline is not None:
            await store.custom_plans(conn)
            key = None
            if query.pattern is not None:
                version = await store.pipeline_version(conn, pipeline_name)
                key = ("executions-by-stage", pipeline, version, stage, query.pattern)
            page = await store.executions_page(
                conn,
                pipeline=pipeline,
                stage=stage,
                pattern=query.pattern,
                descending=query.descending,
                limit=query.limit,
                offset=query.offset,
                known_total=counts.get(key) if key is not None else None,
            )
            if key is not None and page.rows:
                counts.put(key, page.total)
    return _listing(page, execution_item)


async def artifacts_by_stage(
    pool: asyncpg.Pool,
    pipeline_name: str,
    stage: str,
    artifact_type: str,
    sort_field: str,
    query: PageQuery,
) -> dict[str, Any]:
    """Sorted by ``lower(name)`` when ``sort_field`` is ``name``, else by creation time."""
    async with reading(pool, "metadata.artifacts_by_stage", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        page = None
        if pipeline is not None:
            page = await store.artifacts_page(
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
    return _listing(page, artifact_item)


async def pipeline_executions(
    pool: asyncpg.Pool, pipeline_name: str, query: PageQuery
) -> dict[str, Any]:
    """The 0.1.0 ``/executions/{pipeline}``, sorted by stage then id."""
    async with reading(pool, "metadata.pipeline_executions", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        page = None
        if pipeline is not None:
            await store.custom_plans(conn)
            page = await store.pipeline_executions_page(
                conn,
                pipeline=pipeline,
                pattern=query.pattern,
                descending=query.descending,
                limit=query.limit,
                offset=query.offset,
            )
    return _listing(page, execution_item)


async def pipeline_artifacts(
    pool: asyncpg.Pool, pipeline_name: str, artifact_type: str, sort_field: str, query: PageQuery
) -> dict[str, Any]:
    """The 0.1.0 ``/artifacts/{pipeline}/{type}``."""
    async with reading(pool, "metadata.pipeline_artifacts", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        page = None
        if pipeline is not None:
            page = await store.pipeline_artifacts_page(
                conn,
                pipeline=pipeline,
                artifact_type=artifact_type,
                pattern=query.pattern,
                sort_field=sort_field,
                descending=query.descending,
                limit=query.limit,
                offset=query.offset,
            )
    return _listing(page, legacy_artifact_item)


async def list_of_executions(pool: asyncpg.Pool, pipeline_name: str) -> list[str]:
    async with reading(pool, "metadata.list_of_executions", pipeline=pipeline_name) as conn:
        pipeline = await store.pipeline_id(conn, pipeline_name)
        if pipeline is None:
            raise NotFound(f"Pipeline {pipeline_name} not found.")
        rows = await store.pipeline_execution_names(conn, pipeline)
    return [execution_list_name(r["type"], r["uuid"]) for r in rows]


async def model_card(pool: asyncpg.Pool, model_id: int) -> list[Any]:
    """``[model rows, execution rows, input artifact rows, output artifact rows]``, each ``""``
    when empty; all four empty for an id that is not a Model, as the reference answers."""
    async with reading(pool, "metadata.model_card", model_id=model_id) as conn:
        model = await store.artifact(conn, model_id)
        if model is None or model["type"] != MODEL:
            return ["", "", "", ""]
        executions = await store.executions_of_artifact(conn, model_id)
        ids = [e["id"] for e in executions]
        inputs = await store.artifacts_of_executions(conn, ids, INPUT, model_id)
        outputs = await store.artifacts_of_executions(conn, ids, OUTPUT, model_id)
    return [
        frame_records([model_artifact_row(model)]),
        frame_records(model_execution_row(e) for e in executions),
        frame_records(model_artifact_row(a) for a in inputs) if executions else "",
        frame_records(model_artifact_row(a) for a in outputs) if executions else "",
    ]
