"""Typed domain errors and their problem+json rendering (RFC 9457).

Domain code raises these; only the HTTP boundary turns them into responses, so the domain never
imports FastAPI.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cmf_common.tracing import current_trace_id

log = structlog.get_logger(__name__)

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


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


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


# The seed's own routes (docs/api.md) answer problem+json too, at /x and /api/x. Only the
# exact paths: /executions/{pipeline} and /artifacts/{pipeline}/{type} are the reference's
# legacy routes and keep its shapes.
_SEED_ROUTES = frozenset(
    {"executions", "artifacts", "artifact_push", "artifact_pull", "display_lineage"}
)


def is_new_api(path: str) -> bool:
    """Our own API (``/api/v1/``) and the seed's routes answer problem+json; every other route
    keeps the reference shapes."""
    if path.startswith("/api/v1/") or path == "/api/v1":
        return True
    route = path.removeprefix("/api/") if path.startswith("/api/") else path.removeprefix("/")
    return route.rstrip("/") in _SEED_ROUTES or route.startswith("lineage/")


def reference_error(http_status: int, detail: Any, *, status: str | None = None) -> JSONResponse:
    """The reference server's FastAPI-style error body: ``{"detail": ...}``, with the CMF
    ``status`` word first where the client reads one."""
    body: dict[str, Any] = {"status": status} if status is not None else {}
    body["detail"] = detail
    return JSONResponse(body, status_code=http_status)


def install_problem_handlers(app: FastAPI) -> None:
    """Render errors as problem+json on ``/api/v1/`` and in the reference shapes elsewhere.

    A request validation error on a CMF route is ``422 {"status": "invalid_request",
    "detail": [...]}``: the real client reads ``status`` on every 422 (docs/api.md).
    """

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        if not is_new_api(request.url.path):
            return reference_error(exc.status, exc.detail)
        return problem(exc.status, exc.title, exc.detail, exc.code, **exc.extra)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"type": e.get("type", ""), "loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
            for e in exc.errors()
        ]
        if not is_new_api(request.url.path):
            return reference_error(422, errors, status="invalid_request")
        return problem(
            422, "Invalid request", "the request did not validate", "invalid", errors=errors
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if not is_new_api(request.url.path):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=dict(exc.headers or {})
            )
        return problem(
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            f"http_{exc.status_code}",
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request.failed", error=type(exc).__name__)
        return problem(
            500, "Internal error", "an unexpected error occurred; it has been logged", "internal"
        )

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
