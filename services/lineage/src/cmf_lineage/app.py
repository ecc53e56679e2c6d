"""The lineage service: its graph store and projector (lineage queries arrive with their own
routers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cmf_common.health import Check
from cmf_common.service import service_app
from cmf_lineage.projector import Projector
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import MIGRATIONS, OpenStore, open_graph_store

__all__ = ["MIGRATIONS", "create_app"]


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_graph_store(settings) as opened:
            app.state.graph = opened
            app.state.projector = Projector(opened.store, consumer=settings.lineage_consumer_group)
            yield

    def checks(app: FastAPI) -> dict[str, Check | None]:
        opened: OpenStore | None = getattr(app.state, "graph", None)
        if opened is None:
            return {"database": None, "neo4j": None}
        return {"neo4j" if opened.kind == "neo4j" else "graph": opened.check}

    return service_app(
        settings=settings, title="CMF Server — lineage", lifespan=lifespan, checks=checks
    )
