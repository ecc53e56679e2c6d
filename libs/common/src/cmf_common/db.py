"""asyncpg pools: one per service, confined to the service's own schema."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import asyncpg.pool
import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Histogram

from cmf_common.migrations import migrate
from cmf_common.settings import ServiceSettings

# A connection from a pool or a bare one: repositories accept either.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


def json_dumps(value: Any) -> str:
    """orjson, falling back to the standard library for what it refuses (integers over 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


QUERY_SECONDS = Histogram(
    "cmf_db_query_duration_seconds",
    "Time PostgreSQL took to answer one statement, by statement verb.",
    ["verb", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _trace_query(record: Any) -> None:
    """asyncpg reports each statement after it ran (in the caller's context): record it as a
    span with its real start and end, and in the query-time histogram. Arguments are never
    recorded; they carry user data."""
    statement = " ".join(str(record.query).split())
    verb = statement.split(" ", 1)[0].upper() if statement else "?"
    outcome = "error" if record.exception is not None else "ok"
    QUERY_SECONDS.labels(verb, outcome).observe(record.elapsed)
    end = time.time_ns()
    span = trace.get_tracer("cmf.db").start_span(
        f"db {verb}",
        kind=SpanKind.CLIENT,
        start_time=end - int(record.elapsed * 1e9),
        attributes={"db.system": "postgresql", "db.statement": statement[:2000]},
    )
    if record.exception is not None:
        span.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
    span.end(end_time=end)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json_dumps, decoder=orjson.loads, schema="pg_catalog"
        )
    conn.add_query_logger(_trace_query)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_pool(
    dsn: str,
    schema: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    statement_timeout_ms: int = 300_000,
    application_name: str = "cmf-server",
) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first, with JSON decoded by orjson.

    The schema is created here, so a fresh database needs nothing but this call and the
    service's migrations.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)}")
    except asyncpg.UniqueViolationError:
        pass  # another process created it between our check and our statement
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={
            "search_path": f"{_quote_ident(schema)}, public",
            "statement_timeout": str(statement_timeout_ms),
            "application_name": application_name,
            # Our statements take whole pushes as array parameters. From a prepared statement's
            # sixth run PostgreSQL may switch to a generic plan, which guesses 10 rows for every
            # unnest: the push's artifact merge then went from 0.3 s to 3 s on a connection's
            # sixth push of 1,000 executions, and a 10,000-execution push took 74 s instead of
            # 10. Planning each run costs well under a millisecond against that.
            "plan_cache_mode": "force_custom_plan",
        },
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def service_pool(
    settings: ServiceSettings, migrations: list[str], *, application_name: str
) -> AsyncIterator[asyncpg.Pool]:
    """The service's pool on its own schema, sized and timed by its settings, with
    ``migrations`` applied; closed on exit."""
    pool = await create_pool(
        settings.require_database_url(),
        settings.db_schema,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        statement_timeout_ms=settings.database_statement_timeout_ms,
        application_name=application_name,
    )
    try:
        await migrate(pool, settings.db_schema, migrations)
        yield pool
    finally:
        await pool.close()


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


@asynccontextmanager
async def read_snapshot(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """A connection in a read-only, repeatable-read transaction: every statement of one answer
    (a page and its total, a pull's entities) sees the same snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        yield conn
