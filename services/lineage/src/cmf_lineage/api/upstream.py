"""Upstream CMF's v1 lineage routes (docs/upstream-v1.md §6), in its envelope: the three
tangled trees, answered by the very domain code of their 0.1.0 twins (:mod:`cmf_lineage.trees`)
through the same cache, and the hierarchical lineage (:mod:`cmf_lineage.hierarchy`).

Registered without a prefix; the app mounts the router at ``/v1`` and ``/api/v1``
(``cmf_common.prefixes``), as the metadata service mounts its v1 routers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from cmf_common import envelope
from cmf_common.envelope import EnvelopeRoute
from cmf_common.errors import NotFound
from cmf_lineage import hierarchy, trees
from cmf_lineage.api.deps import PipelineReader
from cmf_lineage.graph_reader import PipelineGraph
from cmf_lineage.reads import LineageReader

router = APIRouter(
    tags=["upstream v1: lineage"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)


async def _pipeline(
    reader: LineageReader, pipeline: str, message: str | None = None
) -> PipelineGraph:
    graph = await reader.graph.pipeline_graph(pipeline)
    if graph is None:
        raise NotFound(message or f"Pipeline {pipeline} not found.", code="pipeline_not_found")
    return graph


@router.get("/pipelines/{pipeline_name}/executions/{uuid}/lineage")
async def execution_lineage(pipeline_name: str, uuid: str, reader: PipelineReader) -> Response:
    """``/execution-lineage/tangled-tree/{uuid}/{p}``'s answer in ``data`` (a uuid that matches
    no execution: its ``{"error": …}`` body, as there)."""

    async def compute() -> Any:
        dag = await reader.graph.execution_dag(pipeline_name)
        if dag is None:
            raise NotFound(f"Pipeline {pipeline_name} not found.", code="pipeline_not_found")
        return trees.execution_tree(pipeline_name, *dag, uuid)

    body = await reader.answer("execution-tree", {"p": pipeline_name, "u": uuid}, compute)
    return envelope.success_json(body, "Execution lineage retrieved successfully")


@router.get("/pipelines/{pipeline_name}/artifacts/lineage")
async def artifact_lineage(pipeline_name: str, reader: PipelineReader) -> Response:
    """``/artifact-lineage/tangled-tree/{p}``'s answer in ``data``."""

    async def compute() -> Any:
        return trees.artifact_tree(await _pipeline(reader, pipeline_name))

    body = await reader.answer("artifact-tree", {"p": pipeline_name}, compute)
    return envelope.success_json(body, "Artifact lineage retrieved successfully")


@router.get("/pipelines/{pipeline_name}/artifact-executions/lineage")
async def artifact_execution_lineage(pipeline_name: str, reader: PipelineReader) -> Response:
    """``/artifact-execution-lineage/tangled-tree/{p}``'s answer in ``data``."""

    async def compute() -> Any:
        return trees.artifact_execution_tree(await _pipeline(reader, pipeline_name))

    body = await reader.answer("artifact-execution-tree", {"p": pipeline_name}, compute)
    return envelope.success_json(body, "Artifact-execution lineage retrieved successfully")


@router.get("/pipelines/{pipeline_name}/hierarchical-lineage")
async def hierarchical_lineage(pipeline_name: str, reader: PipelineReader) -> Response:
    """The pipeline as a React Flow graph (:func:`cmf_lineage.hierarchy.hierarchical_lineage`)."""

    async def compute() -> Any:
        graph = await _pipeline(
            reader,
            pipeline_name,
            f"Pipeline '{pipeline_name}' not found or contains no MLMD data.",
        )
        return hierarchy.hierarchical_lineage(graph)

    body = await reader.answer("hierarchical-lineage", {"p": pipeline_name}, compute)
    return envelope.success_json(body, "Hierarchical lineage retrieved successfully")
