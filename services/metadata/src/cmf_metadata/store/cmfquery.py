"""The SQL of CMFQuery's table questions (upstream's ``/v1`` CMFQuery routes): artifacts and
executions by id, by stage, by pipeline, in the order cmflib's CmfQuery reads them from MLMD.

The orders: MLMD's ``get_executions_by_context`` answers ``create_time_since_epoch DESC, id
DESC``; contexts (pipelines, their stages) come the newest first, as the reference's pull and
``/pipelines`` show them (store/pull.py, store/pipelines.py); lookups by id and
``get_artifacts`` have no order of their own, and are given the store's, by id.

Functions take a connection inside the caller's read-only snapshot; nothing here commits. A
``prefix`` (the request's pipeline prefix) keeps the answers to what pipelines inside it hold.
"""

from __future__ import annotations

import asyncpg

from cmf_common.db import Connection
from cmf_metadata.store.paging import artifact_in_prefix, execution_in_prefix

_BY_ID = (
    "SELECT e.id, e.stage_id, e.type_id, e.name, e.properties, e.custom_properties,"
    "   e.create_time_since_epoch, e.last_update_time_since_epoch"
    " FROM executions e WHERE e.id = ANY($1::bigint[]){inside} ORDER BY e.id"
)
# A stage's executions as get_executions_by_context reads them; stages the newest first.
_OF_PIPELINE = (
    "SELECT e.id, e.stage_id, e.type_id, e.name, e.properties, e.custom_properties,"
    "   e.create_time_since_epoch, e.last_update_time_since_epoch"
    " FROM executions e WHERE e.pipeline_id = $1"
    " ORDER BY e.stage_id DESC, e.create_time_since_epoch DESC, e.id DESC"
)
_OF_STAGES_NAMED = (
    "WITH named AS ("
    "  SELECT s.id, s.pipeline_id FROM stages s WHERE s.name = $1{inside}"
    "  ORDER BY s.pipeline_id DESC, s.id DESC LIMIT CASE WHEN $2 THEN 1 END"
    ") SELECT e.id, e.stage_id, e.type_id, e.name, e.properties, e.custom_properties,"
    "   e.create_time_since_epoch, e.last_update_time_since_epoch"
    " FROM executions e JOIN named ON named.id = e.stage_id"
    " ORDER BY named.pipeline_id DESC, e.stage_id DESC,"
    "   e.create_time_since_epoch DESC, e.id DESC"
)
_OF_STAGE = (
    "SELECT e.id, e.stage_id, e.type_id, e.name, e.properties, e.custom_properties,"
    "   e.create_time_since_epoch, e.last_update_time_since_epoch"
    " FROM executions e WHERE e.stage_id = $1 AND ($2::text IS NULL OR EXISTS ("
    "   SELECT 1 FROM execution_uuids u WHERE u.execution_id = e.id AND u.uuid = $2)){inside}"
    " ORDER BY e.create_time_since_epoch DESC, e.id DESC"
)


def _inside(fragment: str, prefix: str | None) -> tuple[str, tuple[str, ...]]:
    """`` AND fragment`` and the prefix to bind, or nothing without a prefix."""
    return ("", ()) if prefix is None else (" AND " + fragment, (prefix,))


async def artifact_names(conn: Connection, prefix: str | None = None) -> list[str]:
    """``get_all_artifacts``: every artifact's name."""
    if prefix is None:
        rows = await conn.fetch("SELECT name FROM artifacts ORDER BY id")
    else:
        rows = await conn.fetch(
            f"SELECT a.name FROM artifacts a WHERE {artifact_in_prefix('a', '$1')}"  # noqa: S608
            " ORDER BY a.id",
            prefix,
        )
    return [r["name"] for r in rows]


async def executions_by_id(
    conn: Connection, ids: list[int], prefix: str | None = None
) -> list[asyncpg.Record]:
    inside, args = _inside(execution_in_prefix("e", "$2"), prefix)
    return await conn.fetch(_BY_ID.format(inside=inside), ids, *args)


async def executions_of_pipeline(conn: Connection, pipeline: int) -> list[asyncpg.Record]:
    """``get_all_executions_in_pipeline``: the pipeline's executions, stage by stage."""
    return await conn.fetch(_OF_PIPELINE, pipeline)


async def executions_of_stages_named(
    conn: Connection, stage_name: str, *, first_only: bool, prefix: str | None = None
) -> list[asyncpg.Record]:
    """The executions of every stage of that name (``get_all_executions_in_stage``), pipeline
    by pipeline the newest first; ``first_only``: of the first such stage alone
    (``get_all_exe_in_stage`` stops at it)."""
    inside, args = _inside(execution_in_prefix("s", "$3"), prefix)
    return await conn.fetch(_OF_STAGES_NAMED.format(inside=inside), stage_name, first_only, *args)


async def executions_of_stage(
    conn: Connection, stage_id: int, execution_uuid: str | None, prefix: str | None = None
) -> list[asyncpg.Record]:
    """``get_all_executions_by_stage``: the stage's executions, those whose comma-listed
    ``Execution_uuid`` holds ``execution_uuid`` when it is given."""
    inside, args = _inside(execution_in_prefix("e", "$3"), prefix)
    return await conn.fetch(_OF_STAGE.format(inside=inside), stage_id, execution_uuid, *args)


async def metrics_artifact(
    conn: Connection, name: str, prefix: str | None = None
) -> asyncpg.Record | None:
    """``get_metrics``' artifact: the first ``Step_Metrics`` artifact of that name."""
    inside, args = _inside(artifact_in_prefix("a", "$2"), prefix)
    return await conn.fetchrow(
        "SELECT a.id, a.custom_properties FROM artifacts a"  # noqa: S608 (constant fragments)
        f" WHERE a.type = 'Step_Metrics' AND a.name = $1{inside} ORDER BY a.id LIMIT 1",
        name,
        *args,
    )
