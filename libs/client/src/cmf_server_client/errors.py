"""The exceptions the SDK raises.

Every answer of the server with an error status becomes a :class:`ServerError` of the class for
its status, carrying the server's own words: ``message`` is the problem's ``detail`` (our native
API and the seed's routes answer ``application/problem+json``), the reference dialect's
``detail`` or upstream's envelope ``message``; ``code`` is the problem's stable ``code`` (for
example ``artifact_not_found``), which is what a program should branch on. Failures to reach the
server at all are :class:`TransportError` (a timeout is :class:`Timeout`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "CmfServerError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnprocessableEntity",
    "error_for",
]


class CmfServerError(Exception):
    """The base of everything this package raises."""


class TransportError(CmfServerError):
    """The server could not be reached, or the connection broke."""


class Timeout(TransportError):
    """The server did not answer (connect, read, write or pool wait) within the timeout."""


class ServerError(CmfServerError):
    """The server answered an error status.

    Attributes: ``status`` (HTTP status), ``message`` (the server's explanation), ``code`` (the
    problem's stable code, when the route speaks problem+json), ``title``, ``trace_id`` (quote it
    to an operator), ``body`` (the parsed answer, or its text) and ``retry_after`` (seconds, when
    the server said).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        title: str | None = None,
        trace_id: str | None = None,
        body: Any = None,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.title = title
        self.trace_id = trace_id
        self.body = body
        self.method = method
        self.url = url
        self.retry_after = retry_after
        where = f" ({method} {url})" if method else ""
        label = f"{status} {code}" if code else str(status)
        super().__init__(f"{label}: {message}{where}")


class BadRequest(ServerError):
    """400: the request was refused as malformed."""


class Unauthorized(ServerError):
    """401: no token, or a token the server does not accept."""


class Forbidden(ServerError):
    """403: the token may not do this."""


class NotFound(ServerError):
    """404: no such pipeline, execution, artifact, blob or route."""


class Conflict(ServerError):
    """409: for example an upload whose bytes do not hash to the artifact's recorded digest."""


class UnprocessableEntity(ServerError):
    """422: the request did not validate (the server's ``errors`` are in ``body``)."""


class RateLimited(ServerError):
    """429: too many requests; raised once the retries are used up."""


class Unavailable(ServerError):
    """503: the server (or a part it needs) is unavailable; raised once the retries are used
    up."""


_BY_STATUS: dict[int, type[ServerError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: UnprocessableEntity,
    429: RateLimited,
    503: Unavailable,
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_error(found: Any) -> str:
    """``": <where>: <what>"`` of a problem's first validation error, if it lists any."""
    if not (isinstance(found, list) and found and isinstance(found[0], dict)):
        return ""
    first = found[0]
    where = ".".join(str(part) for part in first.get("loc") or [])
    what = first.get("msg") or first.get("message")
    if not what:
        return ""
    return f": {where}: {what}" if where else f": {what}"


def _message_of(status: int, body: Any) -> str:
    """The sentence the server gave, in whichever dialect it spoke."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return detail + _first_error(body.get("errors"))
        message = _text(body.get("message"))  # upstream's envelope
        if message:
            errors = body.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                first = _text(errors[0].get("message"))
                if first and first != message:
                    return f"{message}: {first}"
            return message
        if isinstance(detail, list) and detail:  # a FastAPI validation list
            return "; ".join(
                str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail
            )
        title = _text(body.get("title"))
        if title:
            return title
        status_word = _text(body.get("status"))
        if status_word:
            return status_word
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return f"HTTP {status}"


def error_for(
    status: int,
    body: Any,
    *,
    method: str = "",
    url: str = "",
    retry_after: float | None = None,
) -> ServerError:
    """The exception for an error answer: its class by status (5xx other than 503 are
    :class:`ServerError`), its message and code from the body."""
    cls = _BY_STATUS.get(status, ServerError)
    fields = body if isinstance(body, dict) else {}
    return cls(
        status,
        _message_of(status, body),
        code=_text(fields.get("code")),
        title=_text(fields.get("title")),
        trace_id=_text(fields.get("trace_id")),
        body=body,
        method=method,
        url=url,
        retry_after=retry_after,
    )
