"""An artifact's or an execution's lineage: the nodes around it, breadth first, within a depth
and a node cap, in pages (the seed's ``/lineage/{id}`` and ours under
``/api/native/v1/lineage``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from cmf_common import paging
from cmf_common.errors import Conflict, Invalid, NotFound
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_lineage.display import artifact_node, execution_node
from cmf_lineage.graph_reader import ArtifactInfo, ExecutionInfo, ExecutionKey, GraphReader

MAX_DEPTH = 100
DEFAULT_DEPTH = 20
DEFAULT_MAX_NODES = 1_000
MAX_MAX_NODES = 10_000
# An upstream neighbourhood larger than this is walked hop by hop instead of fetched at once.
UPSTREAM_FETCH_LIMIT = 20_000


class Hops(Protocol):
    """One traversal hop for a frontier: the store itself, or edges it fetched at once."""

    async def executions_of_artifacts(
        self, uris: Sequence[str], kind: int
    ) -> list[tuple[str, ExecutionInfo]]: ...

    async def artifacts_of_executions(
        self, keys: Sequence[ExecutionKey], kind: int
    ) -> list[tuple[ExecutionKey, ArtifactInfo]]: ...


class FetchedHops:
    """Hops answered from edges fetched in one query (``GraphReader.upstream_edges``)."""

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


def _scope(root: str, request: LineageRequest) -> str:
    """What a cursor is bound to: the root and every parameter that shapes the walk."""
    return paging.query_scope(
        "lineage",
        root=root,
        direction=request.direction.value,
        depth=request.depth,
        max_nodes=request.max_nodes,
        types=sorted(request.types or []),
    )


def encode_cursor(root: str, request: LineageRequest, offset: int) -> str:
    return paging.encode_cursor(_scope(root, request), [offset])


def decode_cursor(root: str, request: LineageRequest) -> int:
    """The offset a cursor continues from; a cursor of another query, or not ours, is refused."""
    if request.cursor is None:
        return 0
    (offset,) = paging.decode_cursor(request.cursor, _scope(root, request), (int,))
    if offset <= 0 or offset % request.max_nodes:
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
    store: GraphReader, root: ArtifactInfo | ExecutionInfo, request: LineageRequest
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
    store: GraphReader, *, metadata_id: int | None = None, uri: str | None = None
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


async def execution_root(store: GraphReader, uuid: str, pipeline: str | None) -> ExecutionInfo:
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
