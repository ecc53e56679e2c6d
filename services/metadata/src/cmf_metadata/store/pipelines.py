"""The SQL of pipelines and their stages: looking one up, the lists and their counts.

Functions take a connection the caller's transaction owns; nothing here commits.
"""

from __future__ import annotations

from cmf_common.db import Connection


async def pipeline_id(conn: Connection, name: str) -> int | None:
    value = await conn.fetchval("SELECT id FROM pipelines WHERE name = $1", name)
    return int(value) if value is not None else None
