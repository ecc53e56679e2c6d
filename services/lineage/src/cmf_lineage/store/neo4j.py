"""The lineage graph in Neo4j: ``UNWIND`` batches that ``MERGE`` on the stable keys inside one
managed write transaction per batch, newer versions only.

Neo4j properties cannot hold maps, so property maps are kept as canonical JSON strings. The
consumer's memory (applied event ids, highest sequence per pipeline) lives in the same graph and
is written in the same transaction as the events' effects.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from cmf_common.db import json_dumps
from cmf_common.dispatch import StoreUnavailable
from cmf_common.events import Envelope
from cmf_common.tracing import SpanKind, failed, span
from cmf_lineage.graph import GraphBatch, GraphSnapshot, progress_events, to_batch
from cmf_lineage.store.neo4j_client import Neo4jClient

SCHEMA = (
    "CREATE CONSTRAINT cmf_pipeline IF NOT EXISTS FOR (n:Pipeline) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT cmf_stage IF NOT EXISTS"
    " FOR (n:Stage) REQUIRE (n.pipeline, n.name) IS UNIQUE",
    "CREATE CONSTRAINT cmf_execution IF NOT EXISTS"
    " FOR (n:Execution) REQUIRE (n.pipeline, n.uuid) IS UNIQUE",
    "CREATE CONSTRAINT cmf_artifact IF NOT EXISTS FOR (n:Artifact) REQUIRE n.uri IS UNIQUE",
    "CREATE CONSTRAINT cmf_applied IF NOT EXISTS"
    " FOR (n:AppliedEvent) REQUIRE (n.consumer, n.id) IS UNIQUE",
    "CREATE CONSTRAINT cmf_progress IF NOT EXISTS"
    " FOR (n:Progress) REQUIRE (n.consumer, n.subject) IS UNIQUE",
    "CREATE CONSTRAINT cmf_blob IF NOT EXISTS FOR (n:Blob) REQUIRE n.digest IS UNIQUE",
    "CREATE CONSTRAINT cmf_blob_progress IF NOT EXISTS"
    " FOR (n:BlobProgress) REQUIRE n.consumer IS UNIQUE",
    "CREATE INDEX cmf_artifact_metadata_id IF NOT EXISTS FOR (n:Artifact) ON (n.metadata_id)",
    "CREATE INDEX cmf_execution_uuid IF NOT EXISTS FOR (n:Execution) ON (n.uuid)",
    "CREATE INDEX cmf_applied_at IF NOT EXISTS FOR (n:AppliedEvent) ON (n.consumer, n.applied_at)",
)

# A node's content is replaced only by a version at least as new as the one it holds.
_NEWER = "WHERE n.version IS NULL OR row.version >= n.version"

WRITE_PIPELINES = (
    "UNWIND $rows AS row MERGE (n:Pipeline {name: row.name}) WITH n, row "
    + _NEWER
    + " SET n.properties = row.properties, n.version = row.version"
)
WRITE_STAGES = (
    "UNWIND $rows AS row MERGE (n:Stage {pipeline: row.pipeline, name: row.name})"
    " WITH n, row " + _NEWER + " SET n.properties = row.properties, n.version = row.version"
)
# Membership is added whatever the version: an artifact belongs to every pipeline that used it.
_JOIN_PIPELINES = (
    " SET n.pipelines = reduce(acc = coalesce(n.pipelines, []), p IN row.pipelines |"
    "   CASE WHEN p IN acc THEN acc ELSE acc + p END)"
)
WRITE_ARTIFACTS = (
    "UNWIND $rows AS row MERGE (n:Artifact {uri: row.uri})"
    + _JOIN_PIPELINES
    + " WITH n, row "
    + _NEWER
    + " SET n.type = row.type, n.name = row.name, n.display_name = row.display_name,"
    " n.metadata_id = row.metadata_id, n.properties = row.properties,"
    " n.custom_properties = row.custom_properties, n.create_time = row.create_time,"
    " n.version = row.version"
)
WRITE_MEMBERSHIPS = "UNWIND $rows AS row MERGE (n:Artifact {uri: row.uri})" + _JOIN_PIPELINES
WRITE_EXECUTIONS = (
    "UNWIND $rows AS row MERGE (n:Execution {pipeline: row.pipeline, uuid: row.uuid})"
    " WITH n, row "
    + _NEWER
    + " SET n.uuids = row.uuids, n.stage = row.stage, n.type = row.type, n.name = row.name,"
    " n.display_name = row.display_name, n.metadata_id = row.metadata_id,"
    " n.properties = row.properties, n.custom_properties = row.custom_properties,"
    " n.version = row.version"
)
WRITE_INPUTS = (
    "UNWIND $rows AS row MERGE (a:Artifact {uri: row.artifact})"
    " MERGE (x:Execution {pipeline: row.pipeline, uuid: row.execution})"
    " MERGE (a)-[:INPUT {pipeline: row.pipeline}]->(x)"
)
WRITE_OUTPUTS = (
    "UNWIND $rows AS row MERGE (a:Artifact {uri: row.artifact})"
    " MERGE (x:Execution {pipeline: row.pipeline, uuid: row.execution})"
    " MERGE (x)-[:OUTPUT {pipeline: row.pipeline}]->(a)"
)
# The blobs the artifact service holds, apart from the artifacts (an artifact is stored when a
# blob's digest is its uri); a later event only fills in a sha256 learnt since.
WRITE_BLOBS = (
    "UNWIND $rows AS row MERGE (b:Blob {digest: row.digest})"
    " SET b.size = row.size, b.sha256 = coalesce(b.sha256, row.sha256)"
)
# Blob events are counted, not given a Progress node each: the count is part of the version.
COUNT_BLOB_EVENTS = (
    "MERGE (p:BlobProgress {consumer: $consumer}) SET p.applied = coalesce(p.applied, 0) + $applied"
)
CLAIM_EVENTS = (
    "UNWIND $ids AS id OPTIONAL MATCH (seen:AppliedEvent {consumer: $consumer, id: id})"
    " WITH id, seen WHERE seen IS NULL"
    " CREATE (:AppliedEvent {consumer: $consumer, id: id, applied_at: timestamp()})"
    " RETURN collect(id) AS fresh"
)
# At most this many ids forgotten per transaction, so a first prune of a long history stays
# within Neo4j's transaction memory. ``applied_at`` is the server's clock (``timestamp()``).
FORGET_APPLIED = (
    "MATCH (n:AppliedEvent {consumer: $consumer}) WHERE n.applied_at < timestamp() - $keep_ms"
    " WITH n LIMIT 10000 DELETE n RETURN count(*) AS deleted"
)
RECORD_PROGRESS = (
    "UNWIND $rows AS row MERGE (p:Progress {consumer: $consumer, subject: row.subject})"
    " SET p.seq = CASE WHEN p.seq IS NULL OR row.seq > p.seq THEN row.seq ELSE p.seq END"
)


class Neo4jGraphStore(Neo4jClient):
    schema = SCHEMA

    async def delete_everything(self, *, keep_blobs: bool = False) -> None:
        """Empty the graph in batches (a rebuild starts from nothing). ``keep_blobs`` spares
        what the artifact service's events wrote (``Blob``, ``BlobProgress``): the metadata
        export a rebuild re-projects does not carry them."""
        spared = " WHERE NOT (n:Blob OR n:BlobProgress)" if keep_blobs else ""
        async with self.driver.session(database=self.database) as session:
            await (
                await session.run(
                    f"MATCH (n){spared}"
                    " CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
                )
            ).consume()

    async def apply(self, consumer: str, envelopes: list[Envelope]) -> GraphBatch | None:
        """Applies ``envelopes`` in transactions of at most ``MAX_TRANSACTION_ENTITIES``: Neo4j
        bounds a transaction's memory, and each part is complete on its own (its events'
        ids and progress are recorded with their effects)."""
        applied: GraphBatch | None = None
        with span(
            "neo4j write",
            kind=SpanKind.CLIENT,
            **{"db.system": "neo4j", "db.operation.name": "MERGE", "cmf.events": len(envelopes)},
        ) as write:
            try:
                async with self.driver.session(database=self.database) as session:
                    for part in _parts(envelopes):
                        result: GraphBatch | None = await session.execute_write(
                            _apply, consumer, part
                        )
                        if result is not None:
                            applied = result if applied is None else applied.merged(result)
            except (ServiceUnavailable, SessionExpired, OSError) as exc:
                failed(write, type(exc).__name__)
                raise StoreUnavailable(f"Neo4j: {type(exc).__name__}: {exc}") from exc
            write.set_attribute("cmf.graph.writes", applied.writes() if applied else 0)
        return applied

    async def forget_applied(self, consumer: str, retention: timedelta) -> int:
        """Delete the ``AppliedEvent`` nodes older than ``retention``, as the PostgreSQL store
        prunes its inbox (why that is safe: :func:`cmf_common.inbox.forget_older_than`)."""
        keep_ms = int(retention.total_seconds() * 1000)
        deleted = 0
        try:
            async with self.driver.session(database=self.database) as session:
                while True:
                    part: int = await session.execute_write(_forget, consumer, keep_ms)
                    deleted += part
                    if part == 0:
                        return deleted
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise StoreUnavailable(f"Neo4j: {type(exc).__name__}: {exc}") from exc

    async def applied_seq(self, consumer: str, pipeline: str) -> int:
        async with self.driver.session(database=self.database) as session:
            record = await (
                await session.run(
                    "MATCH (p:Progress {consumer: $consumer, subject: $subject})"
                    " RETURN coalesce(p.seq, 0) AS seq",
                    consumer=consumer,
                    subject=pipeline,
                )
            ).single()
        # No node, or one without a sequence (a graph being emptied): nothing applied yet.
        seq = record["seq"] if record is not None else None
        return int(seq) if isinstance(seq, int) else 0

    async def snapshot(self) -> GraphSnapshot:
        async with self.driver.session(database=self.database) as session:
            pipelines = await _rows(
                session,
                "MATCH (n:Pipeline) WHERE n.version IS NOT NULL"
                " RETURN n.name AS name, n.properties AS p",
            )
            stages = await _rows(
                session,
                "MATCH (n:Stage) WHERE n.version IS NOT NULL"
                " RETURN n.pipeline AS l, n.name AS name,"
                " n.properties AS p",
            )
            executions = await _rows(
                session, "MATCH (n:Execution) WHERE n.version IS NOT NULL RETURN n AS n"
            )
            artifacts = await _rows(
                session, "MATCH (n:Artifact) WHERE n.version IS NOT NULL RETURN n AS n"
            )
            edges = await _rows(
                session,
                "MATCH (a:Artifact)-[r:INPUT]->(x:Execution)"
                " RETURN r.pipeline AS l, x.uuid AS x, a.uri AS a, 3 AS k"
                " UNION ALL MATCH (x:Execution)-[r:OUTPUT]->(a:Artifact)"
                " RETURN r.pipeline AS l, x.uuid AS x, a.uri AS a, 4 AS k",
            )
        return GraphSnapshot.of(
            pipelines={r["name"]: [json.loads(r["p"])] for r in pipelines},
            stages={f"{r['l']}/{r['name']}": [json.loads(r["p"])] for r in stages},
            executions={
                f"{n['pipeline']}/{n['uuid']}": [
                    list(n["uuids"]),
                    n["stage"],
                    n["type"],
                    n["name"],
                    n["display_name"],
                    json.loads(n["properties"]),
                    json.loads(n["custom_properties"]),
                ]
                for n in (r["n"] for r in executions)
            },
            artifacts={
                n["uri"]: [
                    n["type"],
                    n["name"],
                    n["display_name"],
                    json.loads(n["properties"]),
                    json.loads(n["custom_properties"]),
                    sorted(n.get("pipelines") or []),
                ]
                for n in (r["n"] for r in artifacts)
            },
            edges={(r["l"], r["x"], r["a"], r["k"]) for r in edges},
        )


MAX_TRANSACTION_ENTITIES = 20_000


def _weight(envelope: Envelope) -> int:
    """About how many nodes and edges an event writes."""
    data = envelope.data
    executions = data.get("executions")
    if isinstance(executions, list):
        return sum(1 + len(x.get("events") or []) if isinstance(x, dict) else 1 for x in executions)
    for key in ("artifacts", "stages"):
        items = data.get(key)
        if isinstance(items, list):
            return len(items)
    return 1


def _parts(envelopes: list[Envelope]) -> list[list[Envelope]]:
    parts: list[list[Envelope]] = [[]]
    weight = 0
    for envelope in envelopes:
        w = _weight(envelope)
        if parts[-1] and weight + w > MAX_TRANSACTION_ENTITIES:
            parts.append([])
            weight = 0
        parts[-1].append(envelope)
        weight += w
    return parts


async def _rows(session: Any, query: str) -> list[Any]:
    result = await session.run(query)
    return [record async for record in result]


async def _forget(tx: AsyncManagedTransaction, consumer: str, keep_ms: int) -> int:
    record = await (await tx.run(FORGET_APPLIED, consumer=consumer, keep_ms=keep_ms)).single()
    return int(record["deleted"]) if record is not None else 0


async def _apply(
    tx: AsyncManagedTransaction, consumer: str, envelopes: list[Envelope]
) -> GraphBatch | None:
    claimed = await (
        await tx.run(CLAIM_EVENTS, consumer=consumer, ids=[e.id for e in envelopes])
    ).single()
    fresh_ids = set(claimed["fresh"]) if claimed is not None else set()
    fresh = [e for e in envelopes if e.id in fresh_ids]
    if not fresh:
        return None
    batch = to_batch(fresh)
    await write_batch(tx, batch)
    highest: dict[str, int] = {}
    for envelope in progress_events(fresh):
        highest[envelope.subject] = max(highest.get(envelope.subject, 0), envelope.seq)
    await tx.run(
        RECORD_PROGRESS,
        consumer=consumer,
        rows=[{"subject": s, "seq": q} for s, q in sorted(highest.items())],
    )
    if batch.blob_events:
        await (
            await tx.run(COUNT_BLOB_EVENTS, consumer=consumer, applied=batch.blob_events)
        ).consume()
    return batch


async def write_batch(tx: AsyncManagedTransaction, batch: GraphBatch) -> None:
    async def run(query: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            await (await tx.run(query, rows=rows)).consume()

    await run(
        WRITE_PIPELINES,
        [
            {"name": p.name, "properties": json_dumps(p.properties), "version": p.version}
            for p in batch.pipelines
        ],
    )
    await run(
        WRITE_STAGES,
        [
            {
                "pipeline": s.pipeline,
                "name": s.name,
                "properties": json_dumps(s.properties),
                "version": s.version,
            }
            for s in batch.stages
        ],
    )
    pipelines_of: dict[str, list[str]] = {}
    for uri, pipeline in sorted(batch.memberships):
        pipelines_of.setdefault(uri, []).append(pipeline)
    written = {a.uri for a in batch.artifacts}
    await run(
        WRITE_ARTIFACTS,
        [
            {
                "uri": a.uri,
                "type": a.type,
                "name": a.name,
                "display_name": a.display_name,
                "metadata_id": a.metadata_id,
                "properties": json_dumps(a.properties),
                "custom_properties": json_dumps(a.custom_properties),
                "create_time": a.create_time,
                "version": a.version,
                "pipelines": pipelines_of.get(a.uri, []),
            }
            for a in batch.artifacts
        ],
    )
    await run(
        WRITE_MEMBERSHIPS,
        [{"uri": u, "pipelines": p} for u, p in pipelines_of.items() if u not in written],
    )
    await run(
        WRITE_EXECUTIONS,
        [
            {
                "pipeline": x.pipeline,
                "uuid": x.uuid,
                "uuids": x.uuids,
                "stage": x.stage,
                "type": x.type,
                "name": x.name,
                "display_name": x.display_name,
                "metadata_id": x.metadata_id,
                "properties": json_dumps(x.properties),
                "custom_properties": json_dumps(x.custom_properties),
                "version": x.version,
            }
            for x in batch.executions
        ],
    )
    edges = sorted(batch.edges, key=lambda e: (e.pipeline, e.execution, e.artifact, e.kind))
    await run(
        WRITE_INPUTS,
        [
            {"pipeline": e.pipeline, "execution": e.execution, "artifact": e.artifact}
            for e in edges
            if e.kind == 3
        ],
    )
    await run(
        WRITE_OUTPUTS,
        [
            {"pipeline": e.pipeline, "execution": e.execution, "artifact": e.artifact}
            for e in edges
            if e.kind == 4
        ],
    )
    await run(
        WRITE_BLOBS,
        [{"digest": b.digest, "size": b.size, "sha256": b.sha256} for b in batch.blobs],
    )
