"""asyncpg pools: one per service, confined to the service's own schema, bounded in how long
reaching PostgreSQL may take; and what an outage of it looks like (:func:`is_outage`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
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


class DatabaseUnavailable(ConnectionError):
    """PostgreSQL cannot be reached: no connection opened within the connect timeout (refused,
    no socket, no answer), or none came free from the pool within the acquire timeout. A
    ``ConnectionError``, so the loops' policy (``cmf_common.workers``) retries it as any lost
    connection."""


# What PostgreSQL being down, restarting or out of connections looks like to a caller: the
# request answers 503 with Retry-After (``cmf_common.dialects``), a loop retries.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # DatabaseUnavailable, and a socket reset mid-statement
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08: ConnectionDoesNotExistError (lost)
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL is not there (for now) rather than that the code is
    wrong. asyncpg reports a connection that closed under a transaction or a statement as an
    ``InterfaceError`` (``cannot call Transaction.__aexit__(): the underlying connection is
    closed``), a class it shares with misuses of its API, so for that class the message
    decides."""
    if isinstance(exc, OUTAGE_ERRORS):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


async def _connect(*args: Any, timeout_s: float, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg's connect within ``timeout_s``; a server that cannot be reached is a
    :class:`DatabaseUnavailable`."""
    try:
        return await asyncpg.connect(*args, timeout=timeout_s, **kwargs)
    except OSError as exc:  # refused, no socket file, unreachable, TimeoutError
        raise DatabaseUnavailable(
            f"PostgreSQL cannot be reached: {type(exc).__name__}: {exc}"
        ) from exc


class BoundedPool(asyncpg.Pool):
    """A pool whose ``acquire()`` waits at most ``acquire_timeout_s`` unless told otherwise;
    running out of it is a :class:`DatabaseUnavailable`. (``Pool._acquire`` is what both
    ``async with pool.acquire()`` and ``await pool.acquire()`` call.)"""

    __slots__ = ("acquire_timeout_s",)

    def __init__(self, *args: Any, acquire_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout_s = acquire_timeout_s

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (asyncpg's own)
        bound = timeout if timeout is not None else self.acquire_timeout_s
        try:
            return await super()._acquire(bound)  # type: ignore[misc]
        except TimeoutError as exc:
            raise DatabaseUnavailable(f"no database connection within {bound:g} s") from exc


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
    connect_timeout_s: float = 5.0,
    acquire_timeout_s: float = 30.0,
) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first, with JSON decoded by orjson, opened
    within ``connect_timeout_s`` each and handed out within ``acquire_timeout_s``.

    The schema is created here, so a fresh database needs nothing but this call and the
    service's migrations.
    """
    conn = await _connect(dsn, timeout_s=connect_timeout_s)
    try:
        # Asked first: a role made for one schema (distributed mode) may use it without the
        # right to create schemas, which even ``CREATE SCHEMA IF NOT EXISTS`` needs.
        exists = await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema)
        if not exists:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)}")
    except asyncpg.UniqueViolationError:
        pass  # another process created it between our check and our statement
    finally:
        await conn.close()
    pool = BoundedPool(
        dsn,
        acquire_timeout_s=acquire_timeout_s,
        connect=partial(_connect, timeout_s=connect_timeout_s),
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={
            "search_path": f"{_quote_ident(schema)}, public",
            "statement_timeout": str(statement_timeout_ms),
            "application_name": application_name,
            # Over TCP, PostgreSQL closes the session of a client that vanished (a host that
            # died, a network cut) within about a minute, so its locks (a relay's subjects,
            # the embedded delivery's turn) do not outlive it.
            "tcp_keepalives_idle": "30",
            "tcp_keepalives_interval": "10",
            "tcp_keepalives_count": "3",
        },
    )
    await pool
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
        connect_timeout_s=settings.database_connect_timeout_s,
        acquire_timeout_s=settings.database_acquire_timeout_s,
    )
    try:
        await migrate(pool, settings.db_schema, migrations)
        yield pool
    finally:
        await close_pool(pool)


POOL_CLOSE_S = 5.0


async def close_pool(pool: asyncpg.Pool, timeout_s: float = POOL_CLOSE_S) -> None:
    """Close ``pool``, waiting at most ``timeout_s`` for connections in use to come back (a
    statement that hangs on a vanished server); then terminate them."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except Exception:
        pool.terminate()


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


@asynccontextmanager
async def read_snapshot(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """A connection in a read-only, repeatable-read transaction: every statement of one answer
    (a page and its total, a pull's entities) sees the same snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        yield conn


# Fresh rows have no statistics until autovacuum's next round (up to a minute, and longer under
# load): meanwhile the planner takes a table's size from its last ANALYZE (or an empty table's
# guess), and the first reads after a big write choose nested loops and full scans that cost
# seconds (issue 12, item 14). Writers call this after a big write, so statistics already know
# its rows when its answer (a push's ack, a projected sequence) lets readers in.
ANALYZE_MIN_ROWS = 200  # below this, autovacuum's pace is good enough
ANALYZE_GROWTH = 0.1  # autovacuum's own rule (autovacuum_analyze_scale_factor)
# The sample these analyses take: a tenth of PostgreSQL's default (3,000 rows a table, not
# 30,000). They cost a push about 60 ms instead of 250-500 ms in a young store, and tell the
# planner what matters for the first reads (how many rows, their spread); autovacuum's own
# analyze replaces them with full statistics on its next round.
ANALYZE_STATISTICS_TARGET = 10


@asynccontextmanager
async def local_setting(conn: Connection, name: str, value: str) -> AsyncIterator[None]:
    """The setting ``name`` at ``value`` for the statements inside, and back to what it was
    after; inside a transaction (a setting made with ``SET LOCAL`` lasts until it ends)."""
    previous = await conn.fetchval("SELECT current_setting($1)", name)
    await conn.execute("SELECT set_config($1, $2, true)", name, value)
    yield
    await conn.execute("SELECT set_config($1, $2, true)", name, previous)


async def analyze_if_grown(
    conn: Connection, tables: Sequence[str], *, measure: str, added: int
) -> bool:
    """ANALYZE ``tables`` when ``added`` rows (of ``measure``, one of them) are at least
    ``ANALYZE_MIN_ROWS`` and a tenth of what its statistics say it holds (or it was never
    analyzed); whether it did. Statistics are a table's, not a transaction's: inside one, the
    analyze counts the transaction's own rows and its figures are seen from the commit on."""
    if added < ANALYZE_MIN_ROWS:
        return False
    known = await conn.fetchval(
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", measure
    )
    if known is not None and known >= 0 and added < ANALYZE_GROWTH * known:
        return False
    # A savepoint inside the caller's transaction, a transaction of its own after a commit.
    target = str(ANALYZE_STATISTICS_TARGET)
    async with conn.transaction(), local_setting(conn, "default_statistics_target", target):
        await conn.execute(f"ANALYZE {', '.join(tables)}")
    return True
