"""Typed domain errors and the bodies errors are answered with: problem+json (RFC 9457) and
the CMF reference server's ``{"detail": ...}``.

Domain code raises these; only the HTTP boundary turns them into responses, so the domain never
imports FastAPI. Which body a route answers is its dialect's choice (``cmf_common.dialects``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from fastapi.responses import JSONResponse

from cmf_common.tracing import current_trace_id

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """An expected failure a user can act on."""

    status: int = 400
    code: str = "invalid"
    title: str = "Invalid request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class Invalid(DomainError):
    status = 422
    code = "invalid"
    title = "Invalid request"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Unauthorized(DomainError):
    """A call without a valid principal where one is required (cmf_common.access)."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    """A principal that may not do this: a push to a pipeline outside its prefix."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class Unavailable(DomainError):
    """A dependency (PostgreSQL) is down or saturated for now: 503, sent with ``Retry-After``
    (``retry_after_s``) in every dialect."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s


DATABASE_UNAVAILABLE = "the database is unavailable for now; retry shortly"


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://cmf-server.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "trace_id": current_trace_id(),
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def reference_error(http_status: int, detail: Any, *, status: str | None = None) -> JSONResponse:
    """The reference server's FastAPI-style error body: ``{"detail": ...}``, with the CMF
    ``status`` word first where the client reads one."""
    body: dict[str, Any] = {"status": status} if status is not None else {}
    body["detail"] = detail
    return JSONResponse(body, status_code=http_status)


def error_items(
    errors: Iterable[Mapping[str, Any]],
    *,
    under: Sequence[str | int] = (),
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Pydantic's (or FastAPI's) validation errors as the items every dialect reports:
    ``{"type", "loc", "msg"}``, each ``loc`` prefixed by ``under``; the first ``limit``."""
    items = (
        {"type": e.get("type", ""), "loc": [*under, *e.get("loc", ())], "msg": e.get("msg", "")}
        for e in errors
    )
    return list(islice(items, limit))
