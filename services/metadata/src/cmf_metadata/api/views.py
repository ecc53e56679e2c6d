"""``/api/native/v1/views/``: what the web UI's pages read, shaped for them (docs/ui.md).

Errors are ``application/problem+json`` like the rest of ``/api/native/v1``. Tables page by
number: ``{"items", "total", "offset"}``; ``sort`` is a column or ``property:<key>``, a leading
``-`` descending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from cmf_common.dialects import ProblemRoute, errors
from cmf_common.paging import BIGINT_MAX
from cmf_metadata import views
from cmf_metadata.api.deps import Pool, State, Store, Stored
from cmf_metadata.api.native import json_response, sort_query

router = APIRouter(prefix="/views", tags=["views"], route_class=ProblemRoute)

Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
Name = Annotated[str, Query(min_length=1, max_length=4096)]
Text = Annotated[str | None, Query(max_length=1024, description="free text, matched literally")]
Offset = Annotated[int, Query(ge=0, le=views.MAX_OFFSET)]
Limit = Annotated[int, Query(ge=1, le=views.MAX_PAGE)]


def _sort(columns: Sequence[str]) -> Any:
    """The ``sort`` of a page sorted by one of ``columns`` or a property (views.parse_sort)."""
    return sort_query(
        columns,
        max_length=4200,
        description="a column or property:<key>; a leading '-' descends",
        also="property:[^\\u0000]+",
    )


ExecutionSort = Annotated[str, _sort(views.EXECUTION_SORTS)]
ArtifactSort = Annotated[str, _sort(views.ARTIFACT_SORTS)]


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int


class PipelineOverview(BaseModel):
    id: int
    name: str
    create_time_since_epoch: int
    last_push_time_since_epoch: int
    stage_count: int
    execution_count: int
    artifact_count: int
    stages: list[dict[str, Any]]
    artifact_types: list[dict[str, Any]]


class Column(BaseModel):
    key: str
    bag: str
    count: int
    numeric: bool


class StageColumns(BaseModel):
    pipeline: str
    stage: str
    sampled: int
    columns: list[Column]
    default_columns: list[str]


class ComparisonRow(BaseModel):
    key: str
    bag: str
    values: list[Any]
    differs: bool
    numeric: bool
    numbers: list[float | None] | None
    chart: bool


class Comparison(BaseModel):
    executions: list[dict[str, Any]]
    rows: list[ComparisonRow]


class LabelPage(BaseModel):
    artifact_id: int
    file_name: str
    columns: list[str]
    rows: list[list[str]]
    total: int
    offset: int


class ModelCard(BaseModel):
    model: dict[str, Any]
    executions: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


class TensorBoard(BaseModel):
    pipeline: str
    configured: bool
    url: str | None
    files: list[dict[str, Any]]


@router.get("/pipelines", response_model=Page, responses=errors(400, 422))
async def pipelines(pool: Pool, q: Text = None, offset: Offset = 0, limit: Limit = 100) -> Response:
    """Pipeline cards, the last pushed first: counts of stages, executions and artifacts and
    the last push's time; ``q`` keeps the names that hold it (any case)."""
    return json_response(await views.pipeline_cards(pool, q=q, offset=offset, limit=limit))


@router.get("/pipeline", response_model=PipelineOverview, responses=errors(400, 404, 422))
async def pipeline(pool: Pool, name: Name) -> Response:
    """One pipeline's card, its stages (with counts) and artifact types (with counts)."""
    return json_response(await views.pipeline_overview(pool, name))


@router.get("/stage-columns", response_model=StageColumns, responses=errors(400, 404, 422))
async def stage_columns(state: State, pipeline: Name, stage: Name) -> Response:
    """The property keys of a stage's newest 250 executions (custom ones first), whether each
    is numeric, and the columns a table opens with. ``stage`` is the full ``<pipeline>/<stage>``."""
    return json_response(
        await views.stage_columns(state.pool, pipeline, stage, kept=state.stage_columns)
    )


@router.get("/executions", response_model=Page, responses=errors(400, 404, 422))
async def executions(
    pool: Pool,
    pipeline: Name,
    stage: Name,
    q: Text = None,
    sort: ExecutionSort = "-id",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    """A numbered page of a stage's executions; ``sort`` is ``id``, ``type``,
    ``create_time_since_epoch``, ``last_update_time_since_epoch`` or ``property:<key>``."""
    return json_response(
        await views.stage_executions(
            pool,
            pipeline_name=pipeline,
            stage_name=stage,
            q=q,
            sort=sort,
            offset=offset,
            limit=limit,
        )
    )


@router.get("/compare", response_model=Comparison, responses=errors(400, 404, 422))
async def compare(
    pool: Pool,
    ids: Annotated[
        str,
        Query(
            min_length=1,
            max_length=256,
            description="1 to 10 ids, a comma list",
            # views.parse_ids: ids 1..2^63-1 (at most 19 digits), 1 to 10 of them once repeats go
            json_schema_extra={
                "pattern": r"^\s*0*[1-9][0-9]{0,17}\s*(,\s*0*[1-9][0-9]{0,17}\s*){0,9}$"
            },
        ),
    ],
) -> Response:
    """Executions side by side: a row per property with every value, whether they differ and
    (when all are numbers) the numbers to chart."""
    return json_response(await views.compare_executions(pool, ids))


@router.get("/artifacts", response_model=Page, responses=errors(400, 404, 422))
async def artifacts(
    pool: Pool,
    stored: Stored,
    pipeline: Name,
    type: Annotated[str | None, Query(max_length=4096)] = None,
    q: Text = None,
    sort: ArtifactSort = "-id",
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    """A numbered page of a pipeline's artifacts of ``type``; ``sort`` is ``id``, ``name``,
    ``uri``, ``create_time_since_epoch``, ``last_update_time_since_epoch`` or
    ``property:<key>``."""
    return json_response(
        await views.pipeline_artifacts(
            pool,
            pipeline_name=pipeline,
            type=type,
            q=q,
            sort=sort,
            offset=offset,
            limit=limit,
            stored=stored,
        )
    )


@router.get("/labels/{artifact_id}", response_model=LabelPage, responses=errors(400, 404, 422))
async def labels(
    artifact_id: Id, pool: Pool, store: Store, offset: Offset = 0, limit: Limit = 50
) -> Response:
    """A page of the label CSV of a Label artifact or of a Dataset that names one."""
    return json_response(
        await views.label_page(pool, store, artifact_id, offset=offset, limit=limit)
    )


@router.get("/model-card/{artifact_id}", response_model=ModelCard, responses=errors(404, 422))
async def model_card(artifact_id: Id, pool: Pool) -> Response:
    """A model, the executions that produced or used it, and their inputs and outputs."""
    return json_response(await views.model_card(pool, artifact_id))


@router.get(
    "/executions/{execution_id}/python-env",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **errors(400, 404, 422)},
)
async def python_env(execution_id: Id, pool: Pool, store: Store) -> StreamingResponse:
    """The python environment file the execution recorded, as text."""
    name, chunks = await views.python_env(pool, store, execution_id)
    return StreamingResponse(
        chunks,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get("/tensorboard", response_model=TensorBoard, responses=errors(400, 404, 422))
async def tensorboard(pool: Pool, state: State, store: Store, pipeline: Name) -> Response:
    """The tensorboard logs uploaded for a pipeline and where TensorBoard shows them."""
    return json_response(
        await views.tensorboard(pool, store, pipeline, state.settings.tensorboard_url)
    )
