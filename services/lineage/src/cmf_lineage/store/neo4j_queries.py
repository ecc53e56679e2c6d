"""Lineage reads from the Neo4j graph: one Cypher statement per question or hop.

Nodes a relationship ``MERGE`` created before their own event arrived carry no ``version``;
they are not in the graph yet, as in PostgreSQL, where such rows do not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neo4j import AsyncDriver

from cmf_lineage.graph import INPUT
from cmf_lineage.queries import ArtifactInfo, ExecutionInfo, ExecutionKey, PipelineGraph

# Pipeline-wide reads look executions up by pipeline alone.
SCHEMA = ("CREATE INDEX cmf_execution_pipeline IF NOT EXISTS FOR (n:Execution) ON (n.pipeline)",)

_ARTIFACT = (
    "{metadata_id: a.metadata_id, uri: a.uri, type: a.type, name: a.name,"
    " display_name: a.display_name, pipelines: coalesce(a.pipelines, [])}"
)
_EXECUTION = (
    "{metadata_id: x.metadata_id, pipeline: x.pipeline, uuid: x.uuid, stage: x.stage,"
    " type: x.type, name: x.name, display_name: x.display_name}"
)


def _artifact(r: Any) -> ArtifactInfo:
    return ArtifactInfo(
        int(r["metadata_id"]),
        r["uri"],
        r["type"],
        r["name"],
        r["display_name"],
        tuple(sorted(r["pipelines"])),
    )


def _execution(r: Any) -> ExecutionInfo:
    return ExecutionInfo(
        int(r["metadata_id"]),
        r["pipeline"],
        r["uuid"],
        r["stage"],
        r["type"],
        r["name"],
        r["display_name"],
    )


class Neo4jLineageQueries:
    def __init__(self, driver: AsyncDriver, database: str | None = None) -> None:
        self.driver = driver
        self.database = database

    async def setup(self) -> None:
        for statement in SCHEMA:
            await self._rows(statement)

    async def _rows(self, query: str, **params: Any) -> list[Any]:
        async with self.driver.session(database=self.database) as session:
            result = await session.run(query, **params)
            return [record async for record in result]

    async def graph_version(self, consumer: str) -> int:
        rows = await self._rows(
            "MATCH (p:Progress {consumer: $consumer}) RETURN coalesce(sum(p.seq), 0) AS v",
            consumer=consumer,
        )
        return int(rows[0]["v"]) if rows else 0

    async def pipeline_graph(self, pipeline: str) -> PipelineGraph | None:
        async with self.driver.session(database=self.database) as session:

            async def rows(query: str) -> list[Any]:
                result = await session.run(query, p=pipeline)
                return [record async for record in result]

            found = await rows(
                "MATCH (n:Pipeline {name: $p}) WHERE n.version IS NOT NULL RETURN 1 AS one"
            )
            if not found:
                return None
            stages = await rows(
                "MATCH (s:Stage {pipeline: $p}) WHERE s.version IS NOT NULL"
                " RETURN s.name AS name ORDER BY name"
            )
            executions = await rows(
                "MATCH (x:Execution {pipeline: $p}) WHERE x.version IS NOT NULL"
                f" RETURN {_EXECUTION} AS x"
            )
            edges = await rows(
                "MATCH (x:Execution {pipeline: $p})"
                " CALL (x) {"
                "   MATCH (a:Artifact)-[:INPUT]->(x) RETURN a.uri AS uri, 3 AS kind"
                "   UNION ALL MATCH (x)-[:OUTPUT]->(a:Artifact) RETURN a.uri AS uri, 4 AS kind"
                " }"
                " RETURN x.uuid AS x, uri, kind"
            )
            artifacts = await rows(
                "MATCH (x:Execution {pipeline: $p})-[:INPUT|OUTPUT]-(a:Artifact)"
                " WHERE a.version IS NOT NULL WITH DISTINCT a"
                f" RETURN {_ARTIFACT} AS a"
            )
        return PipelineGraph(
            name=pipeline,
            stages=[r["name"] for r in stages],
            executions=[_execution(r["x"]) for r in executions],
            artifacts=[_artifact(r["a"]) for r in artifacts],
            edges=[(r["x"], r["uri"], int(r["kind"])) for r in edges],
        )

    async def artifact_by_id(self, metadata_id: int) -> ArtifactInfo | None:
        rows = await self._rows(
            "MATCH (a:Artifact {metadata_id: $id}) WHERE a.version IS NOT NULL"
            f" RETURN {_ARTIFACT} AS a ORDER BY a.uri LIMIT 1",
            id=metadata_id,
        )
        return _artifact(rows[0]["a"]) if rows else None

    async def artifact_by_uri(self, uri: str) -> ArtifactInfo | None:
        rows = await self._rows(
            f"MATCH (a:Artifact {{uri: $uri}}) WHERE a.version IS NOT NULL RETURN {_ARTIFACT} AS a",
            uri=uri,
        )
        return _artifact(rows[0]["a"]) if rows else None

    async def executions_by_uuid(self, uuid: str) -> list[ExecutionInfo]:
        rows = await self._rows(
            "MATCH (x:Execution {uuid: $uuid}) WHERE x.version IS NOT NULL"
            f" RETURN {_EXECUTION} AS x ORDER BY x.pipeline",
            uuid=uuid,
        )
        return [_execution(r["x"]) for r in rows]

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]:
        pattern = "(a)-[:INPUT]->(x:Execution)" if kind == INPUT else "(a)<-[:OUTPUT]-(x:Execution)"
        rows = await self._rows(
            f"UNWIND $uris AS u MATCH (a:Artifact {{uri: u}}) MATCH {pattern}"
            f" WHERE x.version IS NOT NULL RETURN u, {_EXECUTION} AS x",
            uris=list(uris),
        )
        return [(r["u"], _execution(r["x"])) for r in rows]

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]:
        pattern = "(a:Artifact)-[:INPUT]->(x)" if kind == INPUT else "(x)-[:OUTPUT]->(a:Artifact)"
        rows = await self._rows(
            "UNWIND $keys AS k MATCH (x:Execution {pipeline: k[0], uuid: k[1]})"
            f" MATCH {pattern} WHERE a.version IS NOT NULL"
            f" RETURN k[0] AS p, k[1] AS u, {_ARTIFACT} AS a",
            keys=[list(k) for k in keys],
        )
        return [((r["p"], r["u"]), _artifact(r["a"])) for r in rows]
