"""``GET /v1/pipelines/{p}/hierarchical-lineage``: one pipeline's part of the graph as a React
Flow graph (docs/upstream-v1.md §6), a stage being a group node holding its executions.

Upstream builds it from the pull document (``convert_mlmd_to_hierarchical_lineage_json``, a
function its stored sources only name); the shape here is React Flow's own: ``nodes`` of
``{id, type, data, position}`` (an execution adds ``parentNode`` and ``parentId``, the
spellings of React Flow 11 and 12, and ``extent: "parent"``) and ``edges`` of
``{id, source, target}``, read like the trees from the graph.
"""

from __future__ import annotations

from typing import Any

from cmf_lineage.graph_reader import PipelineGraph, edge_maps
from cmf_lineage.trees import HIDDEN_TYPES

# Layout, in React Flow's pixels: stages side by side, their executions stacked inside.
STAGE_WIDTH = 280
STAGE_GAP = 160
EXECUTION_HEIGHT = 60
PADDING = 40
ARTIFACT_HEIGHT = 50


def stage_id(stage: str) -> str:
    return f"stage:{stage}"


def execution_id(uuid: str) -> str:
    return f"execution:{uuid}"


def artifact_id(metadata_id: int) -> str:
    return f"artifact:{metadata_id}"


def hierarchical_lineage(graph: PipelineGraph) -> dict[str, list[dict[str, Any]]]:
    """Stages (type ``stage``, in the order of their first execution by server id), their
    executions (type ``execution``, children of their stage), the artifacts they read and
    wrote (type ``artifact``; Environment and Label left out, as the trees do), and an edge
    for each INPUT (artifact → execution) and OUTPUT (execution → artifact)."""
    inputs, producers, _ = edge_maps(graph)
    executions = sorted(graph.executions, key=lambda x: (x.metadata_id, x.uuid))
    stages: dict[str, list[str]] = {}
    for x in executions:
        stages.setdefault(x.stage, []).append(x.uuid)
    for stage in graph.stages:  # a stage without executions still shows
        stages.setdefault(stage, [])
    column = {stage: i for i, stage in enumerate(stages)}
    by_uuid = {x.uuid: x for x in executions}

    nodes: list[dict[str, Any]] = []
    for stage, uuids in stages.items():
        nodes.append(
            {
                "id": stage_id(stage),
                "type": "stage",
                "data": {"label": stage, "stage": stage, "executions": len(uuids)},
                "position": {"x": column[stage] * (STAGE_WIDTH + STAGE_GAP), "y": 0},
                "style": {
                    "width": STAGE_WIDTH,
                    "height": 2 * PADDING + max(1, len(uuids)) * EXECUTION_HEIGHT,
                },
            }
        )
        for row, uuid in enumerate(uuids):
            x = by_uuid[uuid]
            nodes.append(
                {
                    "id": execution_id(uuid),
                    "type": "execution",
                    "data": {
                        "label": x.display_name,
                        "execution_id": x.metadata_id,
                        "execution_uuid": x.uuid,
                        "execution_type": x.type,
                        "stage": x.stage,
                    },
                    "position": {"x": PADDING // 2, "y": PADDING + row * EXECUTION_HEIGHT},
                    "parentNode": stage_id(stage),
                    "parentId": stage_id(stage),
                    "extent": "parent",
                }
            )

    visible = sorted(
        (a for a in graph.artifacts if a.type not in HIDDEN_TYPES),
        key=lambda a: (a.metadata_id, a.uri),
    )
    visible_uris = {a.uri for a in visible}
    stacked: dict[int, int] = {}
    for a in visible:
        # Beside the stage after the one that wrote it; raw inputs before the first stage.
        writers = [by_uuid[u] for u in producers.get(a.uri, []) if u in by_uuid]
        col = max((column[w.stage] for w in writers), default=-1)
        row = stacked.get(col, 0)
        stacked[col] = row + 1
        nodes.append(
            {
                "id": artifact_id(a.metadata_id),
                "type": "artifact",
                "data": {
                    "label": a.display_name,
                    "artifact_id": a.metadata_id,
                    "artifact_name": a.name,
                    "artifact_type": a.type,
                    "uri": a.uri,
                },
                "position": {
                    "x": col * (STAGE_WIDTH + STAGE_GAP) + STAGE_WIDTH + STAGE_GAP // 4,
                    "y": row * ARTIFACT_HEIGHT,
                },
            }
        )

    by_uri = {a.uri: a for a in visible}
    edges: list[dict[str, Any]] = []
    for x in executions:
        for uri in inputs.get(x.uuid, []):
            if uri in visible_uris:
                source, target = artifact_id(by_uri[uri].metadata_id), execution_id(x.uuid)
                edges.append({"id": f"{source}->{target}", "source": source, "target": target})
    for a in visible:
        for uuid in producers.get(a.uri, []):
            if uuid in by_uuid:
                source, target = execution_id(uuid), artifact_id(a.metadata_id)
                edges.append({"id": f"{source}->{target}", "source": source, "target": target})
    return {"nodes": nodes, "edges": edges}
