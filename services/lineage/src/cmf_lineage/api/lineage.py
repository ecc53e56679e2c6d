"""The lineage routes: the reference's tangled trees (at /x and /api/x), the seed's
/lineage/{artifact_id} and /display_lineage, and ours under /api/native/v1/lineage. Thin: parse,
wait for a consistency token, call the domain through the cache, return."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from cmf_common.dialects import ProblemRoute, ReferenceRoute, errors
from cmf_common.errors import NotFound
from cmf_common.openapi import answer
from cmf_lineage import display, trees, walk
from cmf_lineage.api.deps import PipelineReader, Reader
from cmf_lineage.graph_reader import PipelineGraph
from cmf_lineage.reads import LineageReader


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


async def _pipeline(reader: LineageReader, pipeline: str) -> PipelineGraph:
    graph = await reader.graph.pipeline_graph(pipeline)
    if graph is None:
        raise NotFound(f"Pipeline {pipeline} not found.", code="pipeline_not_found")
    return graph


# Every lineage read: 404 for what the graph does not hold, 503 when it is behind a token.
READ_ERRORS = errors(404, 503)
_NODE = {
    "type": "object",
    "required": ["id", "kind"],
    "properties": {"id": {"type": "string"}, "kind": {"enum": ["artifact", "execution"]}},
}
_EDGE = {
    "type": "object",
    "required": ["source", "target", "kind"],
    "properties": {
        "source": {"type": "string"},
        "target": {"type": "string"},
        "kind": {"type": "string"},
    },
}
# A walk's answer (docs/api.md, "Lineage answers").
LINEAGE = answer(
    {
        "type": "object",
        "required": ["root", "nodes", "edges", "partial", "reason", "next_cursor"],
        "properties": {
            "root": {"type": "string"},
            "nodes": {"type": "array", "items": _NODE},
            "edges": {"type": "array", "items": _EDGE},
            "partial": {"type": "boolean"},
            "reason": {"type": ["string", "null"]},
            "next_cursor": {"type": ["string", "null"]},
        },
    }
)
DISPLAY = answer(
    {
        "type": "object",
        "required": ["level", "nodes", "edges"],
        "properties": {
            "level": {"type": "string"},
            "nodes": {"type": "array"},
            "edges": {"type": "array"},
        },
    }
)

# The reference's routes (docs/wire-contract.md §1.5), mounted at / and /api.
cmf = APIRouter(tags=["lineage"], route_class=ReferenceRoute, responses=READ_ERRORS)
# The seed's (problem+json errors), mounted at / and /api.
seed = APIRouter(tags=["lineage"], route_class=ProblemRoute, responses=READ_ERRORS)


@cmf.get("/artifact-lineage/tangled-tree/{pipeline_name}")
async def artifact_lineage(pipeline_name: str, reader: PipelineReader) -> Response:
    async def compute() -> Any:
        return trees.artifact_tree(await _pipeline(reader, pipeline_name))

    return _json(await reader.answer("artifact-tree", {"p": pipeline_name}, compute))


@cmf.get("/artifact-execution-lineage/tangled-tree/{pipeline_name}")
async def artifact_execution_lineage(pipeline_name: str, reader: PipelineReader) -> Response:
    async def compute() -> Any:
        return trees.artifact_execution_tree(await _pipeline(reader, pipeline_name))

    return _json(await reader.answer("artifact-execution-tree", {"p": pipeline_name}, compute))


@cmf.get("/execution-lineage/tangled-tree/{uuid}/{pipeline_name}")
async def execution_lineage(uuid: str, pipeline_name: str, reader: PipelineReader) -> Response:
    async def compute() -> Any:
        dag = await reader.graph.execution_dag(pipeline_name)
        if dag is None:
            raise NotFound(f"Pipeline {pipeline_name} not found.", code="pipeline_not_found")
        return trees.execution_tree(pipeline_name, *dag, uuid)

    return _json(await reader.answer("execution-tree", {"p": pipeline_name, "u": uuid}, compute))


Depth = Annotated[int, Query(ge=1, le=walk.MAX_DEPTH, description="executions crossed, 1..100")]
MaxNodes = Annotated[int, Query(ge=1, le=walk.MAX_MAX_NODES)]
Types = Annotated[str | None, Query(description="artifact types to show, comma-separated")]


def traversal(
    direction: walk.Direction = walk.Direction.both,
    depth: Depth = walk.DEFAULT_DEPTH,
    max_nodes: MaxNodes = walk.DEFAULT_MAX_NODES,
    types: Types = None,
    cursor: str | None = None,
) -> walk.LineageRequest:
    """The traversal's query parameters, which every lineage route takes alike."""
    return walk.LineageRequest(direction, depth, max_nodes, walk.parse_types(types), cursor)


Traversal = Annotated[walk.LineageRequest, Depends(traversal)]


async def _artifact_lineage(
    reader: LineageReader, request: walk.LineageRequest, *, metadata_id: int | None, uri: str | None
) -> Response:
    request.check()

    async def compute() -> Any:
        root = await walk.artifact_root(reader.graph, metadata_id=metadata_id, uri=uri)
        return await walk.lineage(reader.graph, root, request)

    params = {"id": metadata_id, "uri": uri, "r": repr(request)}
    return _json(await reader.answer("artifact-lineage", params, compute))


@seed.get("/lineage/{artifact_id}", responses=LINEAGE)
async def seed_lineage(
    artifact_id: int,
    reader: Reader,
    request: Traversal,
) -> Response:
    return await _artifact_lineage(reader, request, metadata_id=artifact_id, uri=None)


@seed.get("/display_lineage", responses=DISPLAY)
async def display_lineage(
    pipeline_name: str, reader: PipelineReader, level: display.Level = display.Level.artifact
) -> Response:
    async def compute() -> Any:
        return display.display_lineage(await _pipeline(reader, pipeline_name), level)

    return _json(await reader.answer("display", {"p": pipeline_name, "l": level.value}, compute))


# Ours, under /api/native/v1.
v1 = APIRouter(
    prefix="/lineage",
    tags=["lineage"],
    route_class=ProblemRoute,
    responses={**READ_ERRORS, **LINEAGE},
)


@v1.get("/artifacts/{artifact_id}")
async def v1_artifact_lineage(
    artifact_id: int,
    reader: Reader,
    request: Traversal,
) -> Response:
    return await _artifact_lineage(reader, request, metadata_id=artifact_id, uri=None)


@v1.get("/artifacts")
async def v1_artifact_lineage_by_uri(
    uri: Annotated[str, Query(min_length=1)],
    reader: Reader,
    request: Traversal,
) -> Response:
    return await _artifact_lineage(reader, request, metadata_id=None, uri=uri)


@v1.get("/executions/{uuid}", responses=errors(409))  # 409: the uuid is in several pipelines
async def v1_execution_lineage(
    uuid: str,
    reader: Reader,
    request: Traversal,
    pipeline: str | None = None,
) -> Response:
    request.check()

    async def compute() -> Any:
        root = await walk.execution_root(reader.graph, uuid, pipeline)
        return await walk.lineage(reader.graph, root, request)

    params = {"u": uuid, "p": pipeline, "r": repr(request)}
    return _json(await reader.answer("execution-lineage", params, compute))
