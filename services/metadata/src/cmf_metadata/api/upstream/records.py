"""A pipeline's artifacts as upstream's CmfQuery frames them (one record per artifact: its id,
type, uri and name, its properties, its custom properties prefixed ``custom_properties_``), and
the python env an execution recorded, read from the pull document, so no read of their own is
needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg

from cmf_common.errors import NotFound
from cmf_common.frames import artifact_row, frame_records
from cmf_metadata.pull import PullQuery, pull

PYTHON_ENV = "Python_Env"
EXECUTION_UUID = "Execution_uuid"


async def _executions(pool: asyncpg.Pool, pipeline_name: str) -> list[dict[str, Any]]:
    """Every execution of the pipeline, stage by stage, as the pull document nests them."""
    document = await pull(pool, PullQuery(pipeline_name=pipeline_name))
    return [
        execution
        for pipeline in document["Pipeline"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
    ]


def _artifacts(executions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[int] = set()
    for execution in executions:
        for event in execution["events"]:
            artifact = event["artifact"]
            if artifact["id"] not in seen:
                seen.add(artifact["id"])
                yield artifact


async def pipeline_artifacts(pool: asyncpg.Pool, pipeline_name: str) -> list[dict[str, Any]]:
    """``GET /v1/pipelines/{p}/artifacts``: each artifact once, in the order the pipeline's
    executions first touch it; 404 for an unknown pipeline."""
    executions = await _executions(pool, pipeline_name)
    records = frame_records(artifact_row(a) for a in _artifacts(executions))
    return records if isinstance(records, list) else []


async def pipeline_artifacts_or_none(
    pool: asyncpg.Pool, pipeline_name: str
) -> list[dict[str, Any]] | None:
    """:func:`pipeline_artifacts`, ``None`` for an unknown pipeline (CMFQuery's routes)."""
    try:
        return await pipeline_artifacts(pool, pipeline_name)
    except NotFound:
        return None


def _matches(execution: dict[str, Any], wanted: str) -> bool:
    uuids = str(execution["properties"].get(EXECUTION_UUID) or "").split(",")
    return any(u.strip() == wanted or u.strip().startswith(wanted) for u in uuids)


async def python_env_name(pool: asyncpg.Pool, pipeline_name: str, execution_uuid: str) -> str:
    """The python env file an execution (its uuid, or a prefix of it) recorded."""
    found = next(
        (e for e in await _executions(pool, pipeline_name) if _matches(e, execution_uuid)), None
    )
    if found is None:
        raise NotFound("Execution not found")
    name = found["custom_properties"].get(PYTHON_ENV)
    if not name:
        raise NotFound("Python environment is not available for this execution")
    return str(name)
