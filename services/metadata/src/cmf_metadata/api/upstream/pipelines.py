"""Upstream's v1 pipeline routes (docs/upstream-v1.md §4, the UI / MCP table): thin routers over
the listings the 0.1.0 routes answer from. The lineage routes are the lineage service's."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cmf_common import envelope
from cmf_common.envelope import EnvelopeRoute
from cmf_common.errors import NotFound
from cmf_metadata import artifacts as artifact_reads
from cmf_metadata import cmfquery
from cmf_metadata import executions as execution_reads
from cmf_metadata import pipelines as pipeline_reads
from cmf_metadata.api.deps import Counts, Pool, Store
from cmf_metadata.api.upstream import records
from cmf_metadata.api.upstream.files import python_env_text
from cmf_metadata.api.upstream.requests import ArtifactByStageRequest, ExecutionByStageRequest
from cmf_metadata.filters import PageQuery

router = APIRouter(
    tags=["upstream v1: pipelines"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)


def _page(body: ArtifactByStageRequest | ExecutionByStageRequest) -> PageQuery:
    return PageQuery(body.active_page, body.record_per_page, body.sort_order, body.filter_value)


def _check_stage(body_stage: str | None, stage: str) -> None:
    if body_stage is not None and body_stage != stage:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "stage_name"),
                    "msg": "stage_name must name the stage of the path",
                }
            ]
        )


@router.get("/pipelines")
async def list_pipelines(pool: Pool) -> JSONResponse:
    return envelope.success(
        await pipeline_reads.pipeline_names(pool), "Pipelines retrieved successfully"
    )


@router.get("/pipelines/{pipeline_name}/stages")
async def pipeline_stages(pipeline_name: str, pool: Pool) -> JSONResponse:
    """[CONFLICT] resolved: the UI draft's ``{"stages", "total_stages"}`` with the CMFQuery
    draft's ``pipeline_name``; an unknown pipeline has no stages (the UI draft's answer)."""
    stages = await pipeline_reads.stage_names(pool, pipeline_name)
    return envelope.success(
        {"pipeline_name": pipeline_name, **stages}, "Pipeline stages retrieved successfully"
    )


@router.post("/pipelines/{pipeline_name}/stages/{stage:path}/artifacts/types")
async def artifact_types_by_stage(pipeline_name: str, stage: str, pool: Pool) -> JSONResponse:
    types = await artifact_reads.artifact_types_by_stage(pool, pipeline_name, stage)
    return envelope.success(types, "Artifact types retrieved successfully")


@router.post("/pipelines/{pipeline_name}/stages/{stage:path}/artifacts")
async def artifacts_by_stage(
    query_params: ArtifactByStageRequest, pipeline_name: str, stage: str, pool: Pool
) -> JSONResponse:
    _check_stage(query_params.stage_name, stage)
    page = _page(query_params)
    result = await artifact_reads.artifacts_by_stage(
        pool, pipeline_name, stage, query_params.artifact_type, query_params.sort_field, page
    )
    return envelope.success(result, "Artifacts retrieved successfully")


@router.post("/pipelines/{pipeline_name}/stages/{stage:path}/executions")
async def executions_by_stage(
    query_params: ExecutionByStageRequest,
    pipeline_name: str,
    stage: str,
    pool: Pool,
    counts: Counts,
) -> JSONResponse:
    _check_stage(query_params.stage_name, stage)
    page = _page(query_params)
    result = await execution_reads.executions_by_stage(pool, counts, pipeline_name, stage, page)
    return envelope.success(result, "Pipeline executions retrieved successfully")


@router.get("/pipelines/{pipeline_name}/artifacts")
async def pipeline_artifacts(pipeline_name: str, pool: Pool) -> JSONResponse:
    result = await records.pipeline_artifacts(pool, pipeline_name)
    return envelope.success(result, "Pipeline artifacts retrieved successfully")


@router.get("/pipelines/{pipeline_name}/executions")
async def pipeline_executions(pipeline_name: str, pool: Pool) -> JSONResponse:
    """[CONFLICT] resolved: a list (the UI draft and upstream's UI test), not the CMFQuery
    draft's ``{"pipeline_name", "executions", "total_executions"}``."""
    result = await cmfquery.pipeline_executions(pool, pipeline_name)
    if result is None:
        raise NotFound(f"Pipeline {pipeline_name} not found.")
    return envelope.success(result, "Pipeline executions retrieved successfully")


@router.get("/pipelines/{pipeline_name}/executions/list")
async def list_of_executions(pipeline_name: str, pool: Pool) -> JSONResponse:
    result = await execution_reads.list_of_executions(pool, pipeline_name)
    return envelope.success(result, "Executions retrieved successfully")


@router.get("/pipelines/{pipeline_name}/executions/{execution_uuid}/python-env")
async def execution_python_env(
    pipeline_name: str, execution_uuid: str, pool: Pool, store: Store
) -> JSONResponse:
    name = await records.python_env_name(pool, pipeline_name, execution_uuid)
    return envelope.success(
        await python_env_text(store, name), "Python environment retrieved successfully"
    )
