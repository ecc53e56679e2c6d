"""Upstream CMF's v1 response envelope (docs/upstream-v1.md §2), as plain functions, and the
error dialect that answers a v1 route's errors in it. Shared by every service that serves v1
routes (metadata and lineage), so both answer in exactly one shape.

Every v1 body is ``{status, code, data, message, errors, meta: {timestamp, pagination}}``. A
success is HTTP 200 whatever its body ``code`` says (upstream never sets a route's status code,
so an upload answers 200 with ``"code": 201``); an error's HTTP status is its ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from cmf_common.dialects import Dialect, DialectRoute
from cmf_common.errors import DomainError

VALIDATION_FAILED = "Request validation failed"
INTERNAL_ERROR = "Internal server error"

Status = Literal["success", "error", "partial"]


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str
    code: str | None = None


class PaginationMeta(BaseModel):
    page: int = 1
    per_page: int = 10
    total: int = 0
    has_next: bool = False
    has_prev: bool = False


class ResponseMeta(BaseModel):
    timestamp: str
    pagination: PaginationMeta | None = None


class Envelope(BaseModel):
    """The body every v1 route answers (for ``/openapi.json``; the builders below write it)."""

    status: Status
    code: int
    data: Any = None
    message: str = ""
    errors: list[ErrorDetail] = []
    meta: ResponseMeta


ENVELOPE_SCHEMA = {"$ref": "#/components/schemas/Envelope"}
# Declared on every v1 router, so the documented answers are the ones sent.
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Envelope, "description": "Success (HTTP 200 whatever the body's code)"},
    422: {"model": Envelope, "description": VALIDATION_FAILED},
    "4XX": {"model": Envelope, "description": "The request cannot be answered"},
    503: {"model": Envelope, "description": "A dependency is down or behind (see Retry-After)"},
}


def timestamp() -> str:
    """Now in UTC as upstream writes it: ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def error_detail(message: str, field: str | None = None, code: str | None = None) -> dict[str, Any]:
    """One entry of ``errors`` (upstream's ``ErrorDetail``): all three keys, always."""
    return {"field": field, "message": message, "code": code}


def envelope(
    status: Status,
    code: int,
    *,
    data: Any = None,
    message: str = "",
    errors: Sequence[Mapping[str, Any]] = (),
    pagination: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "code": code,
        "data": data,
        "message": message,
        "errors": [dict(e) for e in errors],
        "meta": {"timestamp": timestamp(), "pagination": dict(pagination) if pagination else None},
    }


def success(
    data: Any = None,
    message: str = "Success",
    code: int = 200,
    pagination: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """``success_response``: HTTP 200 even when ``code`` is 201."""
    return JSONResponse(
        envelope("success", code, data=data, message=message, pagination=pagination),
        headers=dict(headers) if headers else None,
    )


def error(
    message: str = "Error",
    code: int = 400,
    errors: Sequence[Mapping[str, Any]] = (),
    data: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """``error_response``, sent with HTTP status ``code`` (upstream's exception handlers)."""
    return JSONResponse(
        envelope("error", code, data=data, message=message, errors=errors),
        status_code=code,
        headers=dict(headers) if headers else None,
    )


def field_of(loc: Sequence[Any]) -> str:
    """Upstream's field name: the location without its first part (``body``, ``query``),
    dotted; the first part alone when there is nothing else."""
    rest = ".".join(str(part) for part in loc[1:])
    return rest or (str(loc[0]) if loc else "")


def validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        error_detail(str(e.get("msg", "")), field_of(tuple(e.get("loc", ()))), e.get("type"))
        for e in errors
    ]


def validation_error(errors: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """A 422 as upstream's ``RequestValidationError`` handler answers it."""
    return error(VALIDATION_FAILED, 422, validation_errors(errors))


def success_json(data_json: bytes, message: str = "Success", code: int = 200) -> Response:
    """``success`` around ``data`` already serialised as JSON (a cached answer), spliced in
    as it is rather than parsed and written again. The keys come in ``envelope``'s order."""
    head = json.dumps({"status": "success", "code": code}, separators=(",", ":"))[:-1]
    tail = json.dumps(
        {"message": message, "errors": [], "meta": {"timestamp": timestamp(), "pagination": None}},
        separators=(",", ":"),
    )[1:]
    body = b"".join((head.encode(), b',"data":', data_json, b",", tail.encode()))
    return Response(content=body, media_type="application/json")


class EnvelopeDialect(Dialect):
    """Upstream's ``{status, code, data, message, errors, meta}``, sent with HTTP status
    ``code`` (upstream's exception handlers)."""

    name = "upstream-v1"

    def error_content(self) -> dict[str, Any]:
        return {"model": Envelope}

    def domain_error(self, exc: DomainError) -> JSONResponse:
        return error(exc.detail, exc.status)

    def invalid_request(self, errors: list[dict[str, Any]]) -> JSONResponse:
        return validation_error(errors)

    def http_error(self, status: int, detail: Any, headers: dict[str, str]) -> JSONResponse:
        return error(str(detail), status, headers=headers)

    def internal_error(self) -> JSONResponse:
        return error(INTERNAL_ERROR, 500)


ENVELOPE = EnvelopeDialect()


class EnvelopeRoute(DialectRoute):
    """The route class of every v1 router: its errors answer in the envelope."""

    dialect = ENVELOPE


def not_found(message: str, field: str, detail: str) -> JSONResponse:
    """The CMFQuery routes' empty answer: upstream *returns* ``error_response(code=404)``
    rather than raising it, so it goes out with HTTP 200."""
    return JSONResponse(
        envelope("error", 404, message=message, errors=[error_detail(detail, field)])
    )
