"""Lineage reads from the PostgreSQL graph: one set-based statement per question or hop.

A reader :meth:`~PostgresGraphReader.within` a pipeline prefix (the request's principal's,
``cmf_common.access``) adds the prefix to every statement: it sees the executions and edges of
pipelines whose names start with it, and the artifacts linked in one of them (each listing only
those pipelines). Without a prefix the statements are unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import asyncpg

from cmf_common.db import read_snapshot
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_lineage.graph_reader import (
    ArtifactInfo,
    ArtifactRecord,
    ExecutionInfo,
    ExecutionKey,
    ExecutionRecord,
    PipelineGraph,
    StoredBlob,
)

_ARTIFACT_COLUMNS = (
    "a.metadata_id, a.uri, a.type, a.name, a.display_name,"
    " ARRAY(SELECT m.pipeline FROM artifact_pipelines m WHERE m.uri = a.uri{inside}"
    "   ORDER BY m.pipeline) AS pipelines"
)
_ARTIFACT = _ARTIFACT_COLUMNS.format(inside="")
# Inside the prefix (``{p}`` its placeholder): an artifact linked in a pipeline inside it.
_ARTIFACT_INSIDE = (
    " AND EXISTS (SELECT 1 FROM artifact_pipelines v WHERE v.uri = a.uri"
    " AND starts_with(v.pipeline, {p}))"
)


def _artifact_columns(p: str | None) -> str:
    """The artifact's columns, its pipelines those inside the prefix ``p`` binds."""
    if p is None:
        return _ARTIFACT
    return _ARTIFACT_COLUMNS.format(inside=f" AND starts_with(m.pipeline, {p})")


def _inside(template: str, p: str | None) -> str:
    return "" if p is None else template.format(p=p)


_EXECUTION = "x.metadata_id, x.pipeline, x.uuid, x.stage, x.type, x.name, x.display_name"


def _artifact(r: Any) -> ArtifactInfo:
    return ArtifactInfo(
        r["metadata_id"], r["uri"], r["type"], r["name"], r["display_name"], tuple(r["pipelines"])
    )


def _execution(r: Any) -> ExecutionInfo:
    return ExecutionInfo(
        r["metadata_id"],
        r["pipeline"],
        r["uuid"],
        r["stage"],
        r["type"],
        r["name"],
        r["display_name"],
    )


class PostgresGraphReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.prefix: str | None = None

    def within(self, prefix: str) -> PostgresGraphReader:
        """This reader restricted to the pipelines whose names start with ``prefix``."""
        scoped = copy.copy(self)
        scoped.prefix = prefix
        return scoped

    def _args(self) -> tuple[str, ...]:
        return () if self.prefix is None else (self.prefix,)

    def _p(self, n: int) -> str | None:
        """The placeholder of the prefix when it is the ``n``-th parameter (None: no prefix)."""
        return None if self.prefix is None else f"${n}"

    async def _pipeline_known(self, conn: Any, pipeline: str) -> bool:
        inside = _inside(" AND starts_with(name, {p})", self._p(2))
        found = await conn.fetchval(
            f"SELECT 1 FROM pipelines WHERE name = $1{inside}",  # noqa: S608 (constant fragments)
            pipeline,
            *self._args(),
        )
        return found is not None

    async def graph_version(self, consumer: str) -> int:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT coalesce(sum(seq), 0)"
                "   + coalesce((SELECT applied FROM blob_progress WHERE consumer = $1), 0)"
                " FROM consumer_progress WHERE consumer = $1",
                consumer,
            )
        return int(value)

    async def stored_blobs(self, digests: Sequence[str]) -> dict[str, StoredBlob]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT digest, size, sha256 FROM blobs WHERE digest = ANY($1::text[])",
                list(digests),
            )
        return {r["digest"]: StoredBlob(r["size"], r["sha256"]) for r in rows}

    async def pipeline_graph(self, pipeline: str) -> PipelineGraph | None:
        async with read_snapshot(self.pool) as conn:
            if not await self._pipeline_known(conn, pipeline):
                return None
            stages = await conn.fetch(
                "SELECT name FROM stages WHERE pipeline = $1 ORDER BY name", pipeline
            )
            executions = await conn.fetch(
                f"SELECT {_EXECUTION} FROM executions x WHERE x.pipeline = $1",  # noqa: S608
                pipeline,
            )
            edges = await conn.fetch(
                "SELECT execution, artifact, kind FROM edges WHERE pipeline = $1", pipeline
            )
            artifacts = await conn.fetch(
                f"SELECT {_artifact_columns(self._p(2))} FROM artifacts a"  # noqa: S608 (constants)
                " WHERE a.uri IN (SELECT artifact FROM edges WHERE pipeline = $1)",
                pipeline,
                *self._args(),
            )
        return PipelineGraph(
            name=pipeline,
            stages=[r["name"] for r in stages],
            executions=[_execution(r) for r in executions],
            artifacts=[_artifact(r) for r in artifacts],
            edges=[(r["execution"], r["artifact"], r["kind"]) for r in edges],
        )

    async def execution_dag(
        self, pipeline: str
    ) -> tuple[list[ExecutionInfo], list[tuple[str, str]]] | None:
        async with read_snapshot(self.pool) as conn:
            if not await self._pipeline_known(conn, pipeline):
                return None
            executions = await conn.fetch(
                f"SELECT {_EXECUTION} FROM executions x WHERE x.pipeline = $1",  # noqa: S608
                pipeline,
            )
            pairs = await conn.fetch(
                "SELECT DISTINCT i.execution AS child, o.execution AS parent"
                " FROM edges i"
                " JOIN edges o ON o.artifact = i.artifact AND o.kind = 4"
                "   AND o.pipeline = i.pipeline"
                " JOIN artifacts a ON a.uri = i.artifact"
                " JOIN executions xi ON xi.pipeline = i.pipeline AND xi.uuid = i.execution"
                " JOIN executions xo ON xo.pipeline = o.pipeline AND xo.uuid = o.execution"
                " WHERE i.pipeline = $1 AND i.kind = 3",
                pipeline,
            )
        return [_execution(r) for r in executions], [(r["child"], r["parent"]) for r in pairs]

    async def artifact_by_id(self, metadata_id: int) -> ArtifactInfo | None:
        async with self.pool.acquire() as conn:
            p = self._p(2)
            row = await conn.fetchrow(
                f"SELECT {_artifact_columns(p)} FROM artifacts a WHERE a.metadata_id = $1"  # noqa: S608 (constant column lists)
                f"{_inside(_ARTIFACT_INSIDE, p)} ORDER BY a.uri LIMIT 1",
                metadata_id,
                *self._args(),
            )
        return _artifact(row) if row is not None else None

    async def artifact_by_uri(self, uri: str) -> ArtifactInfo | None:
        async with self.pool.acquire() as conn:
            p = self._p(2)
            row = await conn.fetchrow(
                f"SELECT {_artifact_columns(p)} FROM artifacts a WHERE a.uri = $1"  # noqa: S608 (constant column lists)
                f"{_inside(_ARTIFACT_INSIDE, p)}",
                uri,
                *self._args(),
            )
        return _artifact(row) if row is not None else None

    async def executions_by_uuid(self, uuid: str) -> list[ExecutionInfo]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_EXECUTION} FROM executions x WHERE x.uuid = $1"  # noqa: S608 (constant column lists)
                f"{_inside(' AND starts_with(x.pipeline, {p})', self._p(2))} ORDER BY x.pipeline",
                uuid,
                *self._args(),
            )
        return [_execution(r) for r in rows]

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT e.artifact, {_EXECUTION} FROM edges e"  # noqa: S608 (constant column lists)
                " JOIN executions x ON x.pipeline = e.pipeline AND x.uuid = e.execution"
                " WHERE e.artifact = ANY($1::text[]) AND e.kind = $2"
                f"{_inside(' AND starts_with(e.pipeline, {p})', self._p(3))}",
                list(uris),
                kind,
                *self._args(),
            )
        return [(r["artifact"], _execution(r)) for r in rows]

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]:
        async with self.pool.acquire() as conn:
            p = self._p(4)
            rows = await conn.fetch(
                f"SELECT e.pipeline AS edge_pipeline, e.execution, {_artifact_columns(p)}"  # noqa: S608 (constant column lists)
                " FROM unnest($1::text[], $2::text[]) AS k(p, u)"
                " JOIN edges e ON e.pipeline = k.p AND e.execution = k.u AND e.kind = $3"
                f"{_inside(' AND starts_with(e.pipeline, {p})', p)}"
                " JOIN artifacts a ON a.uri = e.artifact",
                [k[0] for k in keys],
                [k[1] for k in keys],
                kind,
                *self._args(),
            )
        return [((r["edge_pipeline"], r["execution"]), _artifact(r)) for r in rows]

    async def artifact_records(
        self,
        *,
        uris: Sequence[str] = (),
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
    ) -> list[ArtifactRecord]:
        p = self._p(4)
        columns = (
            f"{_artifact_columns(p)}, a.create_time, a.version, a.properties, a.custom_properties"
        )
        inside = _inside(_ARTIFACT_INSIDE, p)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                # One index lookup per selector; UNION drops an artifact two of them select.
                f"SELECT {columns} FROM artifacts a WHERE a.uri = ANY($1::text[]){inside}"  # noqa: S608 (constant column lists)
                f" UNION SELECT {columns} FROM artifacts a"
                f"   WHERE a.metadata_id = ANY($2::bigint[]){inside}"
                f" UNION SELECT {columns} FROM artifacts a WHERE a.name = ANY($3::text[]){inside}"
                " ORDER BY metadata_id, uri",
                list(uris),
                list(ids),
                list(names),
                *self._args(),
            )
        return [
            ArtifactRecord(
                _artifact(r),
                r["create_time"],
                r["version"],
                r["properties"],
                r["custom_properties"],
            )
            for r in rows
        ]

    async def execution_records(self, ids: Sequence[int]) -> list[ExecutionRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_EXECUTION}, x.properties, x.custom_properties FROM executions x"  # noqa: S608 (constant column lists)
                " WHERE x.metadata_id = ANY($1::bigint[])"
                f"{_inside(' AND starts_with(x.pipeline, {p})', self._p(2))}"
                " ORDER BY x.metadata_id, x.pipeline",
                list(ids),
                *self._args(),
            )
        return [
            ExecutionRecord(_execution(r), r["properties"], r["custom_properties"]) for r in rows
        ]

    async def linked_artifacts(self, uris: Sequence[str], *, upstream: bool) -> list[str]:
        # Upstream: into an artifact come the OUTPUT edges of what wrote it, into those
        # executions the INPUT edges of what they read; downstream the other way round.
        # UNION keeps each artifact once, so the walk ends however the graph loops.
        into, out = (OUTPUT, INPUT) if upstream else (INPUT, OUTPUT)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "WITH RECURSIVE walk(uri) AS ("  # noqa: S608 (constant edge kinds)
                "   SELECT unnest($1::text[])"
                " UNION"
                "   SELECT n.artifact FROM walk w"
                f"  JOIN edges e ON e.artifact = w.uri AND e.kind = {into}"
                f"{_inside(' AND starts_with(e.pipeline, {p})', self._p(2))}"
                "   JOIN edges n ON n.pipeline = e.pipeline AND n.execution = e.execution"
                f"   AND n.kind = {out}"
                " )"
                " SELECT uri FROM walk WHERE uri <> ALL($1::text[])",
                list(uris),
                *self._args(),
            )
        return [r["uri"] for r in rows]

    async def upstream_edges(
        self, root: ArtifactInfo | ExecutionInfo, hops: int, limit: int
    ) -> list[tuple[ExecutionInfo, ArtifactInfo, int]] | None:
        is_artifact = isinstance(root, ArtifactInfo)
        key = root.uri if isinstance(root, ArtifactInfo) else root.uuid
        pipeline = "" if isinstance(root, ArtifactInfo) else root.pipeline
        p = self._p(6)
        inside = _inside(" AND starts_with(e.pipeline, {p})", p)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                # Walk the nodes (an artifact to what wrote it, an execution to what it read),
                # then take the edges into each node the walk expanded (fewer than $4 hops away).
                "WITH RECURSIVE walk(is_artifact, pipeline, key, hop) AS ("  # noqa: S608
                "   SELECT $1::bool, $2::text, $3::text, 0"
                " UNION"
                "   SELECT NOT w.is_artifact, CASE WHEN w.is_artifact THEN e.pipeline ELSE '' END,"
                "     CASE WHEN w.is_artifact THEN e.execution ELSE e.artifact END, w.hop + 1"
                "   FROM walk w JOIN edges e"
                f"    ON (w.is_artifact AND e.artifact = w.key AND e.kind = {OUTPUT})"
                "     OR (NOT w.is_artifact AND e.pipeline = w.pipeline AND e.execution = w.key"
                f"        AND e.kind = {INPUT})"
                f"   WHERE w.hop < $4 - 1{inside}"
                "), expanded AS (SELECT DISTINCT is_artifact, pipeline, key FROM walk),"
                " crossed AS ("
                "   SELECT e.pipeline, e.execution, e.artifact, e.kind FROM expanded w JOIN edges e"
                f"    ON (w.is_artifact AND e.artifact = w.key AND e.kind = {OUTPUT})"
                "     OR (NOT w.is_artifact AND e.pipeline = w.pipeline AND e.execution = w.key"
                f"        AND e.kind = {INPUT})"
                f"   WHERE (SELECT count(*) FROM expanded) <= $5{inside}"
                " )"
                " SELECT c.kind, x.metadata_id AS x_id, x.pipeline, x.uuid, x.stage,"
                "   x.type AS x_type, x.name AS x_name, x.display_name AS x_display,"
                f"  {_artifact_columns(p)}"
                " FROM crossed c"
                " JOIN executions x ON x.pipeline = c.pipeline AND x.uuid = c.execution"
                " JOIN artifacts a ON a.uri = c.artifact"
                " UNION ALL SELECT -1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
                "   NULL, NULL, NULL FROM expanded HAVING count(*) > $5",
                is_artifact,
                pipeline,
                key,
                hops,
                limit,
                *self._args(),
            )
        if any(r["kind"] == -1 for r in rows):
            return None
        return [
            (
                ExecutionInfo(
                    r["x_id"],
                    r["pipeline"],
                    r["uuid"],
                    r["stage"],
                    r["x_type"],
                    r["x_name"],
                    r["x_display"],
                ),
                _artifact(r),
                int(r["kind"]),
            )
            for r in rows
        ]
