"""What the upstream v1 tests share: the envelope's shape (cmf_testing.envelopes) and reading
the store's rows."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from cmf_testing.envelopes import ENVELOPE_KEYS, TIMESTAMP, enveloped, failed, invalid

__all__ = ["ENVELOPE_KEYS", "TIMESTAMP", "enveloped", "failed", "invalid"]

PIPELINE = "Test-env"
TABLES = (
    "pipelines",
    "stages",
    "executions",
    "execution_uuids",
    "artifacts",
    "events",
    "attributions",
    "outbox",
)


def body_for(payload: dict[str, Any], pipeline: str = PIPELINE) -> dict[str, Any]:
    return {"exec_uuid": None, "pipeline_name": pipeline, "json_payload": json.dumps(payload)}


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/api/mlmd_push", json=body)
    assert answer.json() == {"status": "success"}, answer.text
