"""Throwaway databases on the PostgreSQL that the tests and the benchmarks share (the one
``make services-up`` starts): made for a test session, a test or a benchmark run, and dropped
after it.

``CMF_TEST_DATABASE_URL`` names its admin database (``scripts/services.sh env`` prints it); the
functions take another ``admin_url`` where a caller has its own (the benchmarks read
``CMF_BENCH_DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")

ADMIN_URL = os.environ.get("CMF_TEST_DATABASE_URL", "postgresql://cmf:cmf@127.0.0.1:55432/cmf")


class DatabaseUnreachable(RuntimeError):
    """The shared PostgreSQL does not answer: a test that needs it fails (it never skips)."""


def with_database(url: str, name: str) -> str:
    """``url`` pointing at the database ``name`` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def admin(statement: str, admin_url: str = ADMIN_URL) -> None:
    """Run one statement on the admin database (``CREATE DATABASE`` cannot run in a
    transaction, so each gets a connection of its own)."""
    try:
        conn = await asyncpg.connect(admin_url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnreachable(
            f"PostgreSQL is not reachable at {admin_url} ({exc}); run `make services-up`"
        ) from exc
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(
    prefix: str, *, template: str | None = None, admin_url: str = ADMIN_URL
) -> str:
    """A new database named ``<prefix>_<random>`` (a copy of ``template`` if given); its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await admin(f'CREATE DATABASE "{name}"{copy}', admin_url)
    return name


async def drop_database(name: str, admin_url: str = ADMIN_URL) -> None:
    """Drop ``name``, closing whatever is still connected to it."""
    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)


@asynccontextmanager
async def fresh_database(
    prefix: str, *, template: str | None = None, admin_url: str = ADMIN_URL
) -> AsyncIterator[str]:
    """A new database for the block (see :func:`create_database`), dropped after it; its name."""
    name = await create_database(prefix, template=template, admin_url=admin_url)
    try:
        yield name
    finally:
        await drop_database(name, admin_url)


async def server_version(url: str = ADMIN_URL) -> str:
    """The PostgreSQL server's version, as ``18.1``."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version")).split(" ")[0]
    finally:
        await conn.close()


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end and return its result, from sync code or from code already
    on an event loop alike: it runs on a loop of its own, in a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()
