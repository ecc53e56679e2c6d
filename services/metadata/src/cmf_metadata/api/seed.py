"""The seed's listing routes (``docs/api.md``), at ``/x`` and ``/api/x``.

``GET /executions`` and ``GET /artifacts`` page by an opaque ``next_cursor``. Their errors are
``application/problem+json``; ``/executions/{pipeline}`` and ``/artifacts/{pipeline}/{type}``
are other routes, the reference server's legacy ones, with the reference's shapes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cmf_common.dialects import ProblemRoute, errors
from cmf_common.paging import MAX_CURSOR_CHARS
from cmf_metadata import artifacts as artifact_reads
from cmf_metadata import executions as execution_reads
from cmf_metadata import paging
from cmf_metadata.api.deps import Pool, Stored
from cmf_metadata.api.native import LIST_ERRORS, SEED_PAGE, json_response

router = APIRouter(
    tags=["seed"], route_class=ProblemRoute, responses={**SEED_PAGE, **LIST_ERRORS, **errors(503)}
)

Name = Annotated[str | None, Query(max_length=4096)]
Limit = Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)]


@router.get("/executions")
async def executions(
    pool: Pool,
    pipeline_name: Name = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Executions in id order: ``{"items": [...], "next_cursor": null | str}``."""
    return json_response(
        await execution_reads.seed_executions(
            pool, pipeline_name=pipeline_name, limit=limit, cursor=cursor
        )
    )


@router.get("/artifacts")
async def artifacts(
    pool: Pool,
    stored: Stored,
    pipeline_name: Name = None,
    type: Name = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Artifacts in id order, each with ``stored``: whether the artifact service holds its
    bytes."""
    return json_response(
        await artifact_reads.seed_artifacts(
            pool,
            pipeline_name=pipeline_name,
            type_name=type,
            limit=limit,
            cursor=cursor,
            stored=stored,
        )
    )
