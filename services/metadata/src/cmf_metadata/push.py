"""Apply a CMF push: one transaction, one advisory lock per pipeline, a handful of statements.

The pipeline's lock is taken first, so pushes of one pipeline are serialised across processes
and replicas; rows shared between pipelines (types, artifacts) are upserted in key order, so
pushes of different pipelines never deadlock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

import asyncpg
import structlog
from prometheus_client import Counter, Histogram

from cmf_common.access import check_push
from cmf_common.committed import CommittedPublisher
from cmf_common.db import Connection
from cmf_common.events import NewEvent
from cmf_common.metadata_events import (
    SOURCE,
    ArtifactUpserted,
    ContextData,
    EventLink,
    ExecutionData,
    ExecutionMerged,
    PipelineUpserted,
    StageUpserted,
    new_event,
)
from cmf_common.outbox import add_event_batches
from cmf_common.tracing import span
from cmf_metadata.event_data import artifact_of
from cmf_metadata.merge import (
    PIPELINE_TYPE,
    STAGE_TYPE,
    MergePlan,
    PushStatus,
    TypeKind,
    payload_uuids,
    plan_merge,
    read_payload,
)
from cmf_metadata.store import pipelines
from cmf_metadata.store import push as store

log = structlog.get_logger(__name__)

EVENT_BATCH = 500  # entities per event
OUTBOX_BATCH = 10  # events per outbox statement (a few MB)
T = TypeVar("T")

PUSHES = Counter("cmf_metadata_pushes_total", "CMF pushes answered, by status.", ["status"])
PUSH_SECONDS = Histogram(
    "cmf_metadata_push_seconds",
    "Time to merge one push.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 180),
)
MERGED = Counter("cmf_metadata_merged_total", "Entities written by pushes.", ["entity"])
PUSH_BYTES = Histogram(
    "cmf_metadata_push_bytes",
    "Size of one push's MLMD payload (a big push: its whole body), in bytes.",
    buckets=(1e3, 1e4, 1e5, 1e6, 4e6, 8e6, 3.2e7, 1.28e8, 5.12e8),
)


@dataclass(frozen=True)
class PushOutcome:
    status: PushStatus
    pipeline: str
    seq: int | None = None
    executions: int = 0
    artifacts: int = 0
    events: int = 0

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
    pool: asyncpg.Pool,
    *,
    pipeline_name: str,
    json_payload: str,
    exec_uuid: str | None,
    committed: CommittedPublisher | None = None,
) -> PushOutcome:
    """Merge one push. Raises :class:`~cmf_metadata.merge.PayloadRejected` for bad payloads.

    After the commit and before returning, the pipeline's committed sequence is posted on
    ``committed``, so lineage reads wait for every acknowledged push (cmf_common.committed)."""
    check_push(pipeline_name)  # 403 outside the request's pipeline prefix
    started = time.perf_counter()
    PUSH_BYTES.observe(len(json_payload))
    with span("metadata.push", pipeline=pipeline_name):
        pipeline = await asyncio.to_thread(read_payload, json_payload, pipeline_name)
        if pipeline is None:
            outcome = PushOutcome(PushStatus.PIPELINE_NOT_EXIST, pipeline_name)
        else:
            source = pipeline

            def plan(existing: set[str]) -> MergePlan:
                return plan_merge(source, existing, exec_uuid)

            outcome = await merge(pool, pipeline.name, payload_uuids(pipeline), plan)
        await publish_committed(outcome, committed)
    record_push(outcome, started)
    return outcome


async def publish_committed(outcome: PushOutcome, committed: CommittedPublisher | None) -> None:
    if committed is not None and outcome.seq is not None:
        await committed.post(outcome.pipeline, outcome.seq)


def record_push(outcome: PushOutcome, started: float) -> None:
    """The push's metrics and its ``push.merged`` log line (``started``: perf_counter)."""
    PUSHES.labels(outcome.status.value).inc()
    PUSH_SECONDS.observe(time.perf_counter() - started)
    MERGED.labels("execution").inc(outcome.executions)
    MERGED.labels("artifact").inc(outcome.artifacts)
    MERGED.labels("event").inc(outcome.events)
    log.info(
        "push.merged",
        pipeline=outcome.pipeline,
        status=outcome.status.value,
        executions=outcome.executions,
        artifacts=outcome.artifacts,
        seq=outcome.seq,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


async def merge(
    pool: asyncpg.Pool,
    name: str,
    uuids: list[str],
    plan: Callable[[set[str]], MergePlan],
    *,
    plan_in_thread: bool = True,
) -> PushOutcome:
    """Merge the pipeline ``name`` whose payload carries ``uuids``: ``plan`` decides, given the
    uuids already stored, what the push adds (in a thread unless ``plan_in_thread`` is off, as
    in the big push's own process)."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await store.lock_pipeline(conn, name)
            stored_id = await pipelines.pipeline_id(conn, name)
            existing: set[str] = set()
            if stored_id is not None:
                existing = await store.stored_uuids(conn, stored_id, uuids)
            planned = await asyncio.to_thread(plan, existing) if plan_in_thread else plan(existing)
            if planned.status is PushStatus.EXISTS:
                return PushOutcome(PushStatus.EXISTS, name)
            seq, links, artifacts = await _apply(conn, planned, now_ms())
            outcome = PushOutcome(
                PushStatus.SUCCESS, name, seq, len(planned.executions), artifacts, links
            )
        # Committed; before the push is acknowledged, so the first reads it lets in are
        # planned with statistics that know its rows.
        await store.analyze_if_grown(conn, outcome.executions)
        return outcome


@dataclass(frozen=True)
class StoredContexts:
    """The push's pipeline and stages as stored, and the ids of every type the push needs."""

    types: dict[tuple[int, str], int]
    pipeline_id: int
    stage_ids: dict[str, int]


@dataclass
class ExecutionWrites:
    """The push's executions as written: the new rows, the re-used rows updated (by id), and
    the server id of each planned execution, in the plan's order."""

    inserts: list[store.ExecutionRow] = field(default_factory=list)
    updates: dict[int, store.ExecutionRow] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)

    def in_plan_order(self) -> list[store.ExecutionRow]:
        """The row written for each planned execution, in the plan's order."""
        rows = {r.id: r for r in self.inserts} | self.updates
        return [rows[ex_id] for ex_id in self.ids]


async def _apply(conn: Connection, plan: MergePlan, now: int) -> tuple[int, int, int]:
    """Write the plan, entity kind by entity kind, and its events to the outbox; returns the
    pipeline's new outbox sequence, the events linked and the artifacts written."""
    contexts = await _upsert_contexts(conn, plan, now)
    executions = await _write_executions(conn, plan, contexts, now)
    artifact_rows = await _upsert_artifacts(conn, plan, contexts, executions.ids, now)
    plan.artifacts = []  # written: the events read them back as stored, a batch at a time
    links = await _link(conn, plan, contexts, executions.ids, artifact_rows, now)
    seq = await add_event_batches(
        conn,
        subject=plan.pipeline.name,
        source=SOURCE,
        count=_event_count(plan, len(artifact_rows)),
        batches=_event_batches(
            conn,
            plan,
            pipeline_id=contexts.pipeline_id,
            stage_ids=contexts.stage_ids,
            executions=executions.in_plan_order(),
            artifacts=[r["id"] for r in artifact_rows],
            now=now,
        ),
    )
    return seq, links, len(artifact_rows)


async def _upsert_contexts(conn: Connection, plan: MergePlan, now: int) -> StoredContexts:
    """The types the plan needs, then the pipeline, then its stages."""
    pipeline = plan.pipeline
    types = await store.ensure_types(conn, plan.types)
    pipeline_id = await store.upsert_pipeline(
        conn,
        name=pipeline.name,
        type_id=types[(TypeKind.CONTEXT, PIPELINE_TYPE)],
        properties=dict(pipeline.properties),
        custom=dict(pipeline.custom_properties),
        now=now,
    )
    stage_ids = await store.upsert_stages(
        conn,
        pipeline=pipeline_id,
        type_id=types[(TypeKind.CONTEXT, STAGE_TYPE)],
        stages=[store.StageRow(s.name, s.properties, s.custom_properties) for s in plan.stages],
        now=now,
    )
    return StoredContexts(types, pipeline_id, stage_ids)


async def _write_executions(
    conn: Connection, plan: MergePlan, contexts: StoredContexts, now: int
) -> ExecutionWrites:
    """Insert the new executions, update the re-used ones, and record every uuid of each."""
    reused = await store.reused_executions(
        conn,
        contexts.pipeline_id,
        sorted({store.ExecutionKey(e.type, e.name) for e in plan.executions if e.reused}),
    )
    new_count = sum(1 for e in plan.executions if (e.type, e.name) not in reused or not e.reused)
    fresh_ids = iter(await store.allocate_execution_ids(conn, new_count))
    writes = _execution_rows(plan, contexts, reused, fresh_ids)
    await store.insert_executions(conn, pipeline=contexts.pipeline_id, rows=writes.inserts, now=now)
    await store.update_reused_executions(conn, rows=list(writes.updates.values()), now=now)
    await store.insert_execution_uuids(
        conn,
        pipeline=contexts.pipeline_id,
        pairs=[
            store.ExecutionUuid(u, ex_id)
            for planned, ex_id in zip(plan.executions, writes.ids, strict=True)
            for u in planned.uuids
        ],
    )
    return writes


def _execution_rows(
    plan: MergePlan,
    contexts: StoredContexts,
    stored: dict[store.ExecutionKey, store.StoredExecution],
    fresh_ids: Iterator[int],
) -> ExecutionWrites:
    """The rows to write for the plan's executions. A re-used execution (one with a name)
    that is stored is updated, its uuid set unioned; one that is not is inserted, and a later
    one of the same type and name in this push updates that row."""
    known_rows = dict(stored)
    writes = ExecutionWrites()
    for planned in plan.executions:
        stage_id = contexts.stage_ids[planned.stage]
        type_id = contexts.types[(TypeKind.EXECUTION, planned.type)]
        properties = {
            **planned.properties,
            "Context_ID": stage_id,
            "Pipeline_id": contexts.pipeline_id,
            "Execution_uuid": planned.uuid,
        }
        key = store.ExecutionKey(planned.type, planned.name)
        known = known_rows.get(key) if planned.reused else None
        if known is not None:
            uuids = list(dict.fromkeys([*str(known.uuid).split(","), *planned.uuids]))
            properties["Execution_uuid"] = ",".join(u for u in uuids if u)
            row = store.ExecutionRow(
                id=known.id,
                stage_id=stage_id,
                type_id=type_id,
                type=planned.type,
                name=planned.name,
                uuid=properties["Execution_uuid"],
                properties=properties,
                custom_properties=planned.custom_properties,
            )
            writes.updates[row.id] = row
        else:
            row = store.ExecutionRow(
                id=next(fresh_ids),
                stage_id=stage_id,
                type_id=type_id,
                type=planned.type,
                name=planned.name,
                uuid=planned.uuid,
                properties=properties,
                custom_properties=planned.custom_properties,
            )
            writes.inserts.append(row)
            if planned.reused:
                known_rows[key] = store.StoredExecution(row.id, row.uuid)
        writes.ids.append(row.id)
    return writes


async def _upsert_artifacts(
    conn: Connection,
    plan: MergePlan,
    contexts: StoredContexts,
    execution_ids: list[int],
    now: int,
) -> list[asyncpg.Record]:
    """The plan's artifacts as stored after the upsert (a known uri keeps its first name)."""
    producer = _first_execution_of(plan, execution_ids)
    return await store.upsert_artifacts(
        conn,
        rows=[
            store.ArtifactRow(
                uri=a.uri,
                type_id=contexts.types[(TypeKind.ARTIFACT, a.type)],
                type=a.type,
                name=_server_name(a.type, a.name, a.uri, producer),
                properties=a.properties,
                custom_properties=a.custom_properties,
            )
            for a in sorted(plan.artifacts, key=lambda a: a.order)  # the client's order
        ],
        now=now,
    )


async def _link(
    conn: Connection,
    plan: MergePlan,
    contexts: StoredContexts,
    execution_ids: list[int],
    artifact_rows: list[asyncpg.Record],
    now: int,
) -> int:
    """Write the events linking executions and artifacts, and the artifacts' attributions to
    the stages that linked them; returns the number of events the push carried."""
    artifact_ids = {r["uri"]: r["id"] for r in artifact_rows}
    events: list[store.EventRow] = []
    attributions: list[store.Attribution] = []
    for planned, ex_id in zip(plan.executions, execution_ids, strict=True):
        stage_id = contexts.stage_ids[planned.stage]
        for position, event in enumerate(planned.events):
            artifact_id = artifact_ids[event.uri]
            events.append(store.EventRow(ex_id, artifact_id, event.type, position, event.step_key))
            attributions.append(store.Attribution(artifact_id, stage_id))
    await store.insert_events(conn, rows=_unique_events(events), now=now)
    await store.insert_attributions(conn, attributions)
    return len(events)


def _first_execution_of(plan: MergePlan, execution_ids: list[int]) -> dict[str, int]:
    """The server id of the first execution in the push that links each uri."""
    first: dict[str, int] = {}
    for planned, ex_id in zip(plan.executions, execution_ids, strict=True):
        for event in planned.events:
            first.setdefault(event.uri, ex_id)
    return first


def _server_name(type_: str, name: str, uri: str, producer: dict[str, int]) -> str:
    """Metrics names end in the execution id; the server's id replaces the client's
    (docs/wire-contract.md §2.6)."""
    if type_ == "Metrics" and uri in producer:
        return f"{name.split(':', 1)[0]}:{uri}:{producer[uri]}"
    return name


def _unique_events(rows: list[store.EventRow]) -> list[store.EventRow]:
    """The first event of each (execution, artifact, type): the store keeps one of each."""
    seen: dict[tuple[int, int, int], store.EventRow] = {}
    for row in rows:
        seen.setdefault((row.execution_id, row.artifact_id, row.type), row)
    return list(seen.values())


def _chunks(items: list[T]) -> Iterator[list[T]]:
    return (items[i : i + EVENT_BATCH] for i in range(0, len(items), EVENT_BATCH))


def _event_count(plan: MergePlan, artifacts: int) -> int:
    """How many events :func:`_event_batches` makes: the pipeline, its stages, and the
    artifacts and executions ``EVENT_BATCH`` an event."""
    return 2 + -(-artifacts // EVENT_BATCH) + -(-len(plan.executions) // EVENT_BATCH)


async def _event_batches(
    conn: Connection,
    plan: MergePlan,
    *,
    pipeline_id: int,
    stage_ids: dict[str, int],
    executions: list[store.ExecutionRow],
    artifacts: list[int],
    now: int,
) -> AsyncIterator[list[NewEvent]]:
    """The push's events for the outbox, ``OUTBOX_BATCH`` events at a time: the pipeline, its
    stages, then its artifacts and its executions (``executions``: the row written for each of
    the plan's, in its order) at most ``EVENT_BATCH`` an event, each carrying the stable keys
    the graph needs. Made lazily, so a big push holds one batch's events at a time."""
    pipeline = plan.pipeline
    name = pipeline.name
    yield [
        new_event(
            PipelineUpserted(
                ContextData(
                    pipeline_id, name, dict(pipeline.properties), dict(pipeline.custom_properties)
                )
            )
        ),
        new_event(
            StageUpserted(
                name,
                [
                    ContextData(stage_ids[s.name], s.name, s.properties, s.custom_properties)
                    for s in plan.stages
                ],
            )
        ),
    ]
    batch: list[NewEvent] = []
    for chunk in _chunks(artifacts):
        rows = await store.artifacts_by_id(conn, chunk)
        batch.append(new_event(ArtifactUpserted(name, list(map(artifact_of, rows)))))
        if len(batch) == OUTBOX_BATCH:
            yield batch
            batch = []
    indexed = list(zip(plan.executions, executions, strict=True))
    for pairs in _chunks(indexed):
        merged = [
            ExecutionData(
                id=row.id,
                uuid=row.uuid,
                uuids=row.uuid.split(","),
                stage=planned.stage,
                type=row.type,
                name=row.name,
                properties=row.properties,
                custom_properties=row.custom_properties,
                last_update_time_since_epoch=now,
                events=[EventLink(e.uri, e.type) for e in planned.events],
            )
            for planned, row in pairs
        ]
        batch.append(new_event(ExecutionMerged(name, merged)))
        if len(batch) == OUTBOX_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
