"""What the upstream v1 tests share: the envelope's shape (cmf_testing.envelopes) and a push
(the pipeline, bodies and row counts are metadata_support's)."""

from __future__ import annotations

from typing import Any

import httpx

from cmf_testing.envelopes import ENVELOPE_KEYS, TIMESTAMP, enveloped, failed, invalid

__all__ = ["ENVELOPE_KEYS", "TIMESTAMP", "enveloped", "failed", "invalid"]


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/api/mlmd_push", json=body)
    assert answer.json() == {"status": "success"}, answer.text
