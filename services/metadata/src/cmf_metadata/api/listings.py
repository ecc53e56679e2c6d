"""The CMF listing routes the UI and the MCP server read (docs/wire-contract.md §1.4, §1.9), at
/x and /api/x.

Query parameters are validated (a bad one is the app's 422 ``invalid_request``); pages are
bounded so one request cannot ask for the whole store.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from cmf_common.dialects import ReferenceRoute, errors
from cmf_common.openapi import answer
from cmf_common.paging import BIGINT_MAX
from cmf_metadata import artifacts as artifact_reads
from cmf_metadata import executions as execution_reads
from cmf_metadata import model_card as model_card_reads
from cmf_metadata import pipelines as pipeline_reads
from cmf_metadata.api.deps import Counts, Pool
from cmf_metadata.filters import PageQuery

router = APIRouter(tags=["listings"], route_class=ReferenceRoute, responses=errors(503))

NAMES = answer({"type": "array", "items": {"type": "string"}})
OBJECT = answer({"type": "object"})
STAGE_NAMES = answer(
    {
        "type": "object",
        "required": ["stages", "total_stages"],
        "properties": {
            "stages": {"type": "array", "items": {"type": "string"}},
            "total_stages": {"type": "integer", "minimum": 0},
        },
    }
)
# The model card: [model data, its executions, its input artifacts, its output artifacts]
# (an empty string for what an id that is no model lacks), as the reference answers it.
MODEL_CARD = answer({"type": "array", "minItems": 4, "maxItems": 4})


MAX_PAGE = 1_000_000_000
MAX_RECORDS_PER_PAGE = 1000
MAX_TEXT = 1024
SORT_ORDER = r"^(?i:asc|desc)$"

# An artifact id is a bigint: one beyond it is refused here rather than overflow in the query.
ModelId = Annotated[int, Query(ge=-BIGINT_MAX - 1, lt=BIGINT_MAX + 1)]
StageName = Annotated[str, Query(min_length=1, max_length=MAX_TEXT)]
ActivePage = Annotated[int, Query(gt=0, le=MAX_PAGE)]
RecordsPerPage = Annotated[int, Query(gt=0, le=MAX_RECORDS_PER_PAGE)]
SortOrder = Annotated[str, Query(pattern=SORT_ORDER)]
FilterValue = Annotated[str, Query(max_length=MAX_TEXT)]
LegacyArtifactSort = Literal[
    "name", "artifact_id", "uri", "create_time_since_epoch", "last_update_time_since_epoch"
]


@router.get("/pipelines", responses=NAMES)
async def pipelines(pool: Pool) -> JSONResponse:
    return JSONResponse(await pipeline_reads.pipeline_names(pool))


@router.get("/artifact_types", responses=NAMES)
async def artifact_types(pool: Pool) -> JSONResponse:
    return JSONResponse(await artifact_reads.artifact_types(pool))


@router.get("/pipeline-stages/{pipeline_name}", responses=STAGE_NAMES)
async def pipeline_stages(pipeline_name: str, pool: Pool) -> JSONResponse:
    return JSONResponse(await pipeline_reads.stage_names(pool, pipeline_name))


@router.get("/artifact-types-by-stage/{pipeline_name}", responses=NAMES)
async def artifact_types_by_stage(
    pipeline_name: str, stage_name: StageName, pool: Pool
) -> JSONResponse:
    return JSONResponse(
        await artifact_reads.artifact_types_by_stage(pool, pipeline_name, stage_name)
    )


@router.get("/executions-by-stage/{pipeline_name}", responses=OBJECT)
async def executions_by_stage(
    pipeline_name: str,
    stage_name: StageName,
    pool: Pool,
    counts: Counts,
    active_page: ActivePage = 1,
    record_per_page: RecordsPerPage = 5,
    sort_order: SortOrder = "DESC",
    filter_value: FilterValue = "",
) -> JSONResponse:
    query = PageQuery(active_page, record_per_page, sort_order, filter_value)
    return JSONResponse(
        await execution_reads.executions_by_stage(pool, counts, pipeline_name, stage_name, query)
    )


@router.get("/artifacts-by-stage/{pipeline_name}", responses=OBJECT)
async def artifacts_by_stage(
    pipeline_name: str,
    stage_name: StageName,
    artifact_type: StageName,
    pool: Pool,
    active_page: ActivePage = 1,
    record_per_page: RecordsPerPage = 5,
    sort_field: Annotated[str, Query(max_length=MAX_TEXT)] = "name",
    sort_order: SortOrder = "asc",
    filter_value: FilterValue = "",
) -> JSONResponse:
    query = PageQuery(active_page, record_per_page, sort_order, filter_value)
    return JSONResponse(
        await artifact_reads.artifacts_by_stage(
            pool, pipeline_name, stage_name, artifact_type, sort_field, query
        )
    )


@router.get("/model-card", responses=MODEL_CARD)
async def model_card(
    modelId: ModelId,  # the reference's parameter name
    pool: Pool,
) -> JSONResponse:
    return JSONResponse(await model_card_reads.model_card(pool, modelId))


@router.get("/list-of-executions/{pipeline_name}", responses={**NAMES, **errors(404)})
async def list_of_executions(pipeline_name: str, pool: Pool) -> JSONResponse:
    return JSONResponse(await execution_reads.list_of_executions(pool, pipeline_name))


@router.get("/artifacts/{pipeline_name}/{artifact_type}", responses=OBJECT)
async def pipeline_artifacts(
    pipeline_name: str,
    artifact_type: str,
    pool: Pool,
    active_page: ActivePage = 1,
    record_per_page: RecordsPerPage = 5,
    sort_field: LegacyArtifactSort = "name",
    sort_order: SortOrder = "asc",
    filter_value: FilterValue = "",
) -> JSONResponse:
    query = PageQuery(active_page, record_per_page, sort_order, filter_value)
    return JSONResponse(
        await artifact_reads.pipeline_artifacts(
            pool, pipeline_name, artifact_type, sort_field, query
        )
    )


@router.get("/executions/{pipeline_name}", responses=OBJECT)
async def pipeline_executions(
    pipeline_name: str,
    pool: Pool,
    active_page: ActivePage = 1,
    record_per_page: RecordsPerPage = 5,
    sort_field: Annotated[str, Query(max_length=MAX_TEXT)] = "Context_Type",
    sort_order: SortOrder = "asc",
    filter_value: FilterValue = "",
) -> JSONResponse:
    """``sort_field`` is accepted as the 0.1.0 server accepted it; the order is by stage."""
    query = PageQuery(active_page, record_per_page, sort_order, filter_value)
    return JSONResponse(await execution_reads.pipeline_executions(pool, pipeline_name, query))
