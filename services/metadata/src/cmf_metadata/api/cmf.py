"""The CMF client's routes, in the reference server's shapes (docs/wire-contract.md §1.2), at
/x and /api/x."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from cmf_common.dialects import ReferenceRoute, errors
from cmf_common.errors import NotFound, error_items, reference_error
from cmf_common.openapi import answer, json_body
from cmf_metadata.api.deps import BigPushesOf, Committed, Pool
from cmf_metadata.big_push import (
    BigPushes,
    BigPushesBusy,
    BodyInvalid,
    DatabaseUnavailable,
    PipelineNameMissing,
)
from cmf_metadata.merge import PayloadRejected, Rejection, only_pipeline_name
from cmf_metadata.pull import ExecutionNotFound, PullQuery, pull
from cmf_metadata.push import PushOutcome, publish_committed, push, record_push
from cmf_metadata.schemas import PullRequest, PushRequest, body_errors

router = APIRouter(tags=["cmf"], route_class=ReferenceRoute)

CONSISTENCY_HEADER = "X-CMF-Consistency-Token"


def _invalid(items: list[dict[str, Any]]) -> JSONResponse:
    return reference_error(422, items, status="invalid_request")


def _value_error(field: str, message: str) -> JSONResponse:
    return _invalid([{"type": "value_error", "loc": ["body", field], "msg": message}])


def _parse_push(body: bytes) -> PushRequest:
    return PushRequest.model_validate_json(body or b"null")


@router.get("/", include_in_schema=False)
async def root() -> list[str]:
    return ["cmf-server"]


def _content_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _unavailable(detail: str, retry_after_s: int) -> JSONResponse:
    response = reference_error(503, detail)
    response.headers["Retry-After"] = str(retry_after_s)
    return response


PUSH_STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["success", "exists", "pipeline_not_exist"]}},
}
TOKEN = {
    CONSISTENCY_HEADER: {
        "description": "<percent-encoded pipeline>:<seq>, for a lineage read to wait on",
        "schema": {"type": "string"},
    }
}
# The pull document, as the reference sends it: JSON in a text/html body (or ``no_exec_uuid``).
PULL_DOCUMENT = answer({"type": "string"}, "text/html", "The MLMD JSON document, or `no_exec_uuid`")


@router.post(
    "/mlmd_push",
    openapi_extra=json_body(PushRequest),
    responses={**answer(PUSH_STATUS, headers=TOKEN), **errors(400, 413, 503)},
)
async def mlmd_push(
    request: Request, pool: Pool, committed: Committed, big: BigPushesOf
) -> Response:
    length = _content_length(request)
    if big.is_big(length):
        return await _big_push(request.stream(), big, committed)
    if length is None:
        read = await big.body_or_stream(request.stream())
        if not isinstance(read, bytes):
            return await _big_push(read, big, committed)
        body = read
    else:
        body = await request.body()
    try:
        parsed = await asyncio.to_thread(_parse_push, body)
    except ValidationError as exc:
        return _invalid(body_errors(exc))
    pipeline_name = parsed.pipeline_name
    if pipeline_name is None and parsed.id is not None:
        pipeline_name = only_pipeline_name(parsed.json_payload)  # legacy client, no name sent
    if pipeline_name is None or not pipeline_name.strip():
        return _value_error("pipeline_name", "Pipeline name must not be empty or whitespace")
    try:
        outcome = await push(
            pool,
            pipeline_name=pipeline_name,
            json_payload=parsed.json_payload,
            exec_uuid=parsed.exec_uuid,
            committed=committed,
        )
    except PayloadRejected as rejected:
        return _rejection(rejected)
    return _pushed(outcome)


async def _big_push(chunks: AsyncIterator[bytes], big: BigPushes, committed: Committed) -> Response:
    """A body over ``BIG_PUSH_BYTES``: merged in a process of its own (cmf_metadata.big_push)."""
    started = time.perf_counter()
    try:
        outcome = await big.push(chunks)
    except BigPushesBusy as busy:
        return _unavailable(
            "The server is merging as many big pushes as it may at once; try again later.",
            busy.retry_after_s,
        )
    except DatabaseUnavailable:
        return _unavailable(
            "The database is unavailable; nothing was stored. Try again later.",
            big.settings.retry_after_s,
        )
    except BodyInvalid as invalid:
        return _invalid(invalid.errors)
    except PipelineNameMissing:
        return _value_error("pipeline_name", "Pipeline name must not be empty or whitespace")
    except PayloadRejected as rejected:
        return _rejection(rejected)
    await publish_committed(outcome, committed)
    record_push(outcome, started)
    return _pushed(outcome)


def _pushed(outcome: PushOutcome) -> JSONResponse:
    headers = {}
    if outcome.consistency_token is not None:
        headers[CONSISTENCY_HEADER] = outcome.consistency_token
    return JSONResponse({"status": outcome.status.value}, headers=headers)


def _rejection(rejected: PayloadRejected) -> JSONResponse:
    if rejected.kind is Rejection.NO_PIPELINE:
        return reference_error(400, rejected.detail)
    if rejected.kind is Rejection.VERSION_UPDATE:
        return reference_error(422, "version_update", status="version_update")
    if rejected.kind is Rejection.INVALID_JSON:
        return _value_error("json_payload", str(rejected.detail))
    if isinstance(rejected.detail, list):
        return _invalid(error_items(rejected.detail, under=("body", "json_payload")))
    return _value_error("json_payload", str(rejected.detail))


async def _pull_response(pool: asyncpg.Pool, query: PullQuery) -> Response:
    try:
        document = await pull(pool, query)
    except NotFound as missing:
        return reference_error(404, missing.detail)
    except ExecutionNotFound:
        return HTMLResponse("no_exec_uuid")
    return HTMLResponse(await asyncio.to_thread(orjson.dumps, document))


@router.post(
    "/mlmd_pull",
    openapi_extra=json_body(PullRequest, required=False),
    responses={**PULL_DOCUMENT, **errors(404, 413, 503)},
)
async def mlmd_pull(request: Request, pool: Pool) -> Response:
    body = await request.body()
    try:
        parsed = PullRequest.model_validate_json(body) if body.strip() else PullRequest()
    except ValidationError as exc:
        return _invalid(body_errors(exc))
    return await _pull_response(
        pool,
        PullQuery(
            pipeline_name=parsed.pipeline_name or None,
            exec_uuid=parsed.exec_uuid or None,
            last_sync_time=parsed.last_sync_time,
        ),
    )


@router.get("/mlmd_pull/{pipeline_name}", responses={**PULL_DOCUMENT, **errors(404, 503)})
async def mlmd_pull_pipeline(
    pipeline_name: str, pool: Pool, exec_uuid: Annotated[str | None, Query(max_length=256)] = None
) -> Response:
    return await _pull_response(
        pool, PullQuery(pipeline_name=pipeline_name, exec_uuid=exec_uuid or None)
    )
