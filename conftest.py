"""Fixtures every test folder shares: the real PostgreSQL that `make services-up` starts.

A test that needs PostgreSQL fails (it never skips) when the server is not there.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cmf_common.db import Connection, create_pool
from cmf_common.migrations import migrate
from cmf_metadata.app import MIGRATIONS
from cmf_testing.fixtures import CMF_FIXTURES

DEFAULT_DATABASE_URL = "postgresql://cmf:cmf@127.0.0.1:55432/cmf"


def admin_database_url() -> str:
    return os.environ.get("CMF_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _connect_admin() -> asyncpg.Connection:
    url = admin_database_url()
    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {url} ({exc}); run `make services-up`")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The captured client bodies (``cmf_testing.fixtures``)."""
    return CMF_FIXTURES


async def _admin(statement: str) -> None:
    admin = await _connect_admin()
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _admin_blocking(statement: str) -> None:
    """Runs an admin statement from sync or async code alike (a thread has its own loop)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, _admin(statement)).result()


def _new_database() -> str:
    name = f"cmf_test_{uuid.uuid4().hex[:12]}"
    _admin_blocking(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(name: str) -> None:
    _admin_blocking(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def fresh_database_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    name = _new_database()
    try:
        yield _with_database(admin_database_url(), name)
    finally:
        _drop_database(name)


@pytest.fixture
def make_database_url() -> Iterator[Callable[[], str]]:
    """A factory of empty databases (for tests that run whole servers), dropped afterwards."""
    created: list[str] = []

    def create() -> str:
        created.append(_new_database())
        return _with_database(admin_database_url(), created[-1])

    yield create
    for name in created:
        _drop_database(name)


class _Borrowed:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> Connection:
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        return None


class OneConnectionPool:
    """Hands the same connection to every caller, so the whole test runs in one transaction
    that is rolled back at its end; the code's own transactions become savepoints."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def acquire(self) -> _Borrowed:
        return _Borrowed(self.conn)


@pytest.fixture(scope="session")
async def migrated_pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_database_url, "metadata", min_size=1, max_size=4)
    await migrate(pool, "metadata", MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
async def conn(migrated_pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    async with migrated_pool.acquire() as connection:
        # Repeatable read, so code that asks for it (pull) may nest its savepoint inside.
        transaction = connection.transaction(isolation="repeatable_read")
        await transaction.start()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def single_connection_pool(conn: Connection) -> OneConnectionPool:
    """Stands in for an app's pool so its every query runs in the test's transaction."""
    return OneConnectionPool(conn)
