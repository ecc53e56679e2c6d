"""Where each versioned API generation is mounted (docs/api.md), and how upstream's is.

``/api/v1/`` belongs to upstream CMF's v1 contract, which also answers at ``/v1/``
(docs/upstream-v1.md); our own API lives under ``/api/native/v1/`` only. Every service mounts
its routers at these, so no two generations share a path.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

# Our own API: the metadata queries, the export, the lineage walks (problem+json).
NATIVE_V1 = "/api/native/v1"

# Upstream's v1 routes: its server path, and the public one its nginx publishes (its envelope).
UPSTREAM_V1: tuple[str, ...] = ("/v1", "/api/v1")


class _PrefixRoute(BaseRoute):
    """Every path under ``prefix``, answered by ``router`` alone.

    FastAPI tries an app's routes one after the other, so routes included last (upstream's,
    after both path forms of every CMF route) would pay a failed match of each earlier route,
    about 0.1 ms a request. Placed first, this costs any other request one ``startswith``. The
    prefix itself (``/v1/``) is no route of theirs: left to the app, it is an enveloped 404
    (and ``/v1`` is not redirected to it).
    """

    def __init__(self, prefix: str, router: APIRouter) -> None:
        self.prefix = prefix + "/"
        self.router = router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope["path"]
        if scope["type"] == "http" and path.startswith(self.prefix) and path != self.prefix:
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router.app(scope, receive, send)


def include_first(
    app: FastAPI, routers: Sequence[APIRouter], prefixes: Sequence[str] = UPSTREAM_V1
) -> None:
    """Mount ``routers`` at each of ``prefixes``, whose every path they alone answer.

    Their routes declare their dialect, so unknown paths and methods under a prefix (whose
    prefix owner they are) answer in it too. The routers are included in the app as usual (so
    ``/openapi.json`` documents them), and a first route per prefix hands each request under
    it straight to them: nothing else of the app's may answer under these prefixes.
    """
    for prefix in prefixes:
        # The app provides the overrides and its app-wide dependencies (the parameter checks
        # of cmf_common.parameters), as for the routes it includes itself.
        dispatch = APIRouter(
            dependency_overrides_provider=app, dependencies=list(app.router.dependencies)
        )
        for router in routers:
            app.include_router(router, prefix=prefix)
            dispatch.include_router(router, prefix=prefix)
        app.router.routes.insert(0, _PrefixRoute(prefix, dispatch))
