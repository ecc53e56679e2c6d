"""What the lineage answers read from the graph, whatever store holds it: the read models
(an artifact, an execution, a pipeline's part of the graph) and the port the stores implement,
:class:`GraphReader` (``store/postgres_reads.py``, ``store/neo4j_reads.py``): a pipeline's nodes
and edges or its execution DAG, one traversal hop for a frontier of nodes, an upstream
neighbourhood in one statement. Both stores feed the same answering code (:mod:`trees`,
:mod:`display`, :mod:`walk`), so they answer alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cmf_common.metadata_events import INPUT, OUTPUT

ExecutionKey = tuple[str, str]  # (pipeline, uuid)


@dataclass(frozen=True)
class ArtifactInfo:
    metadata_id: int
    uri: str
    type: str
    name: str
    display_name: str
    pipelines: tuple[str, ...]


@dataclass(frozen=True)
class ExecutionInfo:
    metadata_id: int
    pipeline: str
    uuid: str
    stage: str
    type: str
    name: str
    display_name: str

    @property
    def key(self) -> ExecutionKey:
        return (self.pipeline, self.uuid)


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact with all the graph keeps of it: what CMFQuery's records are made of."""

    info: ArtifactInfo
    create_time: int
    last_update_time: int
    properties: dict[str, Any]
    custom_properties: dict[str, Any]


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution with its properties."""

    info: ExecutionInfo
    properties: dict[str, Any]
    custom_properties: dict[str, Any]


@dataclass(frozen=True)
class StoredBlob:
    """A blob the artifact service holds (``cmf.artifacts.blob.stored.v1``): the artifact whose
    uri is its digest is stored. ``sha256`` is ``None`` for one it found in its store."""

    size: int
    sha256: str | None


@dataclass(frozen=True)
class PipelineGraph:
    """One pipeline's part of the graph: its stages, executions, the artifacts they touch and
    the edges recorded under this pipeline (an artifact shared with another pipeline brings
    none of that pipeline's edges)."""

    name: str
    stages: list[str]
    executions: list[ExecutionInfo]
    artifacts: list[ArtifactInfo]
    edges: list[tuple[str, str, int]]  # (execution uuid, artifact uri, kind)


class GraphReader(Protocol):
    """What the lineage answers read from a graph store (PostgreSQL or Neo4j).

    ``within(prefix)`` is the same reader restricted to the pipelines whose names start with
    ``prefix`` (the request's principal's, ``cmf_common.access``): each of its questions keeps
    to their executions and edges and to the artifacts linked in them, in the store's query.
    """

    def within(self, prefix: str) -> GraphReader: ...

    async def graph_version(self, consumer: str) -> int:
        """A number that grows with every batch ``consumer`` applies (the cache key)."""
        ...

    async def stored_blobs(self, digests: Sequence[str]) -> dict[str, StoredBlob]:
        """The blobs among ``digests`` (artifact uris) that are stored, by digest."""
        ...

    async def pipeline_graph(self, pipeline: str) -> PipelineGraph | None:
        """``None`` when the pipeline is not in the graph."""
        ...

    async def execution_dag(
        self, pipeline: str
    ) -> tuple[list[ExecutionInfo], list[tuple[str, str]]] | None:
        """The pipeline's executions and (child, parent) uuid pairs, a parent being an execution
        of this pipeline that wrote something the child read; ``None`` for an unknown pipeline."""
        ...

    async def artifact_by_id(self, metadata_id: int) -> ArtifactInfo | None: ...

    async def artifact_by_uri(self, uri: str) -> ArtifactInfo | None: ...

    async def executions_by_uuid(self, uuid: str) -> list[ExecutionInfo]: ...

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]:
        """(uri, execution) for each edge of ``kind`` between the artifacts and an execution:
        OUTPUT gives the executions that produced them, INPUT those that read them."""
        ...

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]:
        """(execution key, artifact) for each edge of ``kind``: INPUT gives what the
        executions read, OUTPUT what they wrote."""
        ...

    async def artifact_records(
        self,
        *,
        uris: Sequence[str] = (),
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
    ) -> list[ArtifactRecord]:
        """The artifacts with any of these uris, server ids or names, in server id order (then
        uri)."""
        ...

    async def execution_records(self, ids: Sequence[int]) -> list[ExecutionRecord]:
        """The executions with these server ids, in server id order."""
        ...

    async def linked_artifacts(self, uris: Sequence[str], *, upstream: bool) -> list[str]:
        """In one query, every artifact a walk from ``uris`` reaches, however far: upstream
        from an artifact to the inputs of what wrote it, downstream to the outputs of what read
        it; the starting artifacts are not among them."""
        ...

    async def upstream_edges(
        self, root: ArtifactInfo | ExecutionInfo, hops: int, limit: int
    ) -> list[tuple[ExecutionInfo, ArtifactInfo, int]] | None:
        """In one query, every edge an upstream walk of ``hops`` hops from ``root`` crosses
        (those into the nodes fewer than ``hops`` hops away); ``None`` beyond ``limit`` nodes."""
        ...


def edge_maps(
    graph: PipelineGraph,
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """inputs (execution -> uris), producers (uri -> executions), readers (uri -> executions),
    each over this pipeline's edges between nodes the graph holds, each list in server id
    order of what it holds."""
    executions = {x.uuid: x.metadata_id for x in graph.executions}
    artifacts = {a.uri: a.metadata_id for a in graph.artifacts}
    inputs: dict[str, list[str]] = defaultdict(list)
    producers: dict[str, list[str]] = defaultdict(list)
    readers: dict[str, list[str]] = defaultdict(list)
    known = [e for e in set(graph.edges) if e[0] in executions and e[1] in artifacts]
    known.sort(key=lambda e: (executions[e[0]], e[0], artifacts[e[1]], e[1], e[2]))
    for execution, uri, kind in known:
        if kind == INPUT:
            inputs[execution].append(uri)
            readers[uri].append(execution)
        elif kind == OUTPUT:
            producers[uri].append(execution)
    return inputs, producers, readers


async def linked_by_hops(graph: GraphReader, uris: Sequence[str], *, upstream: bool) -> list[str]:
    """:meth:`GraphReader.linked_artifacts` one hop at a time, each hop one set-based question
    of ``graph`` (for a store whose single-statement walk cannot keep to a pipeline prefix:
    each hop's question does)."""
    into, out = (OUTPUT, INPUT) if upstream else (INPUT, OUTPUT)
    seen_artifacts, seen_executions = set(uris), set[ExecutionKey]()
    frontier: list[str] = list(dict.fromkeys(uris))
    found: list[str] = []
    while frontier:
        keys: list[ExecutionKey] = []
        for _, execution in await graph.executions_of_artifacts(frontier, into):
            if execution.key not in seen_executions:
                seen_executions.add(execution.key)
                keys.append(execution.key)
        frontier = []
        for _, artifact in await graph.artifacts_of_executions(keys, out) if keys else []:
            if artifact.uri not in seen_artifacts:
                seen_artifacts.add(artifact.uri)
                frontier.append(artifact.uri)
        found += frontier
    return found


async def upstream_by_hops(
    graph: GraphReader, root: ArtifactInfo | ExecutionInfo, hops: int, limit: int
) -> list[tuple[ExecutionInfo, ArtifactInfo, int]] | None:
    """:meth:`GraphReader.upstream_edges` one hop at a time (as :func:`linked_by_hops`): the
    edges into every node fewer than ``hops`` hops upstream of ``root`` (``root`` itself
    always), ``None`` when more than ``limit`` nodes are that near."""
    artifacts: dict[str, ArtifactInfo] = {}
    executions: dict[ExecutionKey, ExecutionInfo] = {}
    uris: list[str] = []
    keys: list[ExecutionKey] = []
    if isinstance(root, ArtifactInfo):
        artifacts[root.uri] = root
        uris.append(root.uri)
    else:
        executions[root.key] = root
        keys.append(root.key)
    expanded, last = 1, max(0, hops - 1)
    edges: list[tuple[ExecutionInfo, ArtifactInfo, int]] = []
    for depth in range(last + 1):
        next_uris: list[str] = []
        next_keys: list[ExecutionKey] = []
        for uri, execution in await graph.executions_of_artifacts(uris, OUTPUT) if uris else []:
            edges.append((execution, artifacts[uri], OUTPUT))
            if execution.key not in executions:
                executions[execution.key] = execution
                next_keys.append(execution.key)
        for key, artifact in await graph.artifacts_of_executions(keys, INPUT) if keys else []:
            edges.append((executions[key], artifact, INPUT))
            if artifact.uri not in artifacts:
                artifacts[artifact.uri] = artifact
                next_uris.append(artifact.uri)
        if depth == last or not (next_uris or next_keys):
            break
        expanded += len(next_uris) + len(next_keys)
        if expanded > limit:
            return None
        uris, keys = next_uris, next_keys
    return edges
