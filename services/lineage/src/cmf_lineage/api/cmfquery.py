"""Upstream's CMFQuery REST routes that are graph questions (docs/upstream-v1.md §5–§6),
answered from the lineage graph (:mod:`cmf_lineage.cmfquery`) through the lineage cache.

Upstream's conventions: a found answer is a success envelope; an empty one (unknown name, no
parents…) is HTTP 200 with ``status: "error"``, ``code: 404`` and one ``errors`` entry; a body
that does not validate is the 422 envelope. Every ``/v1/artifacts/name/…`` route is here, the
artifact's own record too: the name may hold ``/`` (``{artifact_name:path}``), so the record
route would match every graph route's path, and the gateway sends a path to one service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictInt

from cmf_common import envelope
from cmf_common.cmfquery_bodies import ExecutionIdsRequest, ServerId, ServerIds
from cmf_common.envelope import EnvelopeRoute
from cmf_common.paging import BIGINT_MAX
from cmf_lineage import cmfquery
from cmf_lineage.api.deps import Reader
from cmf_lineage.graph_reader import ArtifactRecord
from cmf_lineage.reads import LineageReader

router = APIRouter(
    tags=["upstream v1: CMFQuery"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)

NOT_FOUND = b"null"


class ExecutionIdsWithPipelineRequest(BaseModel):
    execution_id: ServerIds
    pipeline_id: Annotated[StrictInt, Field(ge=0, le=BIGINT_MAX)] | None = None


async def _answer(
    reader: LineageReader,
    query: str,
    params: dict[str, Any],
    compute: Callable[[], Awaitable[dict[str, Any] | None]],
    message: str,
    missing: tuple[str, str, str],
) -> Response:
    """``compute``'s ``data`` (cached), or upstream's 200 ``code: 404`` with ``missing``'s
    message, field and detail when it answers ``None``."""
    body = await reader.answer(f"cmfquery-{query}", params, compute)
    if body == NOT_FOUND:
        return envelope.not_found(*missing)
    return envelope.success_json(body, message)


def _artifacts_not_found(name: str, which: str) -> tuple[str, str, str]:
    return (
        "Artifacts not found",
        "artifact_name",
        f"{which} artifacts not found for artifact '{name}'",
    )


async def _by_name(
    reader: LineageReader,
    query: str,
    artifact_name: str,
    answer: Callable[[ArtifactRecord], Awaitable[Any]],
    key: str,
    message: str,
    missing: tuple[str, str, str],
    **extra: Any,
) -> Response:
    """A question about the artifact named ``artifact_name``: ``answer``'s records under
    ``key`` (with ``total_<key>``), or the 200 ``code: 404`` when either is empty."""

    async def compute() -> dict[str, Any] | None:
        artifact = await cmfquery.artifact_named(reader.graph, artifact_name)
        found = await answer(artifact) if artifact is not None else None
        if not found:
            return None
        return {"artifact_name": artifact_name, **extra, key: found, f"total_{key}": len(found)}

    return await _answer(reader, query, {"n": artifact_name, **extra}, compute, message, missing)


# Artifacts by name (registered before the record route, which matches their paths too).


@router.get("/artifacts/name/{artifact_name:path}/dataframe")
async def artifact_dataframe(artifact_name: str, reader: Reader) -> Response:
    async def record(a: ArtifactRecord) -> Any:
        return [cmfquery.artifact_record(a)]

    return await _by_name(
        reader,
        "dataframe",
        artifact_name,
        record,
        "artifacts",
        "Artifact dataframe retrieved successfully",
        ("Artifact not found", "artifact_name", f"Artifact '{artifact_name}' not found"),
    )


@router.get("/artifacts/name/{artifact_name:path}/children")
async def children(artifact_name: str, reader: Reader, pipeline_id: int | None = None) -> Response:
    async def found(a: ArtifactRecord) -> Any:
        return await cmfquery.children(reader.graph, a, pipeline_id)

    return await _by_name(
        reader,
        "children",
        artifact_name,
        found,
        "artifacts",
        "One-hop child artifacts retrieved successfully",
        _artifacts_not_found(artifact_name, "Child"),
        pipeline_id=pipeline_id,
    )


@router.get("/artifacts/name/{artifact_name:path}/descendants")
async def descendants(artifact_name: str, reader: Reader) -> Response:
    async def found(a: ArtifactRecord) -> Any:
        return await cmfquery.linked(reader.graph, a, upstream=False)

    return await _by_name(
        reader,
        "descendants",
        artifact_name,
        found,
        "artifacts",
        "All child artifacts retrieved successfully",
        _artifacts_not_found(artifact_name, "Child"),
    )


@router.get("/artifacts/name/{artifact_name:path}/parents")
async def parents(artifact_name: str, reader: Reader) -> Response:
    async def found(a: ArtifactRecord) -> Any:
        return await cmfquery.parents(reader.graph, a)

    return await _by_name(
        reader,
        "parents",
        artifact_name,
        found,
        "artifacts",
        "One-hop parent artifacts retrieved successfully",
        _artifacts_not_found(artifact_name, "Parent"),
    )


@router.get("/artifacts/name/{artifact_name:path}/ancestors")
async def ancestors(artifact_name: str, reader: Reader) -> Response:
    async def found(a: ArtifactRecord) -> Any:
        return await cmfquery.linked(reader.graph, a, upstream=True)

    return await _by_name(
        reader,
        "ancestors",
        artifact_name,
        found,
        "artifacts",
        "All parent artifacts retrieved successfully",
        _artifacts_not_found(artifact_name, "Parent"),
    )


@router.get("/artifacts/name/{artifact_name:path}/executions")
async def artifact_executions(artifact_name: str, reader: Reader) -> Response:
    async def found(a: ArtifactRecord) -> Any:
        return await cmfquery.executions_of(reader.graph, a)

    return await _by_name(
        reader,
        "executions",
        artifact_name,
        found,
        "executions",
        "Executions for artifact retrieved successfully",
        (
            "Executions not found",
            "artifact_name",
            f"Executions not found for artifact '{artifact_name}'",
        ),
    )


@router.get("/artifacts/name/{artifact_name:path}/parent-executions")
async def parent_executions(artifact_name: str, reader: Reader) -> Response:
    async def found(a: ArtifactRecord) -> Any:
        return await cmfquery.parent_executions(reader.graph, a)

    return await _by_name(
        reader,
        "parent-executions",
        artifact_name,
        found,
        "executions",
        "All parent executions retrieved successfully",
        (
            "Executions not found",
            "artifact_name",
            f"Parent executions not found for artifact '{artifact_name}'",
        ),
    )


@router.get("/artifacts/name/{artifact_name:path}/producer-execution")
async def producer_execution(artifact_name: str, reader: Reader) -> Response:
    async def compute() -> dict[str, Any] | None:
        artifact = await cmfquery.artifact_named(reader.graph, artifact_name)
        found = await cmfquery.producer_execution(reader.graph, artifact) if artifact else None
        return {"artifact_name": artifact_name, "execution": found} if found else None

    return await _answer(
        reader,
        "producer-execution",
        {"n": artifact_name},
        compute,
        "Producer execution retrieved successfully",
        (
            "Producer execution not found",
            "artifact_name",
            f"Producer execution not found for artifact '{artifact_name}'",
        ),
    )


@router.get("/artifacts/name/{artifact_name:path}")
async def artifact(artifact_name: str, reader: Reader) -> Response:
    async def record(a: ArtifactRecord) -> Any:
        return [cmfquery.artifact_record(a)]

    return await _by_name(
        reader,
        "artifact",
        artifact_name,
        record,
        "artifacts",
        "Artifact retrieved successfully",
        ("Artifacts not found", "artifact_name", f"Artifact '{artifact_name}' not found"),
    )


# Artifacts by server id.


@router.get("/artifacts/id/{artifact_id}/parents")
async def parents_of_id(artifact_id: ServerId, reader: Reader) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.parents_of_id(reader.graph, artifact_id)
        if not found:
            return None
        return {"artifact_id": artifact_id, "artifacts": found, "total_artifacts": len(found)}

    return await _answer(
        reader,
        "id-parents",
        {"id": artifact_id},
        compute,
        "One-hop parent artifacts retrieved successfully",
        (
            "Artifacts not found",
            "artifact_id",
            f"Parent artifacts not found for artifact id {artifact_id}",
        ),
    )


@router.get("/artifacts/id/{artifact_id}/executions")
async def executions_of_id(artifact_id: ServerId, reader: Reader) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.executions_of_id(reader.graph, artifact_id)
        if not found:
            return None
        return {"artifact_id": artifact_id, "executions": found, "total_executions": len(found)}

    return await _answer(
        reader,
        "id-executions",
        {"id": artifact_id},
        compute,
        "Executions for artifact retrieved successfully",
        (
            "Executions not found",
            "artifact_id",
            f"Executions not found for artifact id {artifact_id}",
        ),
    )


# Executions.


@router.get("/executions/id/{execution_id}/parents/ids")
async def parent_execution_ids(
    execution_id: ServerId, reader: Reader, pipeline_id: int | None = None
) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.parent_execution_ids(reader.graph, execution_id, pipeline_id)
        if not found:
            return None
        return {
            "execution_id": execution_id,
            "pipeline_id": pipeline_id,
            "parent_execution_ids": found,
            "total_parent_execution_ids": len(found),
        }

    return await _answer(
        reader,
        "parent-ids",
        {"id": execution_id, "p": pipeline_id},
        compute,
        "One-hop parent execution ids retrieved successfully",
        (
            "Parent execution ids not found",
            "execution_id",
            f"Parent execution ids not found for execution id {execution_id}",
        ),
    )


@router.post("/executions/parents/batch-get")
async def parent_executions_batch(
    request: ExecutionIdsWithPipelineRequest, reader: Reader
) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.parent_executions_of(
            reader.graph, request.execution_id, request.pipeline_id
        )
        if not found:
            return None
        return {
            "execution_id": request.execution_id,
            "pipeline_id": request.pipeline_id,
            "executions": found,
            "total_executions": len(found),
        }

    return await _answer(
        reader,
        "parents-batch",
        {"ids": request.execution_id, "p": request.pipeline_id},
        compute,
        "One-hop parent executions retrieved successfully",
        (
            "Executions not found",
            "execution_id",
            f"Parent executions not found for execution ids {request.execution_id}",
        ),
    )


@router.post("/executions/ancestors/batch-get")
async def ancestor_executions_batch(
    request: ExecutionIdsWithPipelineRequest, reader: Reader
) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.ancestor_executions(
            reader.graph, request.execution_id, request.pipeline_id
        )
        if found is None:
            return None
        return {
            "execution_id": request.execution_id,
            "pipeline_id": request.pipeline_id,
            **found,
            "total_parent_executions": len(found["parent_executions"]),
        }

    return await _answer(
        reader,
        "ancestors-batch",
        {"ids": request.execution_id, "p": request.pipeline_id},
        compute,
        "All parent executions retrieved successfully",
        (
            "Parent executions not found",
            "execution_id",
            f"Parent executions not found for execution ids {request.execution_id}",
        ),
    )


@router.get("/executions/id/{execution_id}/artifacts")
async def execution_artifacts(execution_id: ServerId, reader: Reader) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.artifacts_of_execution(reader.graph, execution_id)
        if not found:
            return None
        return {"execution_id": execution_id, "artifacts": found, "total_artifacts": len(found)}

    return await _answer(
        reader,
        "execution-artifacts",
        {"id": execution_id},
        compute,
        "Artifacts for execution retrieved successfully",
        (
            "Artifacts not found",
            "execution_id",
            f"Artifacts not found for execution id {execution_id}",
        ),
    )


@router.post("/executions/artifacts/batch-get")
async def executions_artifacts_batch(request: ExecutionIdsRequest, reader: Reader) -> Response:
    async def compute() -> dict[str, Any] | None:
        found = await cmfquery.artifacts_of_executions(reader.graph, request.exe_ids)
        if not found:
            return None
        return {"exe_ids": request.exe_ids, "artifacts": found, "total_artifacts": len(found)}

    return await _answer(
        reader,
        "executions-artifacts",
        {"ids": request.exe_ids},
        compute,
        "Artifacts for executions retrieved successfully",
        (
            "Artifacts not found",
            "exe_ids",
            f"Artifacts not found for execution ids {request.exe_ids}",
        ),
    )
