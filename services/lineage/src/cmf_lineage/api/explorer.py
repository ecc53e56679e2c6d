"""The lineage explorer's routes under /api/native/v1/lineage (docs/ui-explorer.md): a pipeline's
graph at a level, filtered and capped, and one node's neighbourhood, each with what it leaves
out and the graph version it was read at (the UI keys its layouts by it). Thin: parse, call
:mod:`cmf_lineage.explorer` through the cache."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cmf_common.dialects import ProblemRoute
from cmf_common.openapi import answer
from cmf_lineage import explorer, walk
from cmf_lineage.api.deps import PipelineReader, Reader
from cmf_lineage.api.lineage import READ_ERRORS, _pipeline
from cmf_lineage.reads import LineageReader

router = APIRouter(prefix="/lineage", tags=["lineage explorer"], route_class=ProblemRoute)


class ExplorerNode(BaseModel):
    id: str = Field(description="`artifact:<id>`, `execution:<id>`, `stage:<s>`, `pipeline:<p>`")
    kind: Literal["artifact", "execution", "stage", "pipeline"]
    name: str
    display_name: str | None = None
    type: str
    stage: str | None = Field(None, description="an execution's (or a stage node's) stage")
    uuid: str | None = None
    uri: str | None = None
    pipelines: list[str] | None = None
    executions: int | None = Field(None, description="a stage node's execution count")
    time: int | None = Field(None, description="epoch ms, when a time range was asked for")


class ExplorerEdge(BaseModel):
    source: str
    target: str
    kind: Literal["INPUT", "OUTPUT", "DEPENDS_ON", "DERIVES", "SHARES"]


class Cut(BaseModel):
    """What the answer holds and what the cap left out: never a silent truncation."""

    version: int = Field(description="the graph version this answer was read at")
    nodes: list[ExplorerNode]
    edges: list[ExplorerEdge]
    total_nodes: int = Field(description="nodes the filters keep")
    total_edges: int
    hidden_nodes: int = Field(description="of those, left out by max_nodes")
    hidden_edges: int
    partial: bool
    reason: str | None


class Counted(BaseModel):
    name: str
    count: int


class CountedType(BaseModel):
    type: str
    count: int


class ExplorerGraph(Cut):
    pipeline: str
    level: Literal["pipeline", "stage", "execution", "artifact", "combined"]
    stages: list[Counted] = Field(description="the pipeline's stages and their executions")
    artifact_types: list[CountedType]


class Neighbourhood(Cut):
    root: str
    level: Literal["execution", "artifact", "combined"]
    direction: Literal["upstream", "downstream", "both"]
    depth: int
    hidden_at_least: bool = Field(
        description="the count stopped at 10,000 nodes: at least hidden_nodes are left out"
    )


MaxNodes = Annotated[int, Query(ge=1, le=explorer.MAX_MAX_NODES, description="1..20,000")]
Csv = Annotated[str | None, Query(description="a comma-separated list")]
Millis = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="epoch ms")]


async def _at_version(reader: LineageReader) -> tuple[LineageReader, int]:
    """``reader`` pinned to one graph version (the routes' readers are, after their consistency
    wait), so the body and the version it states agree."""
    if reader.pinned is not None:
        return reader, reader.pinned
    version = await reader.versions.latest()
    pinned = copy.copy(reader)
    pinned.pinned = version
    return pinned, version


def _with_version(body: bytes, version: int) -> Response:
    # The cached body is keyed by the version it was computed at; say which.
    return Response(content=b'{"version":%d,' % version + body[1:], media_type="application/json")


@router.get(
    "/graph/{pipeline_name}",
    responses={**READ_ERRORS, **answer(ExplorerGraph)},
    summary="A pipeline's lineage at a level, filtered, capped at max_nodes",
)
async def pipeline_graph(
    pipeline_name: str,
    reader: PipelineReader,
    level: explorer.Level = explorer.Level.combined,
    max_nodes: MaxNodes = explorer.DEFAULT_MAX_NODES,
    types: Csv = None,
    stages: Csv = None,
    property: Annotated[
        list[str] | None,
        Query(description="key:value, an execution property (either bag); repeatable, up to 20"),
    ] = None,
    since: Millis = None,
    until: Millis = None,
) -> Response:
    filters = explorer.Filters(
        types=explorer.parse_list(types),
        stages=explorer.parse_list(stages),
        properties=explorer.parse_properties(property or []),
        since=since,
        until=until,
    )
    explorer.check_max_nodes(max_nodes)
    pinned, version = await _at_version(reader)

    async def compute() -> Any:
        graph = await _pipeline(pinned, pipeline_name)
        return await explorer.pipeline_graph(pinned.graph, graph, level, filters, max_nodes)

    params = {"p": pipeline_name, "l": level.value, "n": max_nodes, "f": filters.key()}
    return _with_version(await pinned.answer("explorer-graph", params, compute), version)


@router.get(
    "/neighbourhood/{node}",
    responses={**READ_ERRORS, **answer(Neighbourhood)},
    summary="What lies depth executions up or down from one node, capped at max_nodes",
)
async def neighbourhood(
    node: Annotated[str, Path(description="artifact:<id> or execution:<id>", max_length=40)],
    reader: Reader,
    direction: walk.Direction = walk.Direction.upstream,
    depth: Annotated[int, Query(ge=1, le=explorer.MAX_DEPTH)] = explorer.DEFAULT_DEPTH,
    level: explorer.Level = explorer.Level.combined,
    max_nodes: MaxNodes = 500,
    types: Csv = None,
) -> Response:
    pinned, version = await _at_version(reader)
    kinds = explorer.parse_list(types)

    async def compute() -> Any:
        return await explorer.neighbourhood(
            pinned.graph, node, direction, depth, level, kinds, max_nodes
        )

    params = {
        "n": node,
        "d": direction.value,
        "k": depth,
        "l": level.value,
        "m": max_nodes,
        "t": sorted(kinds) if kinds else None,
    }
    return _with_version(await pinned.answer("explorer-neighbourhood", params, compute), version)
