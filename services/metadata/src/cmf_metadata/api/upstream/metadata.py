"""``/v1/mlmd/push`` and ``/v1/mlmd/pull`` (docs/upstream-v1.md §3): the 0.1.0 push and pull,
answered in the envelope (the pull, as upstream's, in the raw MLMD JSON)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from cmf_common import envelope
from cmf_common.envelope import EnvelopeRoute
from cmf_common.openapi import json_body
from cmf_metadata.api.cmf import CONSISTENCY_HEADER
from cmf_metadata.api.deps import Committed, Pool
from cmf_metadata.api.upstream.requests import MLMDPullRequest, MLMDPushRequest
from cmf_metadata.merge import PayloadRejected, Rejection
from cmf_metadata.pull import ExecutionNotFound, PullQuery, pull
from cmf_metadata.push import push

router = APIRouter(
    tags=["upstream v1: metadata"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)

NO_PIPELINE = "Invalid JSON payload. The pipeline name is missing."
VERSION_UPDATE = "version_update"


def _parse_push(body: bytes) -> MLMDPushRequest:
    return MLMDPushRequest.model_validate_json(body or b"null")


def _invalid(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [
            {**e, "loc": ("body", *e["loc"])}
            for e in exc.errors(include_url=False, include_input=False)
        ][:50]
    )


@router.post("/mlmd/push", openapi_extra=json_body(MLMDPushRequest))
async def metadata_push(request: Request, pool: Pool, committed: Committed) -> JSONResponse:
    """The body is parsed in a thread, as ``/mlmd_push`` parses it: a push may be large."""
    try:
        parsed = await asyncio.to_thread(_parse_push, await request.body())
    except ValidationError as exc:
        raise _invalid(exc) from exc
    try:
        outcome = await push(
            pool,
            pipeline_name=parsed.pipeline_name,
            json_payload=parsed.json_payload,
            exec_uuid=parsed.exec_uuid,
            committed=committed,
        )
    except PayloadRejected as rejected:
        return _rejection(rejected)
    token = outcome.consistency_token
    return envelope.success(
        {"status": outcome.status.value},
        "MLMD pushed successfully",
        headers={CONSISTENCY_HEADER: token} if token is not None else None,
    )


def _rejection(rejected: PayloadRejected) -> JSONResponse:
    if rejected.kind is Rejection.NO_PIPELINE:
        return envelope.error(NO_PIPELINE, 400)
    if rejected.kind is Rejection.VERSION_UPDATE:
        return envelope.error(VERSION_UPDATE, 422)
    if isinstance(rejected.detail, list):
        details: list[dict[str, Any]] = [
            {**e, "loc": ["body", "json_payload", *e["loc"]]} for e in rejected.detail
        ]
    else:
        details = [
            {"type": "value_error", "loc": ["body", "json_payload"], "msg": str(rejected.detail)}
        ]
    return envelope.validation_error(details)


@router.post(
    "/mlmd/pull",
    response_class=HTMLResponse,
    openapi_extra=json_body(MLMDPullRequest),
    responses={
        200: {
            "description": "The MLMD JSON document in a text/html body, or `no_exec_uuid`",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **{
            status: {
                "description": envelope.RESPONSES[status]["description"],
                "content": {"application/json": {"schema": envelope.ENVELOPE_SCHEMA}},
            }
            for status in (422, "4XX", 503)
        },
    },
)
async def metadata_pull(request: Request, pool: Pool) -> Response:
    """The MLMD JSON in a ``text/html`` body, ``no_exec_uuid`` for an unknown execution, as
    ``/mlmd_pull``; an unknown pipeline is an enveloped 404. The body is parsed here, as
    ``/mlmd_pull`` parses it (FastAPI's body machinery costs a request more)."""
    try:
        info = MLMDPullRequest.model_validate_json(await request.body() or b"null")
    except ValidationError as exc:
        raise _invalid(exc) from exc
    try:
        document = await pull(
            pool,
            PullQuery(
                pipeline_name=info.pipeline_name or None,
                exec_uuid=info.exec_uuid or None,
                last_sync_time=info.last_sync_time,
            ),
        )
    except ExecutionNotFound:
        return HTMLResponse("no_exec_uuid")
    return HTMLResponse(await asyncio.to_thread(orjson.dumps, document))
