"""The gateway: the one public entry. It routes by path to the services, aggregates health and
answers the health routes itself. In the embedded server the services are mounted in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.dialects import REFERENCE, RouteTable
from cmf_common.health import Check, CheckResult, run_check
from cmf_common.openapi import answer
from cmf_common.service import Checks, Service, service_app
from cmf_gateway.openapi import install_merged_openapi
from cmf_gateway.routing import route_table
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
CORS_EXPOSED_HEADERS = ("X-CMF-Consistency-Token", "Retry-After", "X-Request-ID")
CORS_MAX_AGE_S = 600


class Gateway:
    """An ASGI app that hands each request to the service its path belongs to. It is the
    outermost app, so it also answers CORS: preflights from ``cors_origins`` (``*`` for any)
    and the headers of their requests; the services never see a preflight."""

    def __init__(
        self,
        own: FastAPI,
        services: Mapping[str, ASGIApp],
        table: RouteTable,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.own = own
        self.services = services
        self.table = table
        self._entry: ASGIApp = self._route
        if cors_origins:
            self._entry = CORSMiddleware(
                self._route,
                allow_origins=list(cors_origins),
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=CORS_MAX_AGE_S,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not serves_ui(scope["path"]):
            target = self.table.resolve(scope["path"])
            if target is not None and target in self.services:
                await self.services[target](scope, receive, send)
                return
        await self.own(scope, receive, send)


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


def _health_router(
    services: Mapping[str, Service[Any]], timeout_s: float, loops: Callable[[], Check | None]
) -> APIRouter:
    router = APIRouter(tags=["health"])

    async def gather() -> dict[str, CheckResult]:
        checks = {"loops": loops(), **_merged_checks(services)}
        names = list(HEALTH_PARTS)
        results = await asyncio.gather(*(run_check(checks.get(n), timeout_s) for n in names))
        return dict(zip(names, results, strict=True))

    @router.get(
        "/health",
        responses={**answer(HEALTH), 503: {**answer(HEALTH)[200], "description": "a part is down"}},
    )
    async def health() -> JSONResponse:
        results = await gather()
        down = [n for n, r in results.items() if r.status == "down"]
        status = "ok" if not down else ("down" if set(down) & set(REQUIRED_PARTS) else "degraded")
        return JSONResponse(
            {"status": status, "checks": {n: r.as_dict() for n, r in results.items()}},
            status_code=200 if not down else 503,
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
        if part not in HEALTH_PARTS:
            return JSONResponse({"detail": f"unknown health check '{part}'"}, status_code=404)
        result = (await gather())[part]
        return JSONResponse(result.as_dict(), status_code=503 if result.status == "down" else 200)

    return router


def create_gateway(
    settings: GatewaySettings,
    services: Mapping[str, Service[Any]],
    run: Run | None = None,
) -> Gateway:
    """The gateway over in-process ``services``, routing by the table read off their routes
    (``cmf_gateway.routing``). Its lifespan runs ``run``, the process's
    composition (by default every service's ``started()`` in order, no loops). The loops'
    checks it yields feed the gateway's ``/livez`` (failing while one fails) and ``/health``
    (as ``loops``)."""
    apps = {name: service.app for name, service in services.items()}
    table = route_table(apps)
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
        async with (run or every_service)() as checks:
            liveness.extend(checks)
            try:
                yield
            finally:
                liveness.clear()

    own = service_app(
        settings=settings,
        title="CMF Server",
        lifespan=lifespan,
        checks=lambda _: _merged_checks(services),
        liveness=loops,
        unmatched_dialect=table.dialect_of,
    )
    own.include_router(_health_router(services, settings.readiness_timeout_s, loops))
    own.include_router(_health_router(services, settings.readiness_timeout_s, loops), prefix="/api")
    own.include_router(ui_router(settings.ui_dir or DEFAULT_DIST))
    # /openapi.json (and /docs, /redoc) describe every route of every service (docs/api.md).
    install_merged_openapi(own, apps, table)
    return Gateway(own, apps, table, cors_origins=settings.allowed_origins())
