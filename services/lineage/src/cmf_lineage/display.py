"""How the UI shows the lineage graph: the short display names the reference UI's lineage trees
show (docs/wire-contract.md §1.5), the seed's node shapes, and ``/display_lineage``'s graph of a
pipeline at a level."""

from __future__ import annotations

import posixpath
from enum import StrEnum
from typing import Any

from cmf_lineage.graph_reader import ArtifactInfo, ExecutionInfo, PipelineGraph, edge_maps


def _parts(name: str) -> list[str]:
    return name.split(":")


def artifact_display_name(type_: str, name: str, uri: str) -> str:
    """``basename:hash4`` for files; the reference's own forms for metrics and slices."""
    parts = _parts(name)
    path = parts[0]
    if type_ == "Metrics":
        # name:uuid1:execid -> name:uuid4:execid
        execution = parts[2] if len(parts) > 2 else ""
        return f"{path}:{uri[:4]}:{execution}"
    if type_ == "Step_Metrics":
        # cmf_artifacts/<exec_uuid>/metrics/<name>:md5:execid:uuid1
        short = path.removeprefix("cmf_artifacts/")
        digest = parts[1][:4] if len(parts) > 1 else uri[:4]
        execution = parts[2] if len(parts) > 2 else ""
        metric_uuid = parts[3][:4] if len(parts) > 3 else ""
        return f"{short}:{digest}:{execution}:{metric_uuid}"
    if type_ == "Dataslice":
        return f"{path.removeprefix('cmf_artifacts/')}:{uri[:4]}"
    return f"{posixpath.basename(path) or path}:{uri[:4]}"


def execution_display_name(context_type: str, uuid: str) -> str:
    """``<stage after the pipeline>_<uuid4>``, as the execution tree names executions."""
    stage = context_type.split("/", 1)[1] if "/" in context_type else context_type
    return f"{stage}_{uuid[:4]}"


# ---------------------------------------------------------------------------------------------
# The seed's nodes, and the UI's graph of a pipeline at a level (docs/api.md /display_lineage)


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


def execution_parents(graph: PipelineGraph) -> dict[str, list[str]]:
    """Each execution's parent executions: those of this pipeline that wrote what it read."""
    inputs, producers, _ = edge_maps(graph)
    order_of = {x.uuid: (x.metadata_id, x.uuid) for x in graph.executions}
    return {
        x.uuid: sorted(
            {p for uri in inputs.get(x.uuid, []) for p in producers.get(uri, [])},
            key=order_of.__getitem__,
        )
        for x in graph.executions
    }


def display_lineage(graph: PipelineGraph, level: Level) -> dict[str, Any]:
    """``artifact``: every artifact and execution with their INPUT/OUTPUT edges;
    ``execution``: executions, an edge from each to those that read what it wrote;
    ``stage``: the same between stages; ``pipeline``: the pipeline and the pipelines it shares
    artifacts with, an edge to each."""
    inputs, producers, _ = edge_maps(graph)
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
