"""The envelope as the error dialect of the v1 paths.

HOOK (until cmf_common.errors lets a router declare its dialect): the app's problem handlers
pick the shape by path and know nothing of the envelope, so :func:`install_envelope_errors`
wraps each of them: a request under one of the v1 prefixes is answered in the envelope, any
other goes to the handler that was there. Unknown paths and methods under a prefix reach the
HTTP-error handler as Starlette's 404/405, so they are enveloped too.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cmf_common.errors import DomainError
from cmf_metadata.api.upstream import envelope

log = structlog.get_logger(__name__)

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


def under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def render(exc: Exception) -> Response:
    """The envelope for an error raised while answering a v1 request."""
    if isinstance(exc, RequestValidationError):
        return envelope.validation_error(exc.errors())
    if isinstance(exc, DomainError):
        return envelope.error(exc.detail, exc.status)
    if isinstance(exc, StarletteHTTPException):
        return envelope.error(str(exc.detail), exc.status_code, headers=exc.headers)
    log.exception("request.failed", error=type(exc).__name__)
    return envelope.error(envelope.INTERNAL_ERROR, 500)


def install_envelope_errors(app: FastAPI, prefixes: Sequence[str]) -> None:
    """Answer errors on paths under ``prefixes`` in the envelope (call before the first request)."""
    chosen = tuple(prefixes)
    for kind in (DomainError, RequestValidationError, StarletteHTTPException, Exception):
        previous = app.exception_handlers.get(kind)

        async def handler(
            request: Request, exc: Exception, previous: Handler | None = previous
        ) -> Response:
            if under(request.url.path, chosen) or previous is None:
                return render(exc)
            answer = previous(request, exc)
            return await answer if inspect.isawaitable(answer) else answer

        app.add_exception_handler(kind, handler)
