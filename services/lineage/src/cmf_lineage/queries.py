"""Lineage questions answered from the graph, whatever store holds it.

The stores fetch (``LineageQueries``: a pipeline's nodes and edges or its execution DAG, one
traversal hop for a frontier of nodes, an upstream neighbourhood in one statement); this module
decides what an answer is: the reference's tangled trees (docs/wire-contract.md §1.5), an
artifact's or an execution's lineage within a depth and a node cap, and the UI's pipeline graph
at a level. Both stores feed the same code, so they answer alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from cmf_common.errors import Conflict, Invalid, NotFound
from cmf_common.metadata_events import INPUT, OUTPUT

# The reference hides these from its trees (its fixes #265/#275: "labels should not be visible").
HIDDEN_TYPES = frozenset({"Environment", "Label"})
MAX_DEPTH = 100
DEFAULT_DEPTH = 20
DEFAULT_MAX_NODES = 1_000
MAX_MAX_NODES = 10_000
# An upstream neighbourhood larger than this is walked hop by hop instead of fetched at once.
UPSTREAM_FETCH_LIMIT = 20_000

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
class PipelineGraph:
    """One pipeline's part of the graph: its stages, executions, the artifacts they touch and
    the edges recorded under this pipeline (an artifact shared with another pipeline brings
    none of that pipeline's edges)."""

    name: str
    stages: list[str]
    executions: list[ExecutionInfo]
    artifacts: list[ArtifactInfo]
    edges: list[tuple[str, str, int]]  # (execution uuid, artifact uri, kind)


class LineageQueries(Protocol):
    """What the lineage answers read from a graph store (PostgreSQL or Neo4j)."""

    async def graph_version(self, consumer: str) -> int:
        """A number that grows with every batch ``consumer`` applies (the cache key)."""
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

    async def upstream_edges(
        self, root: ArtifactInfo | ExecutionInfo, hops: int, limit: int
    ) -> list[tuple[ExecutionInfo, ArtifactInfo, int]] | None:
        """In one query, every edge an upstream walk of ``hops`` hops from ``root`` crosses
        (those into the nodes fewer than ``hops`` hops away); ``None`` beyond ``limit`` nodes."""
        ...


class Hops(Protocol):
    """One traversal hop for a frontier: the store itself, or edges it fetched at once."""

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]: ...

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]: ...


class FetchedHops:
    """Hops answered from edges fetched in one query (``LineageQueries.upstream_edges``)."""

    def __init__(self, edges: list[tuple[ExecutionInfo, ArtifactInfo, int]]) -> None:
        self.by_artifact: dict[tuple[str, int], list[ExecutionInfo]] = defaultdict(list)
        self.by_execution: dict[tuple[ExecutionKey, int], list[ArtifactInfo]] = defaultdict(list)
        for x, a, kind in set(edges):
            self.by_artifact[(a.uri, kind)].append(x)
            self.by_execution[(x.key, kind)].append(a)

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]:
        return [(u, x) for u in uris for x in self.by_artifact.get((u, kind), [])]

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]:
        return [(k, a) for k in keys for a in self.by_execution.get((k, kind), [])]


# ---------------------------------------------------------------------------------------------
# The reference's tangled trees: layered lists of {"id", "parents"} (docs/wire-contract.md §1.5)

TangledTree = list[list[dict[str, Any]]]


def layered(parents: dict[Hashable, list[Hashable]], names: dict[Hashable, str]) -> TangledTree:
    """The reference's layering: Kahn's topological order (roots in insertion order, children
    in the order their edges were added), then the nodes grouped by identical parent sets, the
    groups in the order their first node comes. Nodes on a cycle are left out, as there."""
    indegree = {node: 0 for node in parents}
    children: dict[Hashable, list[Hashable]] = defaultdict(list)
    for node, ups in parents.items():
        for up in ups:
            children[up].append(node)
            indegree[node] += 1
    ready = deque(node for node, degree in indegree.items() if degree == 0)
    ordered: list[Hashable] = []
    while ready:
        node = ready.popleft()
        ordered.append(node)
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    groups: dict[tuple[Hashable, ...], list[dict[str, Any]]] = {}
    for node in ordered:
        ups = parents[node]
        groups.setdefault(tuple(ups), []).append(
            {"id": names[node], "parents": [names[up] for up in ups]}
        )
    return list(groups.values())


def _visible_artifacts(graph: PipelineGraph) -> list[ArtifactInfo]:
    """The pipeline's artifacts in the reference's order: grouped by type (types in the order
    they first occur), by server id within a type; Environment and Label left out."""
    by_id = sorted(graph.artifacts, key=lambda a: a.metadata_id)
    type_order: dict[str, int] = {}
    for artifact in by_id:
        type_order.setdefault(artifact.type, len(type_order))
    return sorted(
        (a for a in by_id if a.type not in HIDDEN_TYPES),
        key=lambda a: (type_order[a.type], a.metadata_id),
    )


def _edge_maps(
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


def artifact_tree(graph: PipelineGraph) -> TangledTree:
    """``/artifact-lineage/tangled-tree/{p}``: an artifact's parents are the inputs of the
    executions of this pipeline that produced it."""
    inputs, producers, _ = _edge_maps(graph)
    visible = _visible_artifacts(graph)
    by_uri = {a.uri: a for a in visible}
    parents: dict[Hashable, list[Hashable]] = {}
    for artifact in visible:
        ups = {up for x in producers.get(artifact.uri, []) for up in inputs.get(x, [])}
        parents[artifact.metadata_id] = list(
            sorted(by_uri[u].metadata_id for u in ups if u in by_uri)
        )
    names: dict[Hashable, str] = {a.metadata_id: a.display_name for a in visible}
    return layered(parents, names)


def artifact_execution_tree(graph: PipelineGraph) -> TangledTree:
    """``/artifact-execution-lineage/tangled-tree/{p}``: executions' parents are the artifacts
    they read, artifacts' parents the executions (of this pipeline) that wrote them."""
    inputs, producers, readers = _edge_maps(graph)
    visible = _visible_artifacts(graph)
    executions = {x.uuid: x for x in graph.executions}
    position = {a.uri: i for i, a in enumerate(visible)}
    # Keys are strings ("e" or "a", a NUL, the key): hashed once, unlike tuples.
    parents: dict[Hashable, list[Hashable]] = {}
    names: dict[Hashable, str] = {}

    def add_execution(uuid: str) -> None:
        key = "e\0" + uuid
        if key not in parents:
            x = executions[uuid]
            names[key] = f"execution_name_{x.type}:{x.uuid[:4]}"
            ups = sorted(
                (u for u in inputs.get(uuid, []) if u in position), key=position.__getitem__
            )
            parents[key] = ["a\0" + u for u in ups]

    for artifact in visible:
        for uuid in readers.get(artifact.uri, []):
            add_execution(uuid)
        names["a\0" + artifact.uri] = f"artifact_name_{artifact.display_name}"
        parents["a\0" + artifact.uri] = ["e\0" + x for x in producers.get(artifact.uri, [])]
    for x in sorted(graph.executions, key=lambda x: x.metadata_id):
        add_execution(x.uuid)
    return layered(parents, names)


def execution_parents(graph: PipelineGraph) -> dict[str, list[str]]:
    """Each execution's parent executions: those of this pipeline that wrote what it read."""
    inputs, producers, _ = _edge_maps(graph)
    order_of = {x.uuid: (x.metadata_id, x.uuid) for x in graph.executions}
    return {
        x.uuid: sorted(
            {p for uri in inputs.get(x.uuid, []) for p in producers.get(uri, [])},
            key=order_of.__getitem__,
        )
        for x in graph.executions
    }


def execution_tree(
    pipeline: str,
    executions: list[ExecutionInfo],
    pairs: list[tuple[str, str]],
    uuid4: str,
) -> TangledTree | dict[str, str]:
    """``/execution-lineage/tangled-tree/{uuid4}/{p}``: the ancestry of the first execution
    (by server id) whose uuid starts with ``uuid4``, or the reference's 200 error body."""
    matches = sorted((x for x in executions if x.uuid[:4] == uuid4), key=lambda x: x.metadata_id)
    if not matches:
        return {"error": f"uuid '{uuid4}' does not match any execution in pipeline '{pipeline}'"}
    order_of = {x.uuid: (x.metadata_id, x.uuid) for x in executions}
    ups: dict[str, set[str]] = defaultdict(set)
    for child, parent in pairs:
        if child in order_of and parent in order_of:
            ups[child].add(parent)
    all_parents = {u: sorted(ps, key=order_of.__getitem__) for u, ps in ups.items()}
    names: dict[Hashable, str] = {x.uuid: x.display_name for x in executions}
    root = matches[0].uuid
    parents: dict[Hashable, list[Hashable]] = {root: list(all_parents.get(root, []))}
    queue = deque(all_parents.get(root, []))
    while queue:
        uuid = queue.popleft()
        if uuid in parents:
            continue
        parents[uuid] = list(all_parents.get(uuid, []))
        queue.extend(p for p in all_parents.get(uuid, []) if p not in parents)
    return layered(parents, names)


# ---------------------------------------------------------------------------------------------
# The UI's graph of a pipeline at a level (docs/api.md /display_lineage)


class Level(StrEnum):
    pipeline = "pipeline"
    stage = "stage"
    execution = "execution"
    artifact = "artifact"


def artifact_node(a: ArtifactInfo) -> dict[str, Any]:
    return {
        "id": f"artifact:{a.metadata_id}",
        "kind": "artifact",
        "name": a.name,
        "display_name": a.display_name,
        "type": a.type,
        "uri": a.uri,
        "pipelines": list(a.pipelines),
    }


def execution_node(x: ExecutionInfo) -> dict[str, Any]:
    return {
        "id": f"execution:{x.metadata_id}",
        "kind": "execution",
        "name": x.name or x.display_name,
        "display_name": x.display_name,
        "type": x.type,
        "uuid": x.uuid,
        "stage": x.stage,
        "pipelines": [x.pipeline],
    }


def display_lineage(graph: PipelineGraph, level: Level) -> dict[str, Any]:
    """``artifact``: every artifact and execution with their INPUT/OUTPUT edges;
    ``execution``: executions, an edge from each to those that read what it wrote;
    ``stage``: the same between stages; ``pipeline``: the pipeline and the pipelines it shares
    artifacts with, an edge to each."""
    inputs, producers, _ = _edge_maps(graph)
    executions = sorted(graph.executions, key=lambda x: x.metadata_id)
    by_uuid = {x.uuid: x for x in executions}
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    if level is Level.artifact:
        artifacts = sorted(graph.artifacts, key=lambda a: a.metadata_id)
        nodes = [artifact_node(a) for a in artifacts] + [execution_node(x) for x in executions]
        ids = {a.uri: f"artifact:{a.metadata_id}" for a in artifacts}
        for x in executions:
            for uri in inputs.get(x.uuid, []):
                edges.append(
                    {"source": ids[uri], "target": f"execution:{x.metadata_id}", "kind": "INPUT"}
                )
        for uri, xs in sorted(producers.items()):
            for uuid in xs:
                edges.append(
                    {
                        "source": f"execution:{by_uuid[uuid].metadata_id}",
                        "target": ids[uri],
                        "kind": "OUTPUT",
                    }
                )
        edges.sort(key=lambda e: (e["kind"], e["source"], e["target"]))
        return {"level": level.value, "nodes": nodes, "edges": edges}
    parents = execution_parents(graph)
    if level is Level.execution:
        nodes = [execution_node(x) for x in executions]
        pairs = {
            (by_uuid[p].metadata_id, x.metadata_id) for x in executions for p in parents[x.uuid]
        }
        edges = [
            {"source": f"execution:{s}", "target": f"execution:{t}", "kind": "DEPENDS_ON"}
            for s, t in sorted(pairs)
        ]
    elif level is Level.stage:
        stages = sorted(set(graph.stages) | {x.stage for x in executions})
        nodes = [
            {
                "id": f"stage:{s}",
                "kind": "stage",
                "name": s,
                "type": "Pipeline_Stage",
                "pipelines": [graph.name],
            }
            for s in stages
        ]
        stage_pairs = {
            (by_uuid[p].stage, x.stage)
            for x in executions
            for p in parents[x.uuid]
            if by_uuid[p].stage != x.stage
        }
        edges = [
            {"source": f"stage:{s}", "target": f"stage:{t}", "kind": "DEPENDS_ON"}
            for s, t in sorted(stage_pairs)
        ]
    else:
        others = sorted({p for a in graph.artifacts for p in a.pipelines} - {graph.name})
        nodes = [
            {
                "id": f"pipeline:{p}",
                "kind": "pipeline",
                "name": p,
                "type": "Parent_Context",
                "pipelines": [p],
            }
            for p in [graph.name, *others]
        ]
        edges = [
            {"source": f"pipeline:{graph.name}", "target": f"pipeline:{p}", "kind": "SHARES"}
            for p in others
        ]
    return {"level": level.value, "nodes": nodes, "edges": edges}


# ---------------------------------------------------------------------------------------------
# An artifact's or an execution's lineage, breadth first, within a depth and a node cap


class Direction(StrEnum):
    upstream = "upstream"
    downstream = "downstream"
    both = "both"


@dataclass(frozen=True)
class LineageRequest:
    direction: Direction = Direction.both
    depth: int = DEFAULT_DEPTH
    max_nodes: int = DEFAULT_MAX_NODES
    types: frozenset[str] | None = None
    cursor: str | None = None

    def check(self) -> None:
        if not 1 <= self.depth <= MAX_DEPTH:
            raise Invalid(f"depth must be between 1 and {MAX_DEPTH}, not {self.depth}")
        if not 1 <= self.max_nodes <= MAX_MAX_NODES:
            raise Invalid(f"max_nodes must be between 1 and {MAX_MAX_NODES}")


def parse_types(raw: str | None) -> frozenset[str] | None:
    if raw is None or not raw.strip():
        return None
    return frozenset(t.strip() for t in raw.split(",") if t.strip())


@dataclass
class _Walk:
    """The nodes found so far in breadth-first order, and the edges between them."""

    types: frozenset[str] | None = None
    order: list[str] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    shown: list[str] = field(default_factory=list)  # ``order`` without filtered-out artifacts

    def add(self, node: dict[str, Any], *, root: bool = False) -> bool:
        if node["id"] in self.nodes:
            return False
        self.nodes[node["id"]] = node
        self.order.append(node["id"])
        if root or self.types is None or node["kind"] != "artifact" or node["type"] in self.types:
            self.shown.append(node["id"])
        return True


def _query_hash(root: str, request: LineageRequest) -> str:
    text = json.dumps(
        [
            root,
            request.direction.value,
            request.depth,
            request.max_nodes,
            sorted(request.types or []),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(root: str, request: LineageRequest, offset: int) -> str:
    raw = json.dumps({"o": offset, "q": _query_hash(root, request)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(root: str, request: LineageRequest) -> int:
    """The offset a cursor continues from; a cursor of another query, or not ours, is refused."""
    if request.cursor is None:
        return 0
    try:
        padded = request.cursor + "=" * (-len(request.cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, digest = data["o"], data["q"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not one this server issued", code="invalid_cursor") from exc
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or offset <= 0
        or offset % request.max_nodes
        or digest != _query_hash(root, request)
    ):
        raise Invalid(
            "cursor does not belong to this query (same root, direction, depth, max_nodes"
            " and types)",
            code="invalid_cursor",
        )
    return int(offset)


async def _walk(
    store: Hops,
    walk: _Walk,
    root: ArtifactInfo | ExecutionInfo,
    upstream: bool,
    depth: int,
    enough: int,
) -> bool:
    """Adds to ``walk`` what lies ``depth`` executions away from ``root`` in one direction,
    hop by hop; returns False when it stopped because ``enough`` nodes were found."""
    artifacts: list[ArtifactInfo] = [root] if isinstance(root, ArtifactInfo) else []
    executions: list[ExecutionInfo] = [root] if isinstance(root, ExecutionInfo) else []
    seen: set[str] = {
        artifact_node(root)["id"] if isinstance(root, ArtifactInfo) else execution_node(root)["id"]
    }
    hops = 2 * depth
    for _ in range(hops):
        if len(walk.shown) > enough:
            return False
        found_x: dict[str, ExecutionInfo] = {}
        found_a: dict[str, ArtifactInfo] = {}
        if artifacts:
            kind = OUTPUT if upstream else INPUT
            ids = {a.uri: artifact_node(a)["id"] for a in artifacts}
            for uri, x in await store.executions_of_artifacts(sorted(ids), kind):
                xid = f"execution:{x.metadata_id}"
                edge = (ids[uri], xid, "INPUT") if kind == INPUT else (xid, ids[uri], "OUTPUT")
                walk.edges.add(edge)
                if xid not in seen:
                    found_x[xid] = x
        if executions:
            kind = INPUT if upstream else OUTPUT
            xids = {x.key: f"execution:{x.metadata_id}" for x in executions}
            for key, a in await store.artifacts_of_executions(sorted(xids), kind):
                aid = f"artifact:{a.metadata_id}"
                edge = (aid, xids[key], "INPUT") if kind == INPUT else (xids[key], aid, "OUTPUT")
                walk.edges.add(edge)
                if aid not in seen:
                    found_a[aid] = a
        if not found_a and not found_x:
            return True
        artifacts = [found_a[k] for k in sorted(found_a, key=_id_order)]
        executions = [found_x[k] for k in sorted(found_x, key=_id_order)]
        for a in artifacts:
            seen.add(f"artifact:{a.metadata_id}")
            walk.add(artifact_node(a))
        for x in executions:
            seen.add(f"execution:{x.metadata_id}")
            walk.add(execution_node(x))
    return True


def _id_order(node_id: str) -> tuple[str, int]:
    kind, _, number = node_id.partition(":")
    return (kind, int(number))


async def lineage(
    store: LineageQueries, root: ArtifactInfo | ExecutionInfo, request: LineageRequest
) -> dict[str, Any]:
    """The seed's lineage answer: nodes in breadth-first order (upstream first when both),
    ``max_nodes`` a page, ``next_cursor`` for the next page when the cap was hit."""
    request.check()
    root_node = artifact_node(root) if isinstance(root, ArtifactInfo) else execution_node(root)
    offset = decode_cursor(root_node["id"], request)
    enough = offset + request.max_nodes
    walk = _Walk(types=request.types)
    walk.add(root_node, root=True)
    complete = True
    directions = {
        Direction.upstream: (True,),
        Direction.downstream: (False,),
        Direction.both: (True, False),
    }[request.direction]
    for upstream in directions:
        hops: Hops = store
        if upstream:
            # Upstream lineage is small (what produced a thing), so one query fetches it all;
            # downstream may fan out to everything that read a shared input, so it goes hop by
            # hop and stops at the cap.
            fetched = await store.upstream_edges(root, 2 * request.depth, UPSTREAM_FETCH_LIMIT)
            if fetched is not None:
                hops = FetchedHops(fetched)
        complete = await _walk(hops, walk, root, upstream, request.depth, enough) and complete
    shown = walk.shown
    capped = len(shown) > enough or not complete
    page = shown[offset:enough]
    upto = set(shown[:enough])
    here = set(page)
    edges = [
        {"source": s, "target": t, "kind": k}
        for s, t, k in sorted(walk.edges)
        if s in upto and t in upto and (s in here or t in here)
    ]
    return {
        "root": root_node["id"],
        "nodes": [walk.nodes[n] for n in page],
        "edges": edges,
        "partial": capped,
        "reason": f"max_nodes ({request.max_nodes}) reached" if capped else None,
        "next_cursor": encode_cursor(root_node["id"], request, enough) if capped else None,
    }


async def artifact_root(
    store: LineageQueries, *, metadata_id: int | None = None, uri: str | None = None
) -> ArtifactInfo:
    found = (
        await store.artifact_by_id(metadata_id)
        if metadata_id is not None
        else await store.artifact_by_uri(uri or "")
    )
    if found is None:
        what = f"id {metadata_id}" if metadata_id is not None else f"uri {uri!r}"
        raise NotFound(f"no artifact with {what} in the lineage graph", code="artifact_not_found")
    return found


async def execution_root(store: LineageQueries, uuid: str, pipeline: str | None) -> ExecutionInfo:
    found = [
        x
        for x in await store.executions_by_uuid(uuid)
        if pipeline is None or x.pipeline == pipeline
    ]
    if not found:
        raise NotFound(
            f"no execution with uuid {uuid!r}" + (f" in pipeline {pipeline!r}" if pipeline else ""),
            code="execution_not_found",
        )
    if len(found) > 1:
        pipelines = sorted(x.pipeline for x in found)
        raise Conflict(
            f"execution {uuid!r} is in several pipelines ({', '.join(pipelines)});"
            " name one with ?pipeline=",
            code="ambiguous_execution",
            pipelines=pipelines,
        )
    return found[0]
