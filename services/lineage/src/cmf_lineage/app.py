"""The lineage service: its graph store and projector (lineage queries arrive with their own
routers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cmf_common.db import create_pool, ping
from cmf_common.health import Check
from cmf_common.inbox import INBOX_MIGRATIONS
from cmf_common.migrations import migrate
from cmf_common.service import service_app
from cmf_lineage.projector import Projector
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store.postgres import PostgresGraphStore

MIGRATIONS = [INBOX_MIGRATIONS, "cmf_lineage.migrations"]


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(
            settings.require_database_url(),
            settings.db_schema,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            statement_timeout_ms=settings.database_statement_timeout_ms,
            application_name="cmf-lineage",
        )
        try:
            await migrate(pool, settings.db_schema, MIGRATIONS)
            app.state.pool = pool
            app.state.projector = Projector(PostgresGraphStore(pool))
            yield
        finally:
            await pool.close()

    def checks(app: FastAPI) -> dict[str, Check | None]:
        pool = getattr(app.state, "pool", None)
        return {"graph": (lambda: ping(pool)) if pool is not None else None}

    return service_app(
        settings=settings, title="CMF Server — lineage", lifespan=lifespan, checks=checks
    )
