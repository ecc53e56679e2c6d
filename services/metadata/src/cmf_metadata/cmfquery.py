"""CMFQuery's table questions (cmflib's ``cmfquery.py``), answered from the metadata store:
pipelines by name, artifacts and executions by id, by stage and by pipeline, and the pipeline
JSON. Its graph questions are the lineage service's (``cmf_lineage.cmfquery``). FastAPI-free;
``api/upstream/cmfquery.py`` routes them (docs/upstream-v1.md §4–§6).

Each answer is what upstream's CMFQuery routes put in ``data``: records shaped as CmfQuery's
DataFrames come out (:mod:`cmf_common.frames`), or its executions as upstream's
``_execution_to_dict`` writes them. ``None`` means CmfQuery's empty answer, which the routes
turn into upstream's HTTP 200 ``code: 404``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from cmf_common.access import current_prefix
from cmf_common.db import read_snapshot
from cmf_common.frames import artifact_row, execution_row, frame_records, properties_row
from cmf_common.tracing import span
from cmf_metadata.properties import Row
from cmf_metadata.pull import PullQuery, document
from cmf_metadata.store import cmfquery as store
from cmf_metadata.store.pipelines import pipeline_id as find_pipeline_id
from cmf_metadata.store.pull import artifacts_by_id

Records = list[dict[str, Any]]
SUMMARY_COLUMNS = ("id", "Execution_type_name", "Execution_uuid")
METRICS_FILE = "Name"  # the custom property cmflib's get_metrics reads the metrics file from


def _frames(rows: Iterable[dict[str, Any]]) -> Records | None:
    records = frame_records(rows)
    return records if isinstance(records, list) and records else None


def execution_dict(row: Row) -> dict[str, Any]:
    """An execution as upstream's ``MlmdState._execution_to_dict`` writes an MLMD one (no
    external id is ever recorded by the CMF client: MLMD's default, ``""``)."""
    return {
        "id": row["id"],
        "type_id": row["type_id"],
        "name": row["name"],
        "external_id": "",
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
        "properties": dict(row["properties"]),
        "custom_properties": dict(row["custom_properties"]),
    }


# Pipelines.


async def pipeline_id(pool: asyncpg.Pool, pipeline_name: str) -> int | None:
    """``get_pipeline_id`` (``None`` where it says -1)."""
    async with read_snapshot(pool) as conn:
        return await find_pipeline_id(conn, pipeline_name, current_prefix())


async def pipeline_json(
    pool: asyncpg.Pool, pipeline_name: str, exec_uuid: str | None
) -> dict[str, Any] | None:
    """``dumptojson``: the pull document of the pipeline; an ``exec_uuid`` that matches no
    execution leaves its stages empty (the pull's ``no_exec_uuid`` is its route's)."""
    with span("metadata.cmfquery.pipeline_json", pipeline=pipeline_name):
        async with read_snapshot(pool) as conn:
            if await find_pipeline_id(conn, pipeline_name, current_prefix()) is None:
                return None
            query = PullQuery(pipeline_name, exec_uuid=exec_uuid)
            return await document(conn, query, strict_exec_uuid=False)


async def pipelines_json(pool: asyncpg.Pool, last_sync_time: int) -> dict[str, Any]:
    """``extract_to_json``: every pipeline, narrowed to what changed after ``last_sync_time``
    (epoch ms) when it is not 0, as the pull without a pipeline answers it."""
    with span("metadata.cmfquery.pipelines_json"):
        async with read_snapshot(pool) as conn:
            return await document(conn, PullQuery(None, last_sync_time=last_sync_time or None))


# Artifacts.


async def artifact_names(pool: asyncpg.Pool) -> list[str]:
    """``get_all_artifacts``: every artifact's name, in the store's order."""
    async with read_snapshot(pool) as conn:
        return await store.artifact_names(conn, current_prefix())


async def artifacts_with_ids(pool: asyncpg.Pool, ids: list[int]) -> Records | None:
    """``get_all_artifacts_by_ids_list``: the artifacts among ``ids``, by id."""
    async with read_snapshot(pool) as conn:
        rows = await artifacts_by_id(conn, sorted(set(ids)), current_prefix())
    return _frames(artifact_row(r) for r in sorted(rows, key=lambda r: r["id"]))


async def metrics_file(pool: asyncpg.Pool, metrics_name: str) -> str | None:
    """The file ``get_metrics`` would read the metrics of ``metrics_name`` from: the
    ``Name`` custom property of its ``Step_Metrics`` artifact (``None``: no such artifact, or
    none recorded, as cmflib 0.1.0 records none)."""
    async with read_snapshot(pool) as conn:
        row = await store.metrics_artifact(conn, metrics_name, current_prefix())
    file = row["custom_properties"].get(METRICS_FILE) if row is not None else None
    return str(file) if file else None


# Executions.


async def pipeline_executions(pool: asyncpg.Pool, pipeline_name: str) -> Records | None:
    """``get_all_executions_in_pipeline``: every execution of the pipeline, stage by stage,
    one record each (``[]`` when it has none); ``None`` for no such pipeline."""
    with span("metadata.cmfquery.pipeline_executions", pipeline=pipeline_name):
        async with read_snapshot(pool) as conn:
            pipeline = await find_pipeline_id(conn, pipeline_name, current_prefix())
            if pipeline is None:
                return None
            rows = await store.executions_of_pipeline(conn, pipeline)
    return _frames(execution_row(r) for r in rows) or []


async def stage_executions(pool: asyncpg.Pool, stage_name: str) -> Records | None:
    """``get_all_executions_in_stage``: the records of every stage of that name's executions."""
    async with read_snapshot(pool) as conn:
        rows = await store.executions_of_stages_named(
            conn, stage_name, first_only=False, prefix=current_prefix()
        )
    return _frames(execution_row(r) for r in rows)


async def stage_execution_objects(pool: asyncpg.Pool, stage_name: str) -> Records | None:
    """``get_all_exe_in_stage``: the first stage of that name's executions, whole."""
    async with read_snapshot(pool) as conn:
        rows = await store.executions_of_stages_named(
            conn, stage_name, first_only=True, prefix=current_prefix()
        )
    return [execution_dict(r) for r in rows] or None


async def executions_of_stage(
    pool: asyncpg.Pool, stage_id: int, execution_uuid: str | None
) -> Records | None:
    """``get_all_executions_by_stage``: the stage's executions (those of ``execution_uuid``
    when given), whole."""
    async with read_snapshot(pool) as conn:
        rows = await store.executions_of_stage(conn, stage_id, execution_uuid, current_prefix())
    return [execution_dict(r) for r in rows] or None


async def executions_with_ids(pool: asyncpg.Pool, ids: list[int]) -> Records | None:
    """``get_all_executions_by_ids_list``: the executions among ``ids``, by id, framed from
    their properties alone (CmfQuery adds no id or name there)."""
    async with read_snapshot(pool) as conn:
        rows = await store.executions_by_id(conn, sorted(set(ids)), current_prefix())
    return _frames(properties_row(r) for r in rows)


async def execution_summaries(pool: asyncpg.Pool, ids: list[int]) -> Records | None:
    """``get_executions_with_execution_ids``: ``id, Execution_type_name, Execution_uuid`` of
    the executions among ``ids``, by id."""
    async with read_snapshot(pool) as conn:
        rows = await store.executions_by_id(conn, sorted(set(ids)), current_prefix())
    summaries = []
    for row in rows:
        flat = properties_row(row, id=row["id"])
        summaries.append({column: flat.get(column) for column in SUMMARY_COLUMNS})
    return _frames(summaries)
