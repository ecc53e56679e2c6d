"""What the UI's lineage explorer reads (docs/ui-explorer.md): a pipeline's graph at a level,
filtered and capped, and the neighbourhood of one node, both saying how much they leave out.

Both start from the combined artifact-execution graph (``display.display_lineage`` at its
``artifact`` level, or a walk's answer), filter it, derive the level asked for from it, and cut
it at ``max_nodes`` in topological order (what is kept is closed upstream as far as the cap
allows). Nothing is cut silently: ``partial`` and ``hidden_nodes`` / ``hidden_edges`` say what
the cap left out, and ``total_nodes`` what the filters kept.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cmf_common.errors import Invalid, NotFound
from cmf_lineage import display, walk
from cmf_lineage.graph_reader import ArtifactInfo, ExecutionInfo, GraphReader, PipelineGraph

DEFAULT_MAX_NODES = 2_000
MAX_MAX_NODES = 20_000
DEFAULT_DEPTH = 1
MAX_DEPTH = 20
MAX_PROPERTIES = 20
# A neighbourhood is walked up to this many nodes to count what the page leaves out.
COUNT_LIMIT = walk.MAX_MAX_NODES

Node = dict[str, Any]
Edge = dict[str, Any]


class Level(StrEnum):
    """``combined``: artifacts and executions with their INPUT/OUTPUT edges; ``artifact``: an
    artifact to each artifact an execution made from it; ``execution``: an execution to each
    one that read what it wrote; ``stage`` the same between stages; ``pipeline``: the pipeline
    and those it shares artifacts with."""

    pipeline = "pipeline"
    stage = "stage"
    execution = "execution"
    artifact = "artifact"
    combined = "combined"


# The levels a neighbourhood can be asked at (a stage or a pipeline is not a node one expands).
NODE_LEVELS = (Level.combined, Level.execution, Level.artifact)


@dataclass(frozen=True)
class Filters:
    """What a view keeps: artifacts of ``types``, executions of ``stages`` whose properties
    (either bag, compared as text) hold every ``properties`` pair, and what was created in
    ``[since, until)`` (epoch ms; an execution's time is that of the first thing it wrote, else
    read). Narrowing by stage or property drops the artifacts no kept execution touches."""

    types: frozenset[str] | None = None
    stages: frozenset[str] | None = None
    properties: tuple[tuple[str, str], ...] = ()
    since: int | None = None
    until: int | None = None

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None

    def key(self) -> dict[str, Any]:
        return {
            "types": sorted(self.types) if self.types is not None else None,
            "stages": sorted(self.stages) if self.stages is not None else None,
            "properties": list(self.properties),
            "since": self.since,
            "until": self.until,
        }


def parse_list(raw: str | None) -> frozenset[str] | None:
    return walk.parse_types(raw)


def parse_properties(raw: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``key:value`` pairs (the key ends at the first colon), at most :data:`MAX_PROPERTIES`."""
    pairs = []
    for item in raw:
        key, colon, value = item.partition(":")
        if not colon or not key:
            raise Invalid(f"property must be key:value, not {item!r}", code="invalid_parameter")
        pairs.append((key, value))
    if len(pairs) > MAX_PROPERTIES:
        raise Invalid(f"at most {MAX_PROPERTIES} property filters", code="invalid_parameter")
    return tuple(sorted(pairs))


# ---------------------------------------------------------------------------------- levels


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def at_level(nodes: list[Node], edges: list[Edge], level: Level) -> tuple[list[Node], list[Edge]]:
    """The combined graph ``nodes``/``edges`` seen at ``level`` (not ``pipeline``)."""
    if level is Level.combined:
        return nodes, edges
    producers: dict[str, list[str]] = defaultdict(list)  # artifact -> executions writing it
    readers: dict[str, list[str]] = defaultdict(list)  # artifact -> executions reading it
    inputs: dict[str, list[str]] = defaultdict(list)  # execution -> artifacts read
    outputs: dict[str, list[str]] = defaultdict(list)  # execution -> artifacts written
    for e in edges:
        if e["kind"] == "INPUT":
            readers[e["source"]].append(e["target"])
            inputs[e["target"]].append(e["source"])
        else:
            producers[e["target"]].append(e["source"])
            outputs[e["source"]].append(e["target"])
    if level is Level.artifact:
        kept = [n for n in nodes if n["kind"] == "artifact"]
        pairs = {(a, b) for x in inputs for a in inputs[x] for b in outputs.get(x, ()) if a != b}
        return kept, [{"source": a, "target": b, "kind": "DERIVES"} for a, b in sorted(pairs)]
    depends = {
        (p, r) for a in producers for p in producers[a] for r in readers.get(a, ()) if p != r
    }
    executions = [n for n in nodes if n["kind"] == "execution"]
    if level is Level.execution:
        return executions, [
            {"source": s, "target": t, "kind": "DEPENDS_ON"} for s, t in sorted(depends)
        ]
    stage_of = {n["id"]: n.get("stage") or "" for n in executions}
    counts: dict[str, int] = defaultdict(int)
    for n in executions:
        counts[stage_of[n["id"]]] += 1
    stage_nodes = [
        {
            "id": f"stage:{s}",
            "kind": "stage",
            "name": s,
            "display_name": s.split("/", 1)[1] if "/" in s else s,
            "type": "Pipeline_Stage",
            "stage": s,
            "executions": counts[s],
        }
        for s in sorted(counts)
    ]
    stage_pairs = {(stage_of[s], stage_of[t]) for s, t in depends if stage_of[s] != stage_of[t]}
    return stage_nodes, [
        {"source": f"stage:{s}", "target": f"stage:{t}", "kind": "DEPENDS_ON"}
        for s, t in sorted(stage_pairs)
    ]


def topological(nodes: list[Node], edges: list[Edge]) -> list[Node]:
    """``nodes`` in Kahn's order (sources first, by id within a rank); nodes on a cycle last."""
    ids = {n["id"]: n for n in nodes}
    indegree = dict.fromkeys(ids, 0)
    children: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if e["source"] in ids and e["target"] in ids:
            children[e["source"]].append(e["target"])
            indegree[e["target"]] += 1
    ready = deque(sorted((i for i, d in indegree.items() if d == 0), key=_order))
    ordered: list[Node] = []
    while ready:
        node = ready.popleft()
        ordered.append(ids[node])
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(ordered) < len(nodes):
        done = {n["id"] for n in ordered}
        ordered += sorted((n for n in nodes if n["id"] not in done), key=lambda n: _order(n["id"]))
    return ordered


def _order(node_id: str) -> tuple[str, int, str]:
    kind, _, rest = node_id.partition(":")
    return (kind, int(rest), "") if rest.isdigit() else (kind, 0, rest)


def capped(
    nodes: list[Node], edges: list[Edge], max_nodes: int, order: list[Node] | None = None
) -> dict[str, Any]:
    """The first ``max_nodes`` of ``order`` (default: topological) and the edges between them,
    with what the cut left out."""
    ordered = order if order is not None else topological(nodes, edges)
    kept = ordered[:max_nodes]
    ids = {n["id"] for n in kept}
    kept_edges = [e for e in edges if e["source"] in ids and e["target"] in ids]
    partial = len(ordered) > max_nodes
    return {
        "nodes": kept,
        "edges": kept_edges,
        "total_nodes": len(ordered),
        "total_edges": len(edges),
        "hidden_nodes": len(ordered) - len(kept),
        "hidden_edges": len(edges) - len(kept_edges),
        "partial": partial,
        "reason": f"max_nodes ({max_nodes}) reached" if partial else None,
    }


# ---------------------------------------------------------------------------------- filters


async def _execution_times(
    reader: GraphReader, graph: PipelineGraph, combined: list[Edge]
) -> dict[str, int | None]:
    """Each execution node's time: the earliest create time of what it wrote, else read."""
    records = await reader.artifact_records(uris=[a.uri for a in graph.artifacts])
    created = {f"artifact:{r.info.metadata_id}": r.create_time for r in records}
    wrote: dict[str, list[int]] = defaultdict(list)
    read: dict[str, list[int]] = defaultdict(list)
    for e in combined:
        if e["kind"] == "OUTPUT" and e["target"] in created:
            wrote[e["source"]].append(created[e["target"]])
        elif e["kind"] == "INPUT" and e["source"] in created:
            read[e["target"]].append(created[e["source"]])
    times: dict[str, int | None] = {}
    times.update(created)
    for x in graph.executions:
        xid = f"execution:{x.metadata_id}"
        found = wrote.get(xid) or read.get(xid)
        times[xid] = min(found) if found else None
    return times


def _matches(bags: tuple[dict[str, Any], dict[str, Any]], pairs: Iterable[tuple[str, str]]) -> bool:
    custom, own = bags
    for key, value in pairs:
        found = custom.get(key, own.get(key))
        if found is None or _text(found) != value:
            return False
    return True


async def filtered(
    reader: GraphReader, graph: PipelineGraph, filters: Filters
) -> tuple[list[Node], list[Edge]]:
    """The pipeline's combined graph with ``filters`` applied."""
    combined = display.display_lineage(graph, display.Level.artifact)
    nodes: list[Node] = combined["nodes"]
    edges: list[Edge] = combined["edges"]
    keep = {n["id"] for n in nodes}
    times: dict[str, int | None] = {}
    if filters.timed:
        times = await _execution_times(reader, graph, edges)
        for n in nodes:
            n["time"] = times.get(n["id"])
    # Narrowing the executions drops what only the dropped ones touched.
    drop_untouched = filters.stages is not None or bool(filters.properties)
    if filters.types is not None:
        types = filters.types
        keep -= {n["id"] for n in nodes if n["kind"] == "artifact" and n["type"] not in types}
    if filters.stages is not None:
        keep -= {
            n["id"] for n in nodes if n["kind"] == "execution" and n["stage"] not in filters.stages
        }
    if filters.properties:
        records = await reader.execution_records([x.metadata_id for x in graph.executions])
        bags = {
            f"execution:{r.info.metadata_id}": (r.custom_properties, r.properties)
            for r in records
            if r.info.pipeline == graph.name
        }
        keep -= {
            xid
            for xid in (n["id"] for n in nodes if n["kind"] == "execution")
            if not _matches(bags.get(xid, ({}, {})), filters.properties)
        }
    if filters.timed:
        low = filters.since if filters.since is not None else -(2**63)
        high = filters.until if filters.until is not None else 2**63
        keep -= {i for i in keep if (t := times.get(i)) is None or not (low <= t < high)}
    if drop_untouched:
        touched = {
            e["source"] if e["kind"] == "INPUT" else e["target"]
            for e in edges
            if (e["target"] if e["kind"] == "INPUT" else e["source"]) in keep
        }
        keep -= {n["id"] for n in nodes if n["kind"] == "artifact" and n["id"] not in touched}
    kept_edges = [e for e in edges if e["source"] in keep and e["target"] in keep]
    return [n for n in nodes if n["id"] in keep], kept_edges


def facets(graph: PipelineGraph) -> dict[str, Any]:
    """What the filters can choose from: the pipeline's stages and artifact types, counted."""
    stages: dict[str, int] = dict.fromkeys(graph.stages, 0)
    for x in graph.executions:
        stages[x.stage] = stages.get(x.stage, 0) + 1
    types: dict[str, int] = defaultdict(int)
    for a in graph.artifacts:
        types[a.type] += 1
    return {
        "stages": [{"name": s, "count": c} for s, c in sorted(stages.items())],
        "artifact_types": [{"type": t, "count": c} for t, c in sorted(types.items())],
    }


# ---------------------------------------------------------------------------------- answers


async def pipeline_graph(
    reader: GraphReader, graph: PipelineGraph, level: Level, filters: Filters, max_nodes: int
) -> dict[str, Any]:
    """``GET /api/native/v1/lineage/graph/{pipeline}``: the pipeline at ``level``."""
    check_max_nodes(max_nodes)
    if level is Level.pipeline:
        shown = display.display_lineage(graph, display.Level.pipeline)
        nodes, edges = shown["nodes"], shown["edges"]
    else:
        nodes, edges = at_level(*await filtered(reader, graph, filters), level)
    return {
        "pipeline": graph.name,
        "level": level.value,
        **capped(nodes, edges, max_nodes),
        **facets(graph),
    }


def check_max_nodes(max_nodes: int) -> None:
    if not 1 <= max_nodes <= MAX_MAX_NODES:
        raise Invalid(f"max_nodes must be between 1 and {MAX_MAX_NODES}")


async def node_root(reader: GraphReader, node: str) -> ArtifactInfo | ExecutionInfo:
    """The artifact or execution a node id (``artifact:<id>``, ``execution:<id>``) names."""
    kind, _, number = node.partition(":")
    if kind not in ("artifact", "execution") or not number.isdigit() or int(number) >= 2**63:
        raise Invalid(
            f"node must be artifact:<id> or execution:<id>, not {node!r}", code="invalid_node"
        )
    if kind == "artifact":
        found = await reader.artifact_by_id(int(number))
        if found is None:
            raise NotFound(f"no artifact {number} in the lineage graph", code="artifact_not_found")
        return found
    records = await reader.execution_records([int(number)])
    if not records:
        raise NotFound(f"no execution {number} in the lineage graph", code="execution_not_found")
    return records[0].info


async def neighbourhood(
    reader: GraphReader,
    node: str,
    direction: walk.Direction,
    depth: int,
    level: Level,
    types: frozenset[str] | None,
    max_nodes: int,
) -> dict[str, Any]:
    """``GET /api/native/v1/lineage/neighbourhood/{node}``: what lies ``depth`` executions away
    from ``node`` (breadth first, nearest kept first), at ``level``, ``max_nodes`` of it; the
    walk goes on to :data:`COUNT_LIMIT` nodes to count what is left out (``hidden_at_least``
    when it stopped there)."""
    check_max_nodes(max_nodes)
    if level not in NODE_LEVELS:
        raise Invalid(
            f"a neighbourhood is shown at the {', '.join(NODE_LEVELS)} levels, not {level}",
            code="invalid_parameter",
        )
    if not 1 <= depth <= MAX_DEPTH:
        raise Invalid(f"depth must be between 1 and {MAX_DEPTH}")
    root = await node_root(reader, node)
    if level is Level.execution and isinstance(root, ArtifactInfo):
        raise Invalid("the execution level expands executions", code="invalid_node")
    if level is Level.artifact and isinstance(root, ExecutionInfo):
        raise Invalid("the artifact level expands artifacts", code="invalid_node")
    found = await walk.lineage(
        reader, root, walk.LineageRequest(direction, depth, COUNT_LIMIT, types)
    )
    nodes, edges = at_level(found["nodes"], found["edges"], level)
    answer = capped(nodes, edges, max_nodes, order=nodes)  # the walk's breadth-first order
    return {
        "root": found["root"],
        "level": level.value,
        "direction": direction.value,
        "depth": depth,
        **answer,
        "hidden_at_least": bool(found["partial"]),
    }
