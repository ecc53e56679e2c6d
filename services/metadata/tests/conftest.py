"""Service tests: the metadata app in-process on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from cmf_common.db import create_pool
from cmf_common.migrations import migrate
from cmf_metadata.app import MIGRATIONS, create_app
from cmf_metadata.settings import MetadataSettings


class _Borrowed:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> asyncpg.Connection:
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        return None


class OneConnectionPool:
    """Hands the same connection to every caller, so the whole test runs in one transaction
    that is rolled back at its end; the code's own transactions become savepoints."""

    def __init__(self, conn: asyncpg.Connection) -> None:
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
async def conn(migrated_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with migrated_pool.acquire() as connection:
        # Repeatable read, so code that asks for it (pull) may nest its savepoint inside.
        transaction = connection.transaction(isolation="repeatable_read")
        await transaction.start()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def app(conn: asyncpg.Connection, fresh_database_url: str) -> FastAPI:
    application = create_app(
        MetadataSettings(database_url=SecretStr(fresh_database_url), max_body_bytes=2 * 1024**2)
    )
    application.state.pool = OneConnectionPool(conn)
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metadata") as http:
        yield http


@pytest.fixture(scope="session")
def push_body(fixtures_dir: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((fixtures_dir / "push_example.json").read_text())
    return body


@pytest.fixture(scope="session")
def payload(fixtures_dir: Path) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads((fixtures_dir / "push_example_decoded.json").read_text())
    return decoded
