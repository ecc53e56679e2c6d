"""What the metadata route tests share: the test pipeline's name, a push's body and the
store's row counts."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

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


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
