"""Upstream CMF's v1 API generation (docs/upstream-v1.md), on the metadata service.

Thin routers over the domain functions the 0.1.0 routes use, answering in upstream's envelope.
Registered without a prefix, so one call mounts them wherever upstream's clients look: ``/v1``
(upstream's server path) and, once our own API has moved out of it, ``/api/v1`` (its public one).
The lineage routes of the v1 tables are the lineage service's, not mounted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from cmf_metadata.api.upstream import artifacts, files, metadata, metahub, pipelines

ROUTERS: tuple[APIRouter, ...] = (
    pipelines.router,
    artifacts.router,
    metadata.router,
    metahub.router,
    files.router,
)
reference_metahub_router = metahub.reference_router


class _PrefixRoute(BaseRoute):
    """Every path under ``prefix``, answered by ``router`` alone.

    FastAPI tries an app's routes one after the other, so routes included last (these, after
    both path forms of every CMF route) would pay a failed match of each earlier route, about
    0.1 ms a request. Placed first, this costs any other request one ``startswith``.
    """

    def __init__(self, prefix: str, router: APIRouter) -> None:
        self.prefix = prefix + "/"
        self.router = router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router.app(scope, receive, send)


def include_upstream_v1(app: FastAPI, prefixes: Sequence[str] = ("/v1",)) -> None:
    """Mount every v1 router at each of ``prefixes``. Their routes declare the envelope as
    their error dialect, so unknown paths and methods under a prefix (whose prefix owner they
    are) answer in it too.

    The routers are included in the app as usual (so ``/openapi.json`` documents them), and a
    first route hands each request under a prefix straight to them.
    """
    for prefix in prefixes:
        # The app provides the overrides and its app-wide dependencies (the parameter checks
        # of cmf_common.parameters), as for the routes it includes itself.
        dispatch = APIRouter(
            dependency_overrides_provider=app, dependencies=list(app.router.dependencies)
        )
        for router in ROUTERS:
            app.include_router(router, prefix=prefix)
            dispatch.include_router(router, prefix=prefix)
        app.router.routes.insert(0, _PrefixRoute(prefix, dispatch))
