"""What the metadata route tests share: the test pipeline's name, a push's body, a push that
must succeed, the payload renamed for another pipeline, and the store's row counts."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

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


def body_for(payload: dict[str, Any], pipeline: str = PIPELINE, **extra: Any) -> dict[str, Any]:
    return {
        "exec_uuid": None,
        "pipeline_name": pipeline,
        "json_payload": json.dumps(payload),
        **extra,
    }


def renamed(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """The payload as another pipeline would send it."""
    text = (
        json.dumps(payload).replace(f'"{PIPELINE}', f'"{name}').replace(f"{PIPELINE}:", f"{name}:")
    )
    return dict(json.loads(text))


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/api/mlmd_push", json=body)
    assert answer.json() == {"status": "success"}, answer.text


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
