"""Upstream's CMFQuery REST routes that are table questions (docs/upstream-v1.md §4–§6), over
:mod:`cmf_metadata.cmfquery`. The graph questions, and every ``/v1/artifacts/name/…`` route,
are the lineage service's.

Upstream's conventions: a found answer is a success envelope; an empty one (unknown name, no
rows) is HTTP 200 with ``status: "error"``, ``code: 404`` and one ``errors`` entry; a body or
parameter that does not validate is the 422 envelope.

Registered after ``artifacts.router``: its ``/artifacts/types`` comes before
``/artifacts/{pipeline_name}``, as in upstream's file (a pipeline named ``types`` is out of
reach there too).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from cmf_common import envelope
from cmf_common.cmfquery_bodies import ArtifactIdsRequest, ExecutionIdsRequest, ServerId
from cmf_common.envelope import EnvelopeRoute
from cmf_metadata import cmfquery
from cmf_metadata import pipelines as pipeline_reads
from cmf_metadata.api.deps import Pool
from cmf_metadata.api.upstream import records

router = APIRouter(
    tags=["upstream v1: CMFQuery"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)

ExecUuid = Annotated[str | None, Query(max_length=256)]
PIPELINE_NOT_FOUND = "Pipeline not found"
EXECUTIONS_NOT_FOUND = "Executions not found"
STAGE_NOT_FOUND = "Executions associated with stage not found"
STAGE_EXECUTIONS = "Executions associated with pipeline stage retrieved successfully"


def _no_pipeline(pipeline_name: str) -> JSONResponse:
    return envelope.not_found(
        PIPELINE_NOT_FOUND, "pipeline_name", f"Pipeline '{pipeline_name}' not found"
    )


def _no_stage(stage_name: str) -> JSONResponse:
    return envelope.not_found(STAGE_NOT_FOUND, "stage_name", f"Stage '{stage_name}' not found")


# Pipelines (upstream's CMFQuery pipelines.py; its /stages and /executions are the UI's, §4).


@router.get("/pipelines/names")
async def pipeline_names(pool: Pool) -> JSONResponse:
    names = await pipeline_reads.pipeline_names(pool)
    if not names:
        return envelope.not_found("No pipelines found", "pipelines", "No pipelines found")
    return envelope.success(
        {"pipelines": names, "total_pipelines": len(names)},
        "Pipeline names retrieved successfully",
    )


@router.get("/pipelines/sync/{last_sync_time}/json")
async def pipelines_json(last_sync_time: int, pool: Pool) -> JSONResponse:
    """Every pipeline changed after ``last_sync_time`` (epoch ms; 0: every pipeline)."""
    return envelope.success(
        await cmfquery.pipelines_json(pool, last_sync_time), "Pipelines JSON extracted successfully"
    )


@router.get("/pipelines/{pipeline_name}/id")
async def pipeline_id(pipeline_name: str, pool: Pool) -> JSONResponse:
    found = await cmfquery.pipeline_id(pool, pipeline_name)
    if found is None:
        return _no_pipeline(pipeline_name)
    return envelope.success(
        {"pipeline_name": pipeline_name, "pipeline_id": found}, "Pipeline ID retrieved successfully"
    )


@router.get("/pipelines/{pipeline_name}/json")
async def pipeline_json(pipeline_name: str, pool: Pool, exec_uuid: ExecUuid = None) -> JSONResponse:
    document = await cmfquery.pipeline_json(pool, pipeline_name, exec_uuid or None)
    if document is None:
        return _no_pipeline(pipeline_name)
    return envelope.success(document, "Pipeline JSON retrieved successfully")


# Artifacts (upstream's artifacts.py, its CMFQuery part but for /artifacts/name/…).


@router.get("/artifacts")
async def artifact_names(pool: Pool) -> JSONResponse:
    names = await cmfquery.artifact_names(pool)
    if not names:
        return envelope.not_found(
            "No artifacts found", "artifacts", "No artifacts found in the system"
        )
    return envelope.success(
        {"artifacts": names, "total_artifacts": len(names)}, "Artifacts retrieved successfully"
    )


@router.post("/artifacts/batch-get")
async def artifacts_by_ids(request: ArtifactIdsRequest, pool: Pool) -> JSONResponse:
    found = await cmfquery.artifacts_with_ids(pool, request.artifact_ids)
    if found is None:
        return envelope.not_found(
            "Artifacts not found",
            "artifact_ids",
            f"Artifacts not found for ids {request.artifact_ids}",
        )
    return envelope.success(
        {"artifact_ids": request.artifact_ids, "artifacts": found, "total_artifacts": len(found)},
        "Artifacts retrieved successfully",
    )


@router.get("/artifacts/metrics/{metrics_name:path}")
async def metrics(metrics_name: str, pool: Pool) -> JSONResponse:
    """Always upstream's "Metrics not found": CmfQuery reads the metrics from the file the
    ``Step_Metrics`` artifact names, a file on the client's disk that no push carries (and
    cmflib 0.1.0 names none). The detail says which of the two it is."""
    file = await cmfquery.metrics_file(pool, metrics_name)
    detail = (
        f"Metrics '{metrics_name}' not found"
        if file is None
        else f"Metrics '{metrics_name}' are in the client's file '{file}', not on this server"
    )
    return envelope.not_found("Metrics not found", "metrics_name", detail)


@router.get("/artifacts/{pipeline_name}")
async def pipeline_artifacts(pipeline_name: str, pool: Pool) -> JSONResponse:
    """The pipeline's artifacts as ``GET /v1/pipelines/{p}/artifacts`` answers them (§4)."""
    found = await records.pipeline_artifacts_or_none(pool, pipeline_name)
    if not found:
        return envelope.not_found(
            "Artifacts associated with pipeline not found",
            "pipeline_name",
            f"Pipeline '{pipeline_name}' not found or has no artifacts",
        )
    return envelope.success(
        {"pipeline_name": pipeline_name, "artifacts": found, "total_artifacts": len(found)},
        "Artifacts associated with pipeline retrieved successfully",
    )


# Executions (upstream's executions.py, but for its graph questions).


def _of_stage(stage_name: str, found: list[dict[str, Any]] | None) -> JSONResponse:
    if found is None:
        return _no_stage(stage_name)
    return envelope.success(
        {"stage_name": stage_name, "executions": found, "total_executions": len(found)},
        STAGE_EXECUTIONS,
    )


@router.get("/executions/stages/name/{stage_name:path}/list")
async def stage_execution_objects(stage_name: str, pool: Pool) -> JSONResponse:
    return _of_stage(stage_name, await cmfquery.stage_execution_objects(pool, stage_name))


@router.get("/executions/stages/name/{stage_name:path}")
async def stage_executions(stage_name: str, pool: Pool) -> JSONResponse:
    return _of_stage(stage_name, await cmfquery.stage_executions(pool, stage_name))


@router.get("/executions/stages/id/{stage_id}")
async def executions_of_stage(
    stage_id: ServerId, pool: Pool, execution_uuid: ExecUuid = None
) -> JSONResponse:
    found = await cmfquery.executions_of_stage(pool, stage_id, execution_uuid)
    if found is None:
        return envelope.not_found(
            EXECUTIONS_NOT_FOUND, "stage_id", f"Executions not found for stage id {stage_id}"
        )
    return envelope.success(
        {
            "stage_id": stage_id,
            "execution_uuid": execution_uuid,
            "executions": found,
            "total_executions": len(found),
        },
        "Executions for stage retrieved successfully",
    )


@router.get("/executions/pipeline/{pipeline_name}")
async def pipeline_executions(pipeline_name: str, pool: Pool) -> JSONResponse:
    """Always a success: an unknown pipeline has no executions (upstream's answer)."""
    found = await cmfquery.pipeline_executions(pool, pipeline_name) or []
    return envelope.success(
        {"pipeline_name": pipeline_name, "executions": found, "total_executions": len(found)},
        "Pipeline executions retrieved successfully",
    )


def _of_ids(ids: list[int], found: list[dict[str, Any]] | None, message: str) -> JSONResponse:
    if found is None:
        detail = f"Executions not found for ids {ids}"
        return envelope.not_found(EXECUTIONS_NOT_FOUND, "exe_ids", detail)
    return envelope.success(
        {"exe_ids": ids, "executions": found, "total_executions": len(found)}, message
    )


@router.post("/executions/batch-get")
async def executions_by_ids(request: ExecutionIdsRequest, pool: Pool) -> JSONResponse:
    found = await cmfquery.executions_with_ids(pool, request.exe_ids)
    return _of_ids(request.exe_ids, found, "Executions retrieved successfully")


@router.post("/executions/batch-summary")
async def execution_summaries(request: ExecutionIdsRequest, pool: Pool) -> JSONResponse:
    found = await cmfquery.execution_summaries(pool, request.exe_ids)
    return _of_ids(request.exe_ids, found, "Execution summary retrieved successfully")
