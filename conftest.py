"""Fixtures every test folder shares: the real PostgreSQL that `make services-up` starts; and how
the suite is split between pytest-xdist's workers.

A test that needs PostgreSQL fails (it never skips) when the server is not there.
"""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from cmf_common.db import Connection, create_pool
from cmf_common.migrations import migrate
from cmf_metadata.app import MIGRATIONS
from cmf_testing.databases import (
    ADMIN_URL,
    DatabaseUnreachable,
    create_database,
    drop_database,
    run_blocking,
    with_database,
)
from cmf_testing.fixtures import CMF_FIXTURES

# How the suite is split between xdist's workers, and the guard on the shared Neo4j.
pytest_plugins = ["cmf_testing.suite_split"]
# How long the process may take to exit after its last test before it prints where each of its
# threads is (a thread that keeps a finished run alive is otherwise invisible).
EXIT_REPORT_AFTER_S = 60


def pytest_unconfigure() -> None:
    faulthandler.dump_traceback_later(EXIT_REPORT_AFTER_S, exit=False, file=sys.stderr)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The captured client bodies (``cmf_testing.fixtures``)."""
    return CMF_FIXTURES


def _new_database() -> str:
    try:
        return run_blocking(create_database("cmf_test"))
    except DatabaseUnreachable as exc:
        pytest.fail(str(exc))


def _drop_database(name: str) -> None:
    run_blocking(drop_database(name))


@pytest.fixture(scope="session")
def fresh_database_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    name = _new_database()
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        _drop_database(name)


@pytest.fixture
def make_database_url() -> Iterator[Callable[[], str]]:
    """A factory of empty databases (for tests that run whole servers), dropped afterwards."""
    created: list[str] = []

    def create() -> str:
        created.append(_new_database())
        return with_database(ADMIN_URL, created[-1])

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
