"""Error dialects, declared by the routes, and the route table that finds a path's owner.

One server speaks several API dialects (docs/api.md): the CMF reference routes at ``/x`` and
``/api/x``, the seed's and our own (problem+json), upstream's v1 generation (its envelope).
Each answers errors in its own shape. A router declares its dialect by its route class
(``APIRouter(route_class=ProblemRoute)``); the exception handlers read it from the matched
route (``request.scope["route"]``), so no shared code knows any path.

A path no route matches (a 404), and a request refused before routing (the body limit's
413), have no route to ask. They take the dialect of the *prefix owner*: the routes whose
leading literal segments (those before the first ``{parameter}``) share the longest run with
the path's segments, when those routes agree on one dialect; else, and when no route shares a
segment, the CMF reference dialect (the reference server's own 404 ``{"detail": "Not
Found"}``). So ``/api/native/v1/nothing`` answers problem+json (every route of our own API
does), ``/api/v1/nothing`` upstream's envelope, and ``/api/nothing`` the reference's shape (the
``/api/`` routes disagree). The gateway finds the service of a path the same way
(:meth:`RouteTable.resolve`).
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path

from cmf_common.db import OUTAGE_ERRORS, is_outage
from cmf_common.errors import (
    DATABASE_UNAVAILABLE,
    PROBLEM_JSON,
    DomainError,
    Unavailable,
    error_items,
    problem,
    reference_error,
)

log = structlog.get_logger(__name__)


class OutageLog:
    """Requests failed by a dependency's outage (the database's, or another ``event``),
    logged as one line when the first fails and then at most one per ``every_s`` with how many
    failed meanwhile (not a traceback per request; the loops log the outage's end,
    ``dependency.available``)."""

    def __init__(self, every_s: float = 30.0, event: str = "request.database_unavailable") -> None:
        self.every_s = every_s
        self.event = event
        self.logged_at: float | None = None
        self.unlogged = 0

    def report(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.logged_at is not None and now - self.logged_at < self.every_s:
            self.unlogged += 1
            return
        log.warning(
            self.event,
            error=f"{type(exc).__name__}: {exc}"[:300],
            failed_since_last=self.unlogged,
        )
        self.logged_at, self.unlogged = now, 0


DATABASE_OUTAGES = OutageLog()


class Dialect(ABC):
    """How one API dialect answers errors, and how ``/openapi.json`` shows those answers."""

    name: ClassVar[str]

    @abstractmethod
    def error_content(self) -> dict[str, Any]:
        """An OpenAPI response's ``content`` (or a FastAPI ``model``) for this dialect's error
        bodies: what :meth:`DialectRoute` puts on each error status a route declares."""

    @abstractmethod
    def domain_error(self, exc: DomainError) -> JSONResponse: ...

    @abstractmethod
    def invalid_request(self, errors: list[dict[str, Any]]) -> JSONResponse:
        """A request that did not validate (``errors`` as :func:`error_items` makes them)."""

    @abstractmethod
    def http_error(self, status: int, detail: Any, headers: dict[str, str]) -> JSONResponse: ...

    def internal_error(self) -> JSONResponse:
        """An unexpected exception (logged by the handler): problem+json unless the dialect
        has a 500 of its own."""
        return problem(
            500, "Internal error", "an unexpected error occurred; it has been logged", "internal"
        )


class ReferenceDialect(Dialect):
    """The CMF reference server's FastAPI-style bodies: ``{"detail": ...}``. A validation 422
    is ``{"status": "invalid_request", "detail": [...]}``: the real client reads ``status`` on
    every 422."""

    name = "cmf"

    def error_content(self) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": REFERENCE_ERROR_SCHEMA}}}

    def domain_error(self, exc: DomainError) -> JSONResponse:
        return reference_error(exc.status, exc.detail)

    def invalid_request(self, errors: list[dict[str, Any]]) -> JSONResponse:
        return reference_error(422, errors, status="invalid_request")

    def http_error(self, status: int, detail: Any, headers: dict[str, str]) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class ProblemDialect(Dialect):
    """Ours and the seed's routes: ``application/problem+json`` (RFC 9457)."""

    name = "problem"

    def error_content(self) -> dict[str, Any]:
        return {"content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}

    def domain_error(self, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.code, **exc.extra)

    def invalid_request(self, errors: list[dict[str, Any]]) -> JSONResponse:
        return problem(
            422, "Invalid request", "the request did not validate", "invalid", errors=errors
        )

    def http_error(self, status: int, detail: Any, headers: dict[str, str]) -> JSONResponse:
        return problem(status, str(detail), str(detail), f"http_{status}", headers=headers)


REFERENCE = ReferenceDialect()
PROBLEM = ProblemDialect()
DEFAULT_DIALECT: Dialect = REFERENCE


_ERROR_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "loc", "msg"],
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
    },
}
# The reference's ``{"detail": ...}``: a sentence, or (a 422 that did not validate, with
# ``"status": "invalid_request"``) the list of what did not.
REFERENCE_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "status": {"type": "string"},
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": _ERROR_ITEM_SCHEMA}]},
    },
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "trace_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "trace_id": {"type": ["string", "null"]},
        "errors": {"type": "array", "items": _ERROR_ITEM_SCHEMA},
    },
}

# What every route may answer whatever it does: a parameter the edge refuses (a NUL byte, an
# integer beyond int64: cmf_common.parameters) or that does not validate.
COMMON_ERRORS: dict[int | str, str] = {422: "The request did not validate"}
BODY_NOT_JSON = "The body is not JSON"
UNAVAILABLE = "A dependency is down or behind (Retry-After says when to try again)"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the error statuses a route answers, each in its route's dialect
    (:class:`DialectRoute` fills the bodies in): ``errors(404, 413)``."""
    return {
        status: {"description": UNAVAILABLE if status == 503 else HTTPStatus(status).phrase}
        for status in statuses
    }


class DialectRoute(APIRoute):
    """A route that declares the dialect its errors are answered in.

    Its OpenAPI says so too: every error status it declares (``responses=``, e.g. through
    :func:`errors`) without a body of its own gets the dialect's, and the statuses every route
    may answer (:data:`COMMON_ERRORS`) are added.
    """

    dialect: ClassVar[Dialect]

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        responses: dict[int | str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        declared = {status: dict(response) for status, response in (responses or {}).items()}
        for status, description in COMMON_ERRORS.items():
            declared.setdefault(status, {"description": description})
        for status, response in declared.items():
            if str(status)[0] in "45" and not {"content", "model"} & response.keys():
                response.update(self.dialect.error_content())
        super().__init__(path, endpoint, responses=declared, **kwargs)
        if self.body_field is not None and 400 not in self.responses:
            # A body FastAPI parses that is no JSON at all: its 400.
            self.responses[400] = {"description": BODY_NOT_JSON, **self.dialect.error_content()}


class ReferenceRoute(DialectRoute):
    dialect = REFERENCE


class ProblemRoute(DialectRoute):
    dialect = PROBLEM


_UNNAMED = re.compile(r"\(\?P<[^>]+>")


def _segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/") if s)


def _literal_prefix(path: str) -> tuple[str, ...]:
    prefix: list[str] = []
    for segment in _segments(path):
        if "{" in segment:
            break
        prefix.append(segment)
    return tuple(prefix)


def _shared(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Entry:
    """One route as an app serves it: its full path (prefixes included), methods, the route
    object its router declared (whose class may carry a dialect), and its owner."""

    owner: str
    path: str
    methods: frozenset[str]
    route: BaseRoute
    regex: re.Pattern[str] = field(compare=False, repr=False)

    @property
    def dialect(self) -> Dialect | None:
        return self.route.dialect if isinstance(self.route, DialectRoute) else None


def _flattened(routes: Sequence[BaseRoute]) -> Iterator[tuple[str | None, Any, BaseRoute]]:
    """(full path, methods, the route its router declared) of each route. FastAPI 0.165 keeps
    an included router as one entry of ``app.routes`` (``iter_route_contexts`` flattens them);
    before, ``include_router`` copied each route with its full path."""
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)
    if flatten is None:
        for route in routes:
            yield getattr(route, "path", None), getattr(route, "methods", None), route
        return
    for context in flatten(routes):
        yield context.path, context.methods, context.original_route


def served_routes(owner: str, routes: Sequence[BaseRoute]) -> Iterator[Entry]:
    """Every route of ``routes`` (an app's, its included routers flattened) with a path."""
    for path, methods, route in _flattened(routes):
        if path is None:
            continue
        regex, _, _ = compile_path(path)
        yield Entry(owner, path, frozenset(methods or ()), route, regex)


class RouteTable:
    """Every route that declares a dialect, by owner, read off the owners' own routes."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = tuple(e for e in entries if e.dialect is not None)
        self._prefixes = tuple((_literal_prefix(e.path), e) for e in self.entries)
        # Every route's pattern in one alternation, so a path is matched in one regex call
        # (a loop over a hundred patterns cost ~28 us a path; this ~2).
        self._any = re.compile(
            "|".join(
                f"(?P<r{i}>{_UNNAMED.sub('(?:', e.regex.pattern)})"
                for i, e in enumerate(self.entries)
            )
            or "(?!)"
        )
        self._lookup = lru_cache(maxsize=4096)(self._find)

    @classmethod
    def of(cls, routes: Mapping[str, Sequence[BaseRoute]]) -> RouteTable:
        """The table of ``{owner: its app's routes}``; routes without a dialect (health,
        metrics: each process's own) are not in it."""
        return cls(e for owner, owned in routes.items() for e in served_routes(owner, owned))

    def matching(self, path: str) -> list[Entry]:
        """The first route whose path matches ``path`` (any method), with or without its
        trailing slash, in the owners' order and each owner's (as a router tries them)."""
        other = path.rstrip("/") if path.endswith("/") and path != "/" else path + "/"
        found = self._any.match(path) or self._any.match(other)
        if found is None or found.lastgroup is None:
            return []
        return [self.entries[int(found.lastgroup[1:])]]

    def prefix_owners(self, path: str) -> list[Entry]:
        """The routes whose literal prefix shares the longest run of segments (one at least)
        with ``path``'s."""
        segments = _segments(path)
        runs = [(_shared(prefix, segments), e) for prefix, e in self._prefixes]
        longest = max((n for n, _ in runs), default=0)
        return [e for n, e in runs if n == longest] if longest else []

    def _find(self, path: str) -> tuple[str | None, Dialect]:
        entries = self.matching(path) or self.prefix_owners(path)
        owners = {e.owner for e in entries}
        dialects = {e.dialect for e in entries if e.dialect is not None}
        return (
            owners.pop() if len(owners) == 1 else None,
            dialects.pop() if len(dialects) == 1 else DEFAULT_DIALECT,
        )

    def resolve(self, path: str) -> str | None:
        """The owner that answers ``path``: the one whose route matches it, else the prefix
        owner; ``None`` when no one or more than one owns it."""
        return self._lookup(path)[0]

    def dialect_of(self, path: str) -> Dialect:
        """The dialect of ``path`` when no route says (see the module's docstring)."""
        return self._lookup(path)[1]


# Each app's routes by the route object its router declared, with every full path it is served
# at (one router may be included at several prefixes), rebuilt when routes are added.
_BY_ROUTE: WeakKeyDictionary[FastAPI, tuple[int, dict[int, list[Entry]]]] = WeakKeyDictionary()


def full_route_path(app: FastAPI, route: BaseRoute, path: str) -> str | None:
    """The full template (prefixes included) at which ``app`` served ``path`` with
    ``route``, the route its router matched (``scope["route"]``, which names only the path
    within its own router); ``None`` when ``route`` is not one of ``app``'s."""
    cached = _BY_ROUTE.get(app)
    if cached is None or cached[0] != len(app.routes):
        by_route: dict[int, list[Entry]] = {}
        for entry in served_routes(app.title, app.routes):
            by_route.setdefault(id(entry.route), []).append(entry)
        cached = (len(app.routes), by_route)
        _BY_ROUTE[app] = cached
    for entry in cached[1].get(id(route), ()):
        if entry.regex.match(path):
            return entry.path
    return None


def app_dialects(app: FastAPI) -> Callable[[str], Dialect]:
    """``path -> dialect`` over ``app``'s own routes (read when first needed: routes are
    added after the handlers are installed)."""
    tables: dict[int, RouteTable] = {}

    def dialect_of(path: str) -> Dialect:
        key = len(app.routes)
        if key not in tables:
            tables.clear()
            tables[key] = RouteTable.of({app.title: app.routes})
        return tables[key].dialect_of(path)

    return dialect_of


def allowed_methods(app: FastAPI, path: str) -> str:
    """The methods of ``path``'s route, for a 405's ``Allow``: of every route declared with
    ``path`` itself, else with the path of the first route that matches it, as
    ``/openapi.json`` lists them under that path. Starlette's names only the first matching
    route's, and a path may have a route per method (``GET`` and ``POST /python-env``) or lie
    under another's template (``/blobs/stored`` under ``/blobs/{digest}``)."""
    matching = [e for e in served_routes(app.title, app.routes) if e.regex.match(path)]
    if not matching:
        return ""
    own = path if any(e.path == path for e in matching) else matching[0].path
    return ", ".join(sorted({m for e in matching if e.path == own for m in e.methods}))


def install_error_handlers(app: FastAPI, unmatched: Callable[[str], Dialect] | None = None) -> None:
    """Answer each error in its route's dialect; a path without a route in the dialect
    ``unmatched`` gives it (default: its prefix owner among ``app``'s routes)."""
    fallback = unmatched or app_dialects(app)

    def dialect(request: Request) -> Dialect:
        route = request.scope.get("route")
        if isinstance(route, DialectRoute):
            return route.dialect
        return fallback(request.url.path)

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        response = dialect(request).domain_error(exc)
        if isinstance(exc, Unavailable):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        """PostgreSQL down, restarting, out of connections, or lost mid-statement: a 503 the
        client may retry, in the route's dialect. Anything else of these classes is a bug."""
        if not is_outage(exc):
            raise exc  # to the 500 below
        DATABASE_OUTAGES.report(exc)
        return await on_domain_error(request, Unavailable(DATABASE_UNAVAILABLE))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return dialect(request).invalid_request(error_items(exc.errors()))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.app, request.url.path)
        return dialect(request).http_error(exc.status_code, exc.detail, headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request.failed", error=type(exc).__name__)
        return dialect(request).internal_error()

    app.add_exception_handler(DomainError, on_domain_error)
    # Registered by class (not under ``Exception``, whose handler runs after the app failed),
    # so the 503 is an ordinary answer on a connection that stays usable.
    for outage in (*OUTAGE_ERRORS, asyncpg.InterfaceError):
        app.add_exception_handler(outage, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
