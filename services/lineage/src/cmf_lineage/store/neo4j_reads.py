"""Lineage reads from the Neo4j graph: one Cypher statement per question or hop.

Each statement answers in one record of collected lists: the Python driver spends far more on
a record than on a value (3,000 records take ~250 ms to decode, the same values collected into
one record ~20 ms). Nodes a relationship ``MERGE`` created before their own event arrived carry
no ``version``; they are not in the graph yet, as in PostgreSQL, where such rows do not exist.

A reader :meth:`~Neo4jGraphReader.within` a pipeline prefix adds it to every statement (an
execution's ``pipeline``, an artifact's ``pipelines``); its walks go one set-based hop at a
time (``cmf_lineage.graph_reader.linked_by_hops``), each hop kept inside the prefix, where the
variable-length pattern could not be. Without a prefix the statements are unchanged.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from typing import Any

from neo4j import Query
from neo4j.exceptions import ClientError

from cmf_common.errors import Unavailable
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_lineage.graph_reader import (
    ArtifactInfo,
    ArtifactRecord,
    ExecutionInfo,
    ExecutionKey,
    ExecutionRecord,
    PipelineGraph,
    StoredBlob,
    linked_by_hops,
    upstream_by_hops,
)
from cmf_lineage.store.neo4j_client import Neo4jClient

# Pipeline-wide reads look executions up by pipeline alone.
SCHEMA = (
    "CREATE INDEX cmf_execution_pipeline IF NOT EXISTS FOR (n:Execution) ON (n.pipeline)",
    # CMFQuery's questions name an artifact by its name and an execution by its server id.
    "CREATE INDEX cmf_artifact_name IF NOT EXISTS FOR (n:Artifact) ON (n.name)",
    "CREATE INDEX cmf_execution_metadata_id IF NOT EXISTS FOR (n:Execution) ON (n.metadata_id)",
)
# The longest walk CMFQuery's ancestors and descendants take, in relationships (two a step).
MAX_WALK = 10_000
# A read the server has not answered by then is abandoned (503) rather than left to hold a
# core of the graph server: no question these statements answer takes a second when planned well.
READ_TIMEOUT_S = 30.0

_ARTIFACT = "[a.metadata_id, a.uri, a.type, a.name, a.display_name, coalesce(a.pipelines, [])]"
# Inside a prefix (``$prefix``): its pipelines those inside; an artifact linked in one of them,
# an execution of one of them.
_ARTIFACT_INSIDE_COLUMNS = (
    "[a.metadata_id, a.uri, a.type, a.name, a.display_name,"
    " [q IN coalesce(a.pipelines, []) WHERE q STARTS WITH $prefix]]"
)
_ARTIFACT_INSIDE = " AND any(q IN coalesce(a.pipelines, []) WHERE q STARTS WITH $prefix)"
_EXECUTION_INSIDE = " AND x.pipeline STARTS WITH $prefix"
_EXECUTION = "[x.metadata_id, x.pipeline, x.uuid, x.stage, x.type, x.name, x.display_name]"
_KIND = {"INPUT": INPUT, "OUTPUT": OUTPUT}


_PIPELINE_FOUND = "MATCH (n:Pipeline {name: $p}) WHERE n.version IS NOT NULL RETURN count(n) AS n"
_PIPELINE_EXECUTIONS = (
    "MATCH (x:Execution {pipeline: $p}) WHERE x.version IS NOT NULL"
    f" RETURN collect({_EXECUTION}) AS rows"
)


def _artifact(r: list[Any]) -> ArtifactInfo:
    return ArtifactInfo(int(r[0]), r[1], r[2], r[3], r[4], tuple(sorted(r[5])))


def _execution(r: list[Any]) -> ExecutionInfo:
    return ExecutionInfo(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6])


class Neo4jGraphReader(Neo4jClient):
    schema = SCHEMA
    prefix: str | None = None

    def within(self, prefix: str) -> Neo4jGraphReader:
        """This reader restricted to the pipelines whose names start with ``prefix``."""
        scoped = copy.copy(self)
        scoped.prefix = prefix
        return scoped

    def _a(self) -> str:
        """The artifact's columns (its pipelines those inside the prefix)."""
        return _ARTIFACT if self.prefix is None else _ARTIFACT_INSIDE_COLUMNS

    def _inside(self, fragment: str) -> str:
        return "" if self.prefix is None else fragment

    async def _one(self, query: str, **params: Any) -> Any:
        """The single record ``query`` answers (its aggregates make one even when empty)."""
        async with self.driver.session(database=self.database) as session:
            try:
                result = await session.run(
                    Query(query, timeout=READ_TIMEOUT_S), **params, prefix=self.prefix
                )
                return await result.single()
            except ClientError as exc:
                if "TransactionTimedOut" not in (exc.code or ""):
                    raise
                raise Unavailable(
                    f"the lineage graph did not answer within {READ_TIMEOUT_S:g} s; retry later",
                    retry_after_s=5,
                ) from exc

    async def _together(self, queries: list[str], **params: Any) -> list[Any]:
        """The single records of ``queries``, run at once, each in a session of its own: the
        server answers them on as many cores as it has, where one session would queue them.
        They are separate auto-commit reads either way (no shared snapshot was lost)."""
        return list(await asyncio.gather(*(self._one(q, **params) for q in queries)))

    def _pipeline_found(self) -> str:
        if self.prefix is None:
            return _PIPELINE_FOUND
        return _PIPELINE_FOUND.replace(" RETURN", " AND n.name STARTS WITH $prefix RETURN")

    async def graph_version(self, consumer: str) -> int:
        record = await self._one(
            # properties(b)[...]: until the first blob event no node has ``applied``, and
            # ``b.applied`` would make Neo4j warn of an unknown property key on every read.
            "OPTIONAL MATCH (b:BlobProgress {consumer: $consumer})"
            " WITH coalesce(properties(b)['applied'], 0) AS blobs"
            " OPTIONAL MATCH (p:Progress {consumer: $consumer})"
            " WITH blobs, coalesce(sum(p.seq), 0) AS seqs RETURN blobs + seqs AS v",
            consumer=consumer,
        )
        return int(record["v"]) if record is not None else 0

    async def stored_blobs(self, digests: Sequence[str]) -> dict[str, StoredBlob]:
        record = await self._one(
            "UNWIND $digests AS d MATCH (b:Blob {digest: d})"
            " RETURN collect([b.digest, b.size, b.sha256]) AS rows",
            digests=list(digests),
        )
        rows = record["rows"] if record is not None else []
        return {r[0]: StoredBlob(int(r[1]), r[2]) for r in rows}

    async def pipeline_graph(self, pipeline: str) -> PipelineGraph | None:
        found, stages, executions, linked = await self._together(
            [
                self._pipeline_found(),
                "MATCH (s:Stage {pipeline: $p}) WHERE s.version IS NOT NULL"
                " RETURN collect(s.name) AS rows",
                _PIPELINE_EXECUTIONS,
                "MATCH (x:Execution {pipeline: $p})-[r:INPUT|OUTPUT]-(a:Artifact)"
                " WITH collect([x.uuid, a.uri, type(r)]) AS edges,"
                "   collect(DISTINCT CASE WHEN a.version IS NOT NULL THEN a END) AS known"
                f" RETURN edges, [a IN known | {self._a()}] AS artifacts",
            ],
            p=pipeline,
        )
        if found is None or not found["n"]:
            return None
        return PipelineGraph(
            name=pipeline,
            stages=sorted(stages["rows"]),
            executions=[_execution(r) for r in executions["rows"]],
            artifacts=[_artifact(r) for r in linked["artifacts"]],
            edges=[(r[0], r[1], _KIND[r[2]]) for r in linked["edges"]],
        )

    async def execution_dag(
        self, pipeline: str
    ) -> tuple[list[ExecutionInfo], list[tuple[str, str]]] | None:
        found, executions, pairs = await self._together(
            [
                self._pipeline_found(),
                _PIPELINE_EXECUTIONS,
                "MATCH (y:Execution {pipeline: $p})-[:OUTPUT]->(a:Artifact)"
                "   -[:INPUT]->(x:Execution {pipeline: $p})"
                " WHERE x.version IS NOT NULL AND y.version IS NOT NULL"
                "   AND a.version IS NOT NULL"
                " RETURN collect(DISTINCT [x.uuid, y.uuid]) AS rows",
            ],
            p=pipeline,
        )
        if found is None or not found["n"]:
            return None
        return (
            [_execution(r) for r in executions["rows"]],
            [(r[0], r[1]) for r in pairs["rows"]],
        )

    async def artifact_by_id(self, metadata_id: int) -> ArtifactInfo | None:
        record = await self._one(
            "MATCH (a:Artifact {metadata_id: $id}) WHERE a.version IS NOT NULL"
            f"{self._inside(_ARTIFACT_INSIDE)}"
            f" WITH a ORDER BY a.uri RETURN collect({self._a()})[0] AS a",
            id=metadata_id,
        )
        return _artifact(record["a"]) if record is not None and record["a"] else None

    async def artifact_by_uri(self, uri: str) -> ArtifactInfo | None:
        record = await self._one(
            "MATCH (a:Artifact {uri: $uri}) WHERE a.version IS NOT NULL"
            f"{self._inside(_ARTIFACT_INSIDE)} RETURN collect({self._a()})[0] AS a",
            uri=uri,
        )
        return _artifact(record["a"]) if record is not None and record["a"] else None

    async def executions_by_uuid(self, uuid: str) -> list[ExecutionInfo]:
        record = await self._one(
            "MATCH (x:Execution {uuid: $uuid}) WHERE x.version IS NOT NULL"
            f"{self._inside(_EXECUTION_INSIDE)} WITH x ORDER BY x.pipeline"
            f" RETURN collect({_EXECUTION}) AS rows",
            uuid=uuid,
        )
        return [_execution(r) for r in record["rows"]] if record is not None else []

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]:
        pattern = "(a)-[:INPUT]->(x:Execution)" if kind == INPUT else "(a)<-[:OUTPUT]-(x:Execution)"
        record = await self._one(
            f"UNWIND $uris AS u MATCH (a:Artifact {{uri: u}}) MATCH {pattern}"
            f" WHERE x.version IS NOT NULL{self._inside(_EXECUTION_INSIDE)}"
            f" RETURN collect([u, {_EXECUTION}]) AS rows",
            uris=list(uris),
        )
        return [(r[0], _execution(r[1])) for r in record["rows"]] if record is not None else []

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]:
        pattern = "(a:Artifact)-[:INPUT]->(x)" if kind == INPUT else "(x)-[:OUTPUT]->(a:Artifact)"
        record = await self._one(
            "UNWIND $keys AS k MATCH (x:Execution {pipeline: k[0], uuid: k[1]})"
            f" MATCH {pattern} WHERE a.version IS NOT NULL{self._inside(_EXECUTION_INSIDE)}"
            f" RETURN collect([k[0], k[1], {self._a()}]) AS rows",
            keys=[list(k) for k in keys],
        )
        if record is None:
            return []
        return [((r[0], r[1]), _artifact(r[2])) for r in record["rows"]]

    async def artifact_records(
        self,
        *,
        uris: Sequence[str] = (),
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
    ) -> list[ArtifactRecord]:
        record = await self._one(
            # One index lookup per selector, then each artifact once.
            "CALL () {"
            "   UNWIND $uris AS k MATCH (a:Artifact {uri: k}) RETURN a"
            "   UNION UNWIND $ids AS k MATCH (a:Artifact {metadata_id: k}) RETURN a"
            "   UNION UNWIND $names AS k MATCH (a:Artifact {name: k}) RETURN a"
            " }"
            f" WITH a WHERE a.version IS NOT NULL{self._inside(_ARTIFACT_INSIDE)}"
            " WITH a ORDER BY a.metadata_id, a.uri"
            f" RETURN collect([{self._a()}, a.create_time, a.version, a.properties,"
            "   a.custom_properties]) AS rows",
            uris=list(uris),
            ids=list(ids),
            names=list(names),
        )
        if record is None:
            return []
        return [
            ArtifactRecord(
                _artifact(r[0]), int(r[1]), int(r[2]), json.loads(r[3]), json.loads(r[4])
            )
            for r in record["rows"]
        ]

    async def execution_records(self, ids: Sequence[int]) -> list[ExecutionRecord]:
        record = await self._one(
            "UNWIND $ids AS k MATCH (x:Execution {metadata_id: k}) WHERE x.version IS NOT NULL"
            f"{self._inside(_EXECUTION_INSIDE)} WITH DISTINCT x ORDER BY x.metadata_id, x.pipeline"
            f" RETURN collect([{_EXECUTION}, x.properties, x.custom_properties]) AS rows",
            ids=list(ids),
        )
        if record is None:
            return []
        return [
            ExecutionRecord(_execution(r[0]), json.loads(r[1]), json.loads(r[2]))
            for r in record["rows"]
        ]

    async def linked_artifacts(self, uris: Sequence[str], *, upstream: bool) -> list[str]:
        if self.prefix is not None:
            return await linked_by_hops(self, uris, upstream=upstream)
        # Upstream is against the edges' direction (an artifact <-OUTPUT- its writer <-INPUT-
        # what it read), downstream along it. With DISTINCT end nodes Neo4j walks the
        # variable-length pattern breadth first, each node once, without enumerating paths.
        # The end node is labelled only after DISTINCT: labelled in the pattern, a small
        # graph's statistics let the planner pair every root with every artifact and expand
        # "into" each pair, enumerating every path (a 25-step chain then ran for minutes).
        pattern = (
            f"(root)<-[:INPUT|OUTPUT*1..{MAX_WALK}]-(n)"
            if upstream
            else f"(root)-[:INPUT|OUTPUT*1..{MAX_WALK}]->(n)"
        )
        record = await self._one(
            f"UNWIND $uris AS u MATCH (root:Artifact {{uri: u}}) MATCH {pattern}"
            " WITH DISTINCT n WHERE n:Artifact AND NOT n.uri IN $uris"
            " RETURN collect(n.uri) AS uris",
            uris=list(uris),
        )
        return list(record["uris"]) if record is not None else []

    async def upstream_edges(
        self, root: ArtifactInfo | ExecutionInfo, hops: int, limit: int
    ) -> list[tuple[ExecutionInfo, ArtifactInfo, int]] | None:
        if self.prefix is not None:
            return await upstream_by_hops(self, root, hops, limit)
        # Upstream is against the edges' direction: into an artifact come the OUTPUT edges of
        # what wrote it, into an execution the INPUT edges of what it read. With DISTINCT end
        # nodes Neo4j walks the variable-length pattern breadth first, without enumerating paths.
        start = (
            "MATCH (root:Artifact {uri: $key})"
            if isinstance(root, ArtifactInfo)
            else "MATCH (root:Execution {pipeline: $pipeline, uuid: $key})"
        )
        record = await self._one(
            f"{start} MATCH (root)<-[:INPUT|OUTPUT*0..{max(0, int(hops) - 1)}]-(n)"
            " WITH DISTINCT n LIMIT $limit"
            " WITH collect(n) AS expanded"
            " UNWIND expanded AS n"
            " MATCH (n)<-[r:INPUT|OUTPUT]-(m)"
            " WITH expanded, r, startNode(r) AS s, endNode(r) AS e"
            " WITH expanded, r, CASE WHEN s:Execution THEN s ELSE e END AS x,"
            "   CASE WHEN s:Artifact THEN s ELSE e END AS a"
            " WHERE x.version IS NOT NULL AND a.version IS NOT NULL"
            " RETURN size(expanded) AS size,"
            f"   collect([type(r), {_EXECUTION}, {_ARTIFACT}]) AS rows",
            key=root.uri if isinstance(root, ArtifactInfo) else root.uuid,
            pipeline=None if isinstance(root, ArtifactInfo) else root.pipeline,
            limit=limit + 1,
        )
        if record is None:  # nothing upstream: no edge matched, so no record
            return []
        if int(record["size"]) > limit:
            return None
        return [(_execution(r[1]), _artifact(r[2]), _KIND[r[0]]) for r in record["rows"]]
