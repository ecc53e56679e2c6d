"""A push that grows the store has its tables analyzed before it is acknowledged, so the first
reads after it are planned with statistics that know its rows (cmf_common.db.analyze_if_grown)."""

from __future__ import annotations

import asyncpg
import httpx

from cmf_testing.generator import push_body_bytes


async def _known_executions(conn: asyncpg.Connection) -> float:
    return float(
        await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'executions'::regclass")
    )


async def test_a_push_that_grows_the_store_leaves_it_analyzed(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    answer = await client.post("/api/mlmd_push", content=push_body_bytes("grown", 300))
    assert answer.json() == {"status": "success"}
    assert await _known_executions(conn) >= 300


async def test_a_small_push_leaves_statistics_to_autovacuum(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    before = await _known_executions(conn)
    answer = await client.post("/api/mlmd_push", content=push_body_bytes("small", 10))
    assert answer.json() == {"status": "success"}
    assert await _known_executions(conn) == before
