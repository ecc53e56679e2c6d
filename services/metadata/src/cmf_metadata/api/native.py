"""``/api/native/v1/``: our own query API over the metadata store, and what other services call.

Every error is ``application/problem+json`` with a stable ``code`` and the ``trace_id``. Lists
answer ``{"items", "total", "next_cursor"}``; pass ``next_cursor`` back as ``cursor`` with the
same filters for the next page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from cmf_common.access import current_prefix
from cmf_common.db import json_dumps
from cmf_common.dialects import ProblemRoute, errors
from cmf_common.openapi import answer
from cmf_common.outbox import committed_seqs
from cmf_common.paging import BIGINT_MAX, MAX_CURSOR_CHARS
from cmf_metadata import artifacts as artifact_reads
from cmf_metadata import executions as execution_reads
from cmf_metadata import export as metadata_export
from cmf_metadata import filters, paging
from cmf_metadata import pipelines as pipeline_reads
from cmf_metadata.api.deps import Pool, Stored

router = APIRouter(tags=["metadata"], route_class=ProblemRoute, responses=errors(503))

Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
Name = Annotated[str | None, Query(max_length=4096)]
Limit = Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)]
EpochMs = Annotated[int | None, Query(ge=-BIGINT_MAX - 1, le=BIGINT_MAX)]
Properties = Annotated[
    list[str] | None,
    Query(
        max_length=filters.MAX_PROPERTY_FILTERS,
        description="key:value, repeatable; the key ends at the first colon",
        json_schema_extra={"items": {"type": "string", "pattern": "^[^:\\u0000]+:[^\\u0000]*$"}},
    ),
]
Text = Annotated[str | None, Query(max_length=1024, description="free text, matched literally")]


def sort_query(
    fields: Sequence[str],
    *,
    max_length: int = 64,
    description: str = "a field; a leading '-' sorts descending",
    also: str | None = None,
) -> Any:
    """The ``sort`` parameter of a list sorted by one of ``fields`` (or what the regex ``also``
    matches), a leading ``-`` for descending; its OpenAPI pattern says which."""
    choices = "|".join([*fields, *([also] if also else [])])
    return Query(
        max_length=max_length,
        description=description,
        json_schema_extra={"pattern": f"^-?({choices})$"},
    )


ExecutionSort = Annotated[str, sort_query(execution_reads.SORT_FIELDS)]
ArtifactSort = Annotated[str, sort_query(artifact_reads.SORT_FIELDS)]

# The answers' shapes (docs/api.md): a list's page, and the objects whose fields the reads own.
OBJECT: dict[str, Any] = {"type": "object"}


def _page_of(item: dict[str, Any], total: bool = True) -> dict[int | str, dict[str, Any]]:
    keys = ["items", "next_cursor", *(["total"] if total else [])]
    properties: dict[str, Any] = {
        "items": {"type": "array", "items": item},
        "next_cursor": {"type": ["string", "null"]},
    }
    if total:
        properties["total"] = {"type": "integer", "minimum": 0}
    return answer({"type": "object", "required": keys, "properties": properties})


PAGE = _page_of(OBJECT)
SEED_PAGE = _page_of(OBJECT, total=False)
LIST_ERRORS = errors(404)  # a pipeline filter naming no pipeline


def json_response(body: Any) -> Response:
    return Response(json_dumps(body), media_type="application/json")


@router.get("/pipelines", responses=PAGE)
async def pipelines(
    pool: Pool, limit: Limit = paging.DEFAULT_LIMIT, cursor: Cursor = None
) -> Response:
    """Pipelines by name, with counts of stages, executions and artifacts and the last push."""
    return json_response(await pipeline_reads.list_pipelines(pool, limit=limit, cursor=cursor))


SEQUENCE = {
    "type": "object",
    "required": ["pipeline", "seq"],
    "properties": {"pipeline": {"type": "string"}, "seq": {"type": "integer", "minimum": 0}},
}
SEQUENCES = {
    "type": "object",
    "required": ["pipelines"],
    "properties": {"pipelines": {"type": "object", "additionalProperties": {"type": "integer"}}},
}
STAGES = {
    "type": "object",
    "required": ["pipeline", "items"],
    "properties": {"pipeline": {"type": "string"}, "items": {"type": "array", "items": OBJECT}},
}


@router.get("/pipelines/{pipeline:path}/sequence", responses=answer(SEQUENCE))
async def pipeline_sequence(pipeline: str, pool: Pool) -> Response:
    """The pipeline's committed outbox sequence (0 when nothing was pushed): what lineage reads
    wait for when the board fails them (cmf_common.committed)."""
    async with pool.acquire() as conn:
        seqs = await committed_seqs(conn, pipeline, prefix=current_prefix())
    return json_response({"pipeline": pipeline, "seq": seqs.get(pipeline, 0)})


@router.get("/pipeline-sequences", responses=answer(SEQUENCES))
async def pipeline_sequences(pool: Pool) -> Response:
    """Every pipeline's committed outbox sequence, by name."""
    async with pool.acquire() as conn:
        return json_response({"pipelines": await committed_seqs(conn, prefix=current_prefix())})


@router.get("/pipelines/{pipeline:path}/stages", responses={**answer(STAGES), **errors(404)})
async def pipeline_stages(pipeline: str, pool: Pool) -> Response:
    return json_response(await pipeline_reads.list_stages(pool, pipeline))


def list_query(
    pipeline: Name = None,
    stage: Name = None,
    type: Name = None,
    property: Properties = None,
    created_after: EpochMs = None,
    created_before: EpochMs = None,
    q: Text = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> filters.ListQuery:
    """The query parameters both lists take (each its own ``sort``)."""
    return filters.ListQuery(
        pipeline=pipeline,
        stage=stage,
        type=type,
        properties=tuple(property or ()),
        created_after=created_after,
        created_before=created_before,
        q=q,
        limit=limit,
        cursor=cursor,
    )


ListParameters = Annotated[filters.ListQuery, Depends(list_query)]


@router.get("/executions", responses={**PAGE, **LIST_ERRORS})
async def executions(pool: Pool, query: ListParameters, sort: ExecutionSort = "id") -> Response:
    """Executions filtered by pipeline, stage (full name), type, property equality, creation
    time (epoch ms: ``created_after`` inclusive, ``created_before`` exclusive) and free text
    ``q`` (case-insensitive, in any property value: the uuid and the stage are among them);
    sorted by ``sort``."""
    return json_response(await execution_reads.list_executions(pool, replace(query, sort=sort)))


@router.get("/executions/{execution_id}", responses={**answer(OBJECT), **errors(404)})
async def execution(execution_id: Id, pool: Pool) -> Response:
    """One execution with its events and the artifact of each."""
    return json_response(await execution_reads.get_execution(pool, execution_id))


@router.get("/artifacts", responses={**PAGE, **LIST_ERRORS})
async def artifacts(
    pool: Pool,
    stored: Stored,
    common: ListParameters,
    uri: Name = None,
    name: Name = None,
    sort: ArtifactSort = "id",
) -> Response:
    """Artifacts, with the filters of ``/executions`` plus the exact lookups the artifact
    service makes: ``uri`` (the content hash), and ``pipeline`` with ``name``."""
    query = filters.ArtifactQuery(**{**asdict(common), "sort": sort}, uri=uri, name=name)
    return json_response(await artifact_reads.list_artifacts(pool, query, stored))


@router.get("/artifacts/{artifact_id}", responses={**answer(OBJECT), **errors(404)})
async def artifact(
    artifact_id: Id,
    pool: Pool,
    stored: Stored,
    events: Annotated[
        int, Query(ge=0, le=artifact_reads.MAX_EVENTS)
    ] = artifact_reads.DEFAULT_EVENTS,
) -> Response:
    """One artifact with its first ``events`` events and the execution of each."""
    return json_response(
        await artifact_reads.get_artifact(pool, artifact_id, event_limit=events, stored=stored)
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses=answer(
        {"type": "string"}, "application/x-ndjson", "One event envelope (JSON) a line"
    ),
)
async def export(
    pool: Pool,
    cursor: Cursor = None,
    limit: Annotated[
        int, Query(ge=1, le=metadata_export.MAX_EXPORT_LINES)
    ] = metadata_export.DEFAULT_EXPORT_LINES,
) -> StreamingResponse:
    """Every entity, pipeline by pipeline, as NDJSON event envelopes (see
    :func:`cmf_metadata.export.export_lines`); resume with a line's ``export_cursor``."""
    lines = metadata_export.export_lines(pool, cursor=cursor, limit=limit)
    # Read the first line before answering, so a failure to read is an error status rather
    # than a 200 with a cut body.
    first = await anext(lines, None)

    async def body() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield first
        async for line in lines:
            yield line

    return StreamingResponse(
        body(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"}
    )
