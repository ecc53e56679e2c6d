"""The reference's tangled trees (docs/wire-contract.md §1.5): layered lists of
``{"id", "parents"}`` drawn from one pipeline's part of the graph."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable
from typing import Any

from cmf_lineage.graph_reader import ArtifactInfo, ExecutionInfo, PipelineGraph, edge_maps

# The reference hides these from its trees (its fixes #265/#275: "labels should not be visible").
HIDDEN_TYPES = frozenset({"Environment", "Label"})

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


def artifact_tree(graph: PipelineGraph) -> TangledTree:
    """``/artifact-lineage/tangled-tree/{p}``: an artifact's parents are the inputs of the
    executions of this pipeline that produced it."""
    inputs, producers, _ = edge_maps(graph)
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
    inputs, producers, readers = edge_maps(graph)
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
