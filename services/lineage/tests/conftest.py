"""Lineage tests: events made by the real metadata push, projected into real PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cmf_common.db import create_pool
from cmf_common.events import Envelope
from cmf_common.migrations import migrate
from cmf_common.outbox import envelope_of
from cmf_lineage.app import MIGRATIONS as LINEAGE_MIGRATIONS
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_metadata.app import MIGRATIONS as METADATA_MIGRATIONS
from cmf_metadata.push import push

Pusher = Callable[..., Awaitable[list[Envelope]]]


@pytest.fixture
async def metadata_pool(make_database_url: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(make_database_url(), "metadata", max_size=4)
    await migrate(pool, "metadata", METADATA_MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
async def graph_pool(make_database_url: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(make_database_url(), "lineage", max_size=4)
    await migrate(pool, "lineage", LINEAGE_MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
def store(graph_pool: asyncpg.Pool) -> PostgresGraphStore:
    return PostgresGraphStore(graph_pool)


@pytest.fixture
def payload(fixtures_dir: Path) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads((fixtures_dir / "push_example_decoded.json").read_text())
    return decoded


def as_pipeline(payload: dict[str, Any], name: str) -> dict[str, Any]:
    text = json.dumps(payload).replace('"Test-env', f'"{name}').replace("Test-env:", f"{name}:")
    return dict(json.loads(text))


@pytest.fixture
def push_events(metadata_pool: asyncpg.Pool) -> Pusher:
    """Push a payload through the real merge; returns the outbox events it wrote."""

    async def run(payload: dict[str, Any], pipeline: str = "Test-env") -> list[Envelope]:
        async with metadata_pool.acquire() as conn:
            before = await conn.fetchval("SELECT coalesce(max(position), 0) FROM outbox")
        await push(
            metadata_pool, pipeline_name=pipeline, json_payload=json.dumps(payload), exec_uuid=None
        )
        async with metadata_pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM outbox WHERE position > $1 ORDER BY position", before
            )
        return [envelope_of(r) for r in rows]

    return run


def renamed_copy(payload: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(payload)
