"""Fixtures every test folder shares: the real PostgreSQL that `make services-up` starts.

A test that needs PostgreSQL fails (it never skips) when the server is not there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

SHARED = Path(__file__).resolve().parent.parent / "shared"
FIXTURES = SHARED / "fixtures" / "cmf"
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
    return FIXTURES


@pytest.fixture(scope="session")
async def fresh_database_url() -> AsyncIterator[str]:
    """A database of its own for this test session, dropped at the end."""
    name = f"cmf_test_{uuid.uuid4().hex[:12]}"
    admin = await _connect_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(admin_database_url(), name)
    finally:
        admin = await _connect_admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
def make_database_url() -> Iterator[object]:
    """A factory of empty databases (for tests that run whole servers), dropped afterwards."""
    import asyncio

    created: list[str] = []

    async def create() -> str:
        name = f"cmf_test_{uuid.uuid4().hex[:12]}"
        admin = await _connect_admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        created.append(name)
        return _with_database(admin_database_url(), name)

    yield create

    async def drop_all() -> None:
        admin = await _connect_admin()
        try:
            for name in created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    if created:
        asyncio.run(drop_all())
