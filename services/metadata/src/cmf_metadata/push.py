"""Apply a CMF push: one transaction, one advisory lock per pipeline, a handful of statements.

The pipeline's lock is taken first, so pushes of one pipeline are serialised across processes
and replicas; rows shared between pipelines (types, artifacts) are upserted in key order, so
pushes of different pipelines never deadlock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import structlog
from prometheus_client import Counter, Histogram

from cmf_common.db import Connection
from cmf_common.events import NewEvent, event_type
from cmf_common.outbox import add_events
from cmf_common.tracing import span
from cmf_metadata.event_data import artifact_data
from cmf_metadata.merge import (
    MergePlan,
    PushStatus,
    payload_uuids,
    plan_merge,
    read_payload,
)
from cmf_metadata.schemas import PipelineIn
from cmf_metadata.store import repository as repo

log = structlog.get_logger(__name__)

EVENT_SOURCE = "cmf-server/metadata"
EVENT_BATCH = 500

PUSHES = Counter("cmf_metadata_pushes_total", "CMF pushes answered, by status.", ["status"])
PUSH_SECONDS = Histogram(
    "cmf_metadata_push_seconds",
    "Time to merge one push.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 180),
)
MERGED = Counter("cmf_metadata_merged_total", "Entities written by pushes.", ["entity"])


@dataclass(frozen=True)
class PushOutcome:
    status: PushStatus
    pipeline: str
    seq: int | None = None
    executions: int = 0
    artifacts: int = 0

    @property
    def consistency_token(self) -> str | None:
        """``<pipeline>:<seq>``, the name percent-encoded: headers carry only latin-1, and a
        pipeline name may hold any character, a colon included."""
        if self.seq is None:
            return None
        return f"{quote(self.pipeline, safe='')}:{self.seq}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def push(
    pool: asyncpg.Pool, *, pipeline_name: str, json_payload: str, exec_uuid: str | None
) -> PushOutcome:
    """Merge one push. Raises :class:`~cmf_metadata.merge.PayloadRejected` for bad payloads."""
    started = time.perf_counter()
    with span("metadata.push", pipeline=pipeline_name):
        pipeline = await asyncio.to_thread(read_payload, json_payload, pipeline_name)
        if pipeline is None:
            outcome = PushOutcome(PushStatus.PIPELINE_NOT_EXIST, pipeline_name)
        else:
            outcome = await _merge(pool, pipeline, exec_uuid)
    PUSHES.labels(outcome.status.value).inc()
    PUSH_SECONDS.observe(time.perf_counter() - started)
    log.info(
        "push.merged",
        pipeline=pipeline_name,
        status=outcome.status.value,
        executions=outcome.executions,
        artifacts=outcome.artifacts,
        seq=outcome.seq,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return outcome


async def _merge(pool: asyncpg.Pool, pipeline: PipelineIn, exec_uuid: str | None) -> PushOutcome:
    async with pool.acquire() as conn, conn.transaction():
        await repo.lock_pipeline(conn, pipeline.name)
        stored_id = await repo.pipeline_id(conn, pipeline.name)
        existing: set[str] = set()
        if stored_id is not None:
            existing = await repo.stored_uuids(conn, stored_id, payload_uuids(pipeline))
        plan = await asyncio.to_thread(plan_merge, pipeline, existing, exec_uuid)
        if plan.status is PushStatus.EXISTS:
            return PushOutcome(PushStatus.EXISTS, pipeline.name)
        seq = await _apply(conn, plan, now_ms())
        return PushOutcome(
            PushStatus.SUCCESS, pipeline.name, seq, len(plan.executions), len(plan.artifacts)
        )


async def _apply(conn: Connection, plan: MergePlan, now: int) -> int:
    pipeline = plan.pipeline
    types = await repo.ensure_types(conn, plan.types)
    pipeline_id = await repo.upsert_pipeline(
        conn,
        name=pipeline.name,
        type_id=types[(2, "Parent_Context")],
        properties=dict(pipeline.properties),
        custom=dict(pipeline.custom_properties),
        now=now,
    )
    stage_ids = await repo.upsert_stages(
        conn,
        pipeline=pipeline_id,
        type_id=types[(2, "Pipeline_Stage")],
        stages=[(s.name, s.properties, s.custom_properties) for s in plan.stages],
        now=now,
    )

    reused = await repo.reused_executions(
        conn, pipeline_id, sorted({(e.type, e.name) for e in plan.executions if e.reused})
    )
    new_count = sum(1 for e in plan.executions if (e.type, e.name) not in reused or not e.reused)
    fresh_ids = iter(await repo.allocate_execution_ids(conn, new_count))

    inserts: list[repo.ExecutionRow] = []
    updates: dict[int, repo.ExecutionRow] = {}
    execution_ids: list[int] = []
    for planned in plan.executions:
        stage_id = stage_ids[planned.stage]
        properties = {
            **planned.properties,
            "Context_ID": stage_id,
            "Pipeline_id": pipeline_id,
            "Execution_uuid": planned.uuid,
        }
        known = reused.get((planned.type, planned.name)) if planned.reused else None
        if known is not None:
            uuids = list(dict.fromkeys([*str(known["uuid"]).split(","), *planned.uuids]))
            properties["Execution_uuid"] = ",".join(u for u in uuids if u)
            row = repo.ExecutionRow(
                known["id"],
                stage_id,
                types[(0, planned.type)],
                planned.type,
                planned.name,
                properties["Execution_uuid"],
                properties,
                planned.custom_properties,
            )
            updates[row.id] = row
        else:
            row = repo.ExecutionRow(
                next(fresh_ids),
                stage_id,
                types[(0, planned.type)],
                planned.type,
                planned.name,
                planned.uuid,
                properties,
                planned.custom_properties,
            )
            inserts.append(row)
            if planned.reused:
                reused[(planned.type, planned.name)] = {"id": row.id, "uuid": row.uuid}
        execution_ids.append(row.id)

    await repo.insert_executions(conn, pipeline=pipeline_id, rows=inserts, now=now)
    await repo.update_reused_executions(conn, rows=list(updates.values()), now=now)
    await repo.insert_execution_uuids(
        conn,
        pipeline=pipeline_id,
        pairs=[
            (u, ex_id)
            for planned, ex_id in zip(plan.executions, execution_ids, strict=True)
            for u in planned.uuids
        ],
    )

    producer = _first_execution_of(plan, execution_ids)
    artifact_rows = await repo.upsert_artifacts(
        conn,
        rows=[
            (
                a.uri,
                types[(1, a.type)],
                a.type,
                _server_name(a.type, a.name, a.uri, producer),
                a.properties,
                a.custom_properties,
            )
            for a in plan.artifacts
        ],
        now=now,
    )
    artifact_ids = {r["uri"]: r["id"] for r in artifact_rows}

    event_rows: list[tuple[int, int, int, int, str]] = []
    attributions: list[tuple[int, int]] = []
    for planned, ex_id in zip(plan.executions, execution_ids, strict=True):
        for position, event in enumerate(planned.events):
            artifact_id = artifact_ids[event.uri]
            event_rows.append((ex_id, artifact_id, event.type, position, event.step_key))
            attributions.append((artifact_id, stage_ids[planned.stage]))
    await repo.insert_events(conn, rows=_unique_events(event_rows), now=now)
    await repo.insert_attributions(conn, attributions)

    MERGED.labels("execution").inc(len(plan.executions))
    MERGED.labels("artifact").inc(len(artifact_rows))
    MERGED.labels("event").inc(len(event_rows))
    return await add_events(
        conn,
        subject=pipeline.name,
        source=EVENT_SOURCE,
        events=_outbox(
            plan, pipeline_id, stage_ids, execution_ids, inserts, updates, artifact_rows, now
        ),
    )


def _first_execution_of(plan: MergePlan, execution_ids: list[int]) -> dict[str, int]:
    """The server id of the first execution in the push that links each uri."""
    first: dict[str, int] = {}
    for planned, ex_id in zip(plan.executions, execution_ids, strict=True):
        for event in planned.events:
            first.setdefault(event.uri, ex_id)
    return first


def _server_name(type_: str, name: str, uri: str, producer: dict[str, int]) -> str:
    """Metrics names end in the execution id; the server's id replaces the client's (§2.6)."""
    if type_ == "Metrics" and uri in producer:
        return f"{name.split(':', 1)[0]}:{uri}:{producer[uri]}"
    return name


def _unique_events(
    rows: list[tuple[int, int, int, int, str]],
) -> list[tuple[int, int, int, int, str]]:
    seen: dict[tuple[int, int, int], tuple[int, int, int, int, str]] = {}
    for row in rows:
        seen.setdefault((row[0], row[1], row[2]), row)
    return list(seen.values())


def _chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [items[i : i + EVENT_BATCH] for i in range(0, len(items), EVENT_BATCH)]


def _outbox(
    plan: MergePlan,
    pipeline_id: int,
    stage_ids: dict[str, int],
    execution_ids: list[int],
    inserts: list[repo.ExecutionRow],
    updates: dict[int, repo.ExecutionRow],
    artifact_rows: list[Any],
    now: int,
) -> list[NewEvent]:
    """One event per changed entity batch, each carrying the stable keys the graph needs."""
    pipeline = plan.pipeline
    events = [
        NewEvent(
            event_type("pipeline", "upserted"),
            {
                "pipeline": {
                    "id": pipeline_id,
                    "name": pipeline.name,
                    "properties": dict(pipeline.properties),
                    "custom_properties": dict(pipeline.custom_properties),
                }
            },
        )
    ]
    events.append(
        NewEvent(
            event_type("stage", "upserted"),
            {
                "pipeline": pipeline.name,
                "stages": [
                    {
                        "id": stage_ids[s.name],
                        "name": s.name,
                        "properties": s.properties,
                        "custom_properties": s.custom_properties,
                    }
                    for s in plan.stages
                ],
            },
        )
    )
    artifacts = [artifact_data(r) for r in artifact_rows]
    for chunk in _chunks(artifacts):
        events.append(
            NewEvent(
                event_type("artifact", "upserted"), {"pipeline": pipeline.name, "artifacts": chunk}
            )
        )
    rows = {r.id: r for r in inserts} | updates
    executions = []
    for planned, ex_id in zip(plan.executions, execution_ids, strict=True):
        row = rows[ex_id]
        executions.append(
            {
                "id": ex_id,
                "uuid": row.uuid,
                "uuids": row.uuid.split(","),
                "stage": planned.stage,
                "type": row.type,
                "name": row.name,
                "properties": row.properties,
                "custom_properties": row.custom_properties,
                "last_update_time_since_epoch": now,
                "events": [{"artifact_uri": e.uri, "type": e.type} for e in planned.events],
            }
        )
    for chunk in _chunks(executions):
        events.append(
            NewEvent(
                event_type("execution", "merged"), {"pipeline": pipeline.name, "executions": chunk}
            )
        )
    return events
