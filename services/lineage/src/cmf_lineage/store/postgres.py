"""The lineage graph in PostgreSQL: node and edge tables in schema ``lineage``, written with
one set-based upsert per kind, newer versions only."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from cmf_common.db import Connection, analyze_if_grown, json_dumps
from cmf_common.dispatch import StoreUnavailable
from cmf_common.events import Envelope
from cmf_common.inbox import applied_seq, claim_new, forget_older_than, record_progress
from cmf_common.workers import POSTGRES_TRANSIENT
from cmf_lineage.graph import GraphBatch, GraphSnapshot, progress_events, to_batch

# What a batch writes; analyzed when a batch grows the graph (cmf_common.db.analyze_if_grown).
GRAPH_TABLES = ("pipelines", "stages", "artifacts", "artifact_pipelines", "executions", "edges")


class PostgresGraphStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def apply(self, consumer: str, envelopes: list[Envelope]) -> GraphBatch | None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await claim_new(conn, consumer, envelopes)
                if not fresh:
                    return None
                batch = to_batch(fresh)
                await write_batch(conn, batch)
                await record_progress(conn, consumer, progress_events(fresh))
                await count_blob_events(conn, consumer, batch.blob_events)
                # In the batch's transaction: the statistics and the progress that lets a
                # read with the push's token in are seen together, from the commit on.
                await analyze_if_grown(conn, GRAPH_TABLES, measure="edges", added=len(batch.edges))
                return batch
        except POSTGRES_TRANSIENT as exc:
            raise StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc

    async def applied_seq(self, consumer: str, pipeline: str) -> int:
        async with self.pool.acquire() as conn:
            return await applied_seq(conn, consumer, pipeline)

    async def forget_applied(self, consumer: str, retention: timedelta) -> int:
        """The inbox's retention (see :func:`cmf_common.inbox.forget_older_than`)."""
        async with self.pool.acquire() as conn:
            return await forget_older_than(conn, consumer, retention)

    async def snapshot(self) -> GraphSnapshot:
        """Every node key with its properties and every edge, for comparing two graphs."""
        async with self.pool.acquire() as conn:
            pipelines = await conn.fetch("SELECT name, properties FROM pipelines")
            stages = await conn.fetch("SELECT pipeline, name, properties FROM stages")
            executions = await conn.fetch(
                "SELECT uuid, uuids, pipeline, stage, type, name, display_name, properties,"
                " custom_properties FROM executions"
            )
            artifacts = await conn.fetch(
                "SELECT a.uri, a.type, a.name, a.display_name, a.properties,"
                "   a.custom_properties, array_agg(m.pipeline ORDER BY m.pipeline) AS pipelines"
                " FROM artifacts a LEFT JOIN artifact_pipelines m ON m.uri = a.uri"
                " GROUP BY a.uri"
            )
            edges = await conn.fetch("SELECT pipeline, execution, artifact, kind FROM edges")
        return GraphSnapshot.of(
            pipelines={r["name"]: [r["properties"]] for r in pipelines},
            stages={f"{r['pipeline']}/{r['name']}": [r["properties"]] for r in stages},
            executions={
                f"{r['pipeline']}/{r['uuid']}": [
                    list(r["uuids"]),
                    r["stage"],
                    r["type"],
                    r["name"],
                    r["display_name"],
                    r["properties"],
                    r["custom_properties"],
                ]
                for r in executions
            },
            artifacts={
                r["uri"]: [
                    r["type"],
                    r["name"],
                    r["display_name"],
                    r["properties"],
                    r["custom_properties"],
                    [p for p in r["pipelines"] if p is not None],
                ]
                for r in artifacts
            },
            edges={(r["pipeline"], r["execution"], r["artifact"], r["kind"]) for r in edges},
        )


async def count_blob_events(conn: Connection, consumer: str, applied: int) -> None:
    """Raise the consumer's count of applied blob events (its graph version grows with it)."""
    if applied:
        await conn.execute(
            "INSERT INTO blob_progress AS t (consumer, applied) VALUES ($1, $2)"
            " ON CONFLICT (consumer) DO UPDATE SET applied = t.applied + excluded.applied",
            consumer,
            applied,
        )


async def write_batch(conn: Connection, batch: GraphBatch) -> None:
    if batch.pipelines:
        await conn.execute(
            "INSERT INTO pipelines AS t (name, properties, version)"
            " SELECT n, p::jsonb, v FROM unnest($1::text[], $2::text[], $3::bigint[])"
            "   AS r(n, p, v)"
            " ON CONFLICT (name) DO UPDATE SET properties = excluded.properties,"
            "   version = excluded.version WHERE excluded.version >= t.version",
            [p.name for p in batch.pipelines],
            [json_dumps(p.properties) for p in batch.pipelines],
            [p.version for p in batch.pipelines],
        )
    if batch.stages:
        await conn.execute(
            "INSERT INTO stages AS t (pipeline, name, properties, version)"
            " SELECT l, n, p::jsonb, v"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS r(l, n, p, v)"
            " ON CONFLICT (pipeline, name) DO UPDATE SET properties = excluded.properties,"
            "   version = excluded.version WHERE excluded.version >= t.version",
            [s.pipeline for s in batch.stages],
            [s.name for s in batch.stages],
            [json_dumps(s.properties) for s in batch.stages],
            [s.version for s in batch.stages],
        )
    if batch.artifacts:
        a = batch.artifacts
        await conn.execute(
            "INSERT INTO artifacts AS t (uri, type, name, display_name, metadata_id,"
            "   properties, custom_properties, create_time, version)"
            " SELECT u, ty, n, d, m, p::jsonb, c::jsonb, ct, v"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
            "   $6::text[], $7::text[], $8::bigint[], $9::bigint[])"
            "   AS r(u, ty, n, d, m, p, c, ct, v)"
            " ON CONFLICT (uri) DO UPDATE SET type = excluded.type, name = excluded.name,"
            "   display_name = excluded.display_name, metadata_id = excluded.metadata_id,"
            "   properties = excluded.properties, custom_properties = excluded.custom_properties,"
            "   create_time = excluded.create_time, version = excluded.version"
            " WHERE excluded.version >= t.version",
            [n.uri for n in a],
            [n.type for n in a],
            [n.name for n in a],
            [n.display_name for n in a],
            [n.metadata_id for n in a],
            [json_dumps(n.properties) for n in a],
            [json_dumps(n.custom_properties) for n in a],
            [n.create_time for n in a],
            [n.version for n in a],
        )
    if batch.executions:
        x = batch.executions
        await conn.execute(
            "INSERT INTO executions AS t (uuid, uuids, pipeline, stage, type, name,"
            "   display_name, metadata_id, properties, custom_properties, version)"
            " SELECT u, string_to_array(us, ','), l, s, ty, n, d, m, p::jsonb, c::jsonb, v"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
            "   $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[])"
            "   AS r(u, us, l, s, ty, n, d, m, p, c, v)"
            " ON CONFLICT (pipeline, uuid) DO UPDATE SET uuids = excluded.uuids,"
            "   stage = excluded.stage, type = excluded.type,"
            "   name = excluded.name, display_name = excluded.display_name,"
            "   metadata_id = excluded.metadata_id, properties = excluded.properties,"
            "   custom_properties = excluded.custom_properties, version = excluded.version"
            " WHERE excluded.version >= t.version",
            [n.uuid for n in x],
            [",".join(n.uuids) for n in x],
            [n.pipeline for n in x],
            [n.stage for n in x],
            [n.type for n in x],
            [n.name for n in x],
            [n.display_name for n in x],
            [n.metadata_id for n in x],
            [json_dumps(n.properties) for n in x],
            [json_dumps(n.custom_properties) for n in x],
            [n.version for n in x],
        )
    if batch.memberships:
        members = sorted(batch.memberships)
        await conn.execute(
            "INSERT INTO artifact_pipelines (uri, pipeline)"
            " SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            [m[0] for m in members],
            [m[1] for m in members],
        )
    if batch.edges:
        edges = sorted(batch.edges, key=lambda e: (e.execution, e.artifact, e.kind))
        await conn.execute(
            "INSERT INTO edges (execution, artifact, kind, pipeline)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[])"
            " ON CONFLICT DO NOTHING",
            [e.execution for e in edges],
            [e.artifact for e in edges],
            [e.kind for e in edges],
            [e.pipeline for e in edges],
        )
    if batch.blobs:
        # A blob is written once, so a later event only fills in a sha256 learnt since.
        await conn.execute(
            "INSERT INTO blobs AS t (digest, size, sha256)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])"
            " ON CONFLICT (digest) DO UPDATE SET size = excluded.size,"
            "   sha256 = coalesce(t.sha256, excluded.sha256)",
            [b.digest for b in batch.blobs],
            [b.size for b in batch.blobs],
            [b.sha256 for b in batch.blobs],
        )
