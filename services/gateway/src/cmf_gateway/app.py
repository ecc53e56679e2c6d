"""The gateway: the one public entry. It routes by path to the services, aggregates health and
answers the health routes itself. In the embedded server the services are mounted in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.dialects import REFERENCE, Entry, RouteTable
from cmf_common.errors import DomainError
from cmf_common.health import Check, CheckResult, run_check
from cmf_common.middleware import ROUTE_TEMPLATE, ObservabilityMiddleware, traced_hop
from cmf_common.openapi import answer
from cmf_common.service import Checks, Service, service_app
from cmf_gateway.auth import Access
from cmf_gateway.openapi import install_merged_openapi
from cmf_gateway.routing import ROUTE_ENTRY, route_table
from cmf_gateway.settings import GatewaySettings
from cmf_gateway.ui import DEFAULT_DIST, serves_ui, ui_router

# Each part /health reports; the ones not in this mode are "disabled" (docs/api.md). "loops"
# is this process's background loops (the embedded delivery), as their liveness sees them.
HEALTH_PARTS = ("database", "neo4j", "storage", "kafka", "redis", "loops")
REQUIRED_PARTS = ("database",)

# The process's composition: starts the services (and what it wires between them) and
# yields the liveness checks of the background loops it runs.
Run = Callable[[], AbstractAsyncContextManager[Sequence[Check]]]


# What a browser's page on an allowed origin may send and read (docs/api.md, "CORS").
CORS_EXPOSED_HEADERS = (
    "X-CMF-Consistency-Token",
    "Retry-After",
    "X-Request-ID",
    "WWW-Authenticate",
)
CORS_MAX_AGE_S = 600


class Gateway:
    """An ASGI app that hands each request to the service its path belongs to. It is the
    outermost app, so it also answers CORS: preflights from ``cors_origins`` (``*`` for any)
    and the headers of their requests; the services never see a preflight. Inside CORS,
    ``access``'s layer (``cmf_gateway.auth``: tokens, scopes, rate limits) wraps the routing.

    ``services`` are the transports, by the table's owner names: the apps themselves in the
    embedded server, a proxy to each service's URL in distributed mode (``cmf_gateway.proxy``).
    ``strict`` (distributed mode) forwards only a canonical path that one route matches (any
    other is answered here, in its dialect: ``refusal`` says why it is not forwarded), where
    the embedded server also hands a service the unmatched paths of its prefix. The UI's paths
    go to ``ui`` when given (the UI process), else to the gateway's own app.

    Every request is observed once (``cmf_common.middleware``: its request id, log line, span
    and metrics): by the app that answers it, and when the gateway answers before any app
    (a refused path, the access layer's refusals, a CORS preflight), by the gateway itself.
    A request forwarded unrouted (``strict``) carries its table entry's path as its route
    template."""

    def __init__(
        self,
        own: FastAPI,
        services: Mapping[str, ASGIApp],
        table: RouteTable,
        cors_origins: Sequence[str] = (),
        *,
        ui: ASGIApp | None = None,
        strict: bool = False,
        refusal: Callable[[Scope], DomainError | None] | None = None,
        access: Access | None = None,
        service: str = "gateway",
    ) -> None:
        self.own = own
        self.services = services
        self.table = table
        self.ui = ui
        self.strict = strict
        self.refusal = refusal
        self.access = access
        self.observer = ObservabilityMiddleware(self._route, service=service)
        # A path's target, once (the table's match is a regex over every route).
        self._target = lru_cache(maxsize=4096)(self._match)
        routed: ASGIApp = self._route if access is None else access.layer(self._route)
        self._entry: ASGIApp = routed
        self._cors = bool(cors_origins)
        if cors_origins:
            self._entry = CORSMiddleware(
                routed,
                allow_origins=list(cors_origins),
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=CORS_MAX_AGE_S,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._cors and _is_preflight(scope):
            # CORS answers it before any app: observed here, under its route's template.
            matched = self.table.matching(scope["path"])
            if matched:
                scope = {**scope, ROUTE_TEMPLATE: matched[0].path}
            await self.observer.observe(self._entry, scope, receive, send)
            return
        await self._entry(scope, receive, send)

    def target(self, path: str) -> str | None:
        """The service a request for ``path`` goes to (``None``: the gateway answers)."""
        return self._target(path)[0]

    def _match(self, path: str) -> tuple[str | None, Entry | None]:
        """The service a request for ``path`` goes to, and (``strict``) the table entry of
        the route that matched it (looked up once a path: ``_target``)."""
        if not self.strict:
            return self.table.resolve(path), None
        matched = self.table.matching(path)
        return (matched[0].owner, matched[0]) if matched else (None, None)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: ASGIApp | None = None
        entry: Entry | None = None
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if serves_ui(path):
                app = self.ui
            else:
                target, entry = self._target(path)
                app = self.services.get(target) if target is not None else None
        if app is None:
            await self.own(scope, receive, send)
            return
        refused = self.refusal(scope) if self.refusal is not None else None
        if refused is None and self.strict:
            # The proxy's own edge observes it (its span is the gateway's, the service's
            # parent), under the template of the route that matched; the proxy reads the
            # route's settings off its entry.
            named = {ROUTE_TEMPLATE: entry.path, ROUTE_ENTRY: entry} if entry is not None else {}
            await app({**scope, **named}, receive, send)
        elif refused is None:
            await traced_hop(app, scope, receive, send, "gateway")
        elif scope["type"] == "http":
            answer = self.table.dialect_of(scope["path"]).domain_error(refused)
            await self.observer.observe(answer, scope, receive, send)


def _is_preflight(scope: Scope) -> bool:
    """A CORS preflight, as Starlette's ``CORSMiddleware`` tells one."""
    if scope["type"] != "http" or scope["method"] != "OPTIONS":
        return False
    names = {name for name, _ in scope.get("headers") or ()}
    return b"origin" in names and b"access-control-request-method" in names


_STATUS = {"enum": ["ok", "degraded", "down", "disabled"]}
PART: dict[str, Any] = {
    "type": "object",
    "required": ["status", "latency_ms", "detail"],
    "properties": {
        "status": _STATUS,
        "latency_ms": {"type": ["number", "null"]},
        "detail": {"type": ["string", "null"]},
    },
}
HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": _STATUS,
        "checks": {"type": "object", "additionalProperties": PART},
    },
}


def _merged_checks(services: Mapping[str, Service[Any]]) -> Checks:
    merged: Checks = {}
    for service in services.values():
        merged.update(service.checks())
    return merged


# The health of every part, by name (``HEALTH_PARTS`` and any a mode adds).
Gather = Callable[[], Awaitable[dict[str, CheckResult]]]


def health_status(results: Mapping[str, CheckResult], required: Sequence[str]) -> str:
    down = {n for n, r in results.items() if r.status == "down"}
    return "ok" if not down else ("down" if down & set(required) else "degraded")


def health_router(gather: Gather, required: Sequence[str] = REQUIRED_PARTS) -> APIRouter:
    """``/health`` (every part) and ``/health/{part}`` over what ``gather`` finds."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        responses={**answer(HEALTH), 503: {**answer(HEALTH)[200], "description": "a part is down"}},
    )
    async def health() -> JSONResponse:
        results = await gather()
        status = health_status(results, required)
        return JSONResponse(
            {"status": status, "checks": {n: r.as_dict() for n, r in results.items()}},
            status_code=200 if status == "ok" else 503,
        )

    @router.get(
        "/health/{part}",
        responses={
            **answer(PART),
            404: {"description": "No such part", **REFERENCE.error_content()},
            503: {**answer(PART)[200], "description": "The part is down"},
        },
    )
    async def health_part(part: str) -> JSONResponse:
        results = await gather()
        if part not in results:
            return JSONResponse({"detail": f"unknown health check '{part}'"}, status_code=404)
        result = results[part]
        return JSONResponse(result.as_dict(), status_code=503 if result.status == "down" else 200)

    return router


def _in_process_health(
    services: Mapping[str, Service[Any]], timeout_s: float, loops: Callable[[], Check | None]
) -> Gather:
    async def gather() -> dict[str, CheckResult]:
        checks = {"loops": loops(), **_merged_checks(services)}
        names = list(HEALTH_PARTS)
        results = await asyncio.gather(*(run_check(checks.get(n), timeout_s) for n in names))
        return dict(zip(names, results, strict=True))

    return gather


def create_gateway(
    settings: GatewaySettings,
    services: Mapping[str, Service[Any]],
    run: Run | None = None,
) -> Gateway:
    """The gateway over in-process ``services``, routing by the table read off their routes
    (``cmf_gateway.routing``). Its lifespan runs ``run``, the process's
    composition (by default every service's ``started()`` in order, no loops). The loops'
    checks it yields feed the gateway's ``/livez`` (failing while one fails) and ``/health``
    (as ``loops``). Who may call what is :class:`cmf_gateway.auth.Access`'s (auth off unless
    ``AUTH=on``: the embedded server's rule)."""
    apps = {name: service.app for name, service in services.items()}
    table = route_table(apps)
    access = Access(settings, distributed=False)
    liveness: list[Check] = []

    async def loops_live() -> None:
        for check in liveness:
            await check()

    def loops(_: object = None) -> Check | None:
        return loops_live if liveness else None

    @asynccontextmanager
    async def every_service() -> AsyncIterator[Sequence[Check]]:
        async with AsyncExitStack() as stack:
            for service in services.values():
                await stack.enter_async_context(service.started())
            yield ()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with access.started(), (run or every_service)() as checks:
            liveness.extend(checks)
            try:
                yield
            finally:
                liveness.clear()

    own = gateway_own_app(
        settings,
        apps,
        table,
        lifespan=lifespan,
        checks=lambda: _merged_checks(services),
        liveness=loops,
        gather=_in_process_health(services, settings.readiness_timeout_s, loops),
        access=access,
    )
    return Gateway(own, apps, table, cors_origins=settings.allowed_origins(), access=access)


def gateway_own_app(
    settings: GatewaySettings,
    apps: Mapping[str, FastAPI],
    table: RouteTable,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    checks: Callable[[], Checks],
    gather: Gather,
    access: Access,
    liveness: Callable[[FastAPI], Check | None] | None = None,
    required: Sequence[str] = REQUIRED_PARTS,
) -> FastAPI:
    """What the gateway answers itself, in either mode: ``/livez``, ``/readyz`` (``checks``),
    ``/health*`` (what ``gather`` finds, at ``/`` and ``/api``), the UI, ``/openapi.json``
    merged from ``apps``, the services' apps (built; they need not run here), and ``access``'s
    token routes (its lifespan must run ``access.started()``)."""
    own = service_app(
        settings=settings,
        title="CMF Server",
        lifespan=lifespan,
        checks=lambda _: checks(),
        liveness=liveness,
        unmatched_dialect=table.dialect_of,
        verify_principals=False,  # it signs the principal the services verify
    )
    own.include_router(health_router(gather, required))
    own.include_router(health_router(gather, required), prefix="/api")
    own.include_router(ui_router(settings.ui_dir or DEFAULT_DIST))
    # /openapi.json (and /docs, /redoc) describe every route of every service (docs/api.md).
    install_merged_openapi(own, apps, table)
    access.install(own, table)
    return own
