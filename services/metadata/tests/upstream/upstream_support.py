"""What the upstream v1 tests share: the envelope's shape and reading the store's rows."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import httpx

PIPELINE = "Test-env"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")
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
ENVELOPE_KEYS = {"status", "code", "data", "message", "errors", "meta"}


def body_for(payload: dict[str, Any], pipeline: str = PIPELINE) -> dict[str, Any]:
    return {"exec_uuid": None, "pipeline_name": pipeline, "json_payload": json.dumps(payload)}


def enveloped(
    answer: httpx.Response, http_status: int, status: str = "success", code: int | None = None
) -> Any:
    """Checks the answer is upstream's envelope with these statuses; returns its ``data``."""
    assert answer.status_code == http_status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["status"] == status, body
    assert body["code"] == (http_status if code is None else code), body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["errors"], list)
    for entry in body["errors"]:
        assert set(entry) == {"field", "message", "code"}, entry
        assert isinstance(entry["message"], str)
    assert set(body["meta"]) == {"timestamp", "pagination"}
    assert TIMESTAMP.match(body["meta"]["timestamp"]), body["meta"]
    assert body["meta"]["pagination"] is None
    if status == "success":
        assert body["errors"] == []
    return body["data"]


def failed(answer: httpx.Response, http_status: int, message: str | None = None) -> dict[str, Any]:
    """An error envelope with HTTP status ``http_status``; returns the whole body."""
    enveloped(answer, http_status, "error")
    body: dict[str, Any] = answer.json()
    if message is not None:
        assert body["message"] == message, body
    return body


def invalid(answer: httpx.Response, *fields: str) -> list[dict[str, Any]]:
    """A 422 validation envelope naming ``fields`` (each among its errors)."""
    body = failed(answer, 422, "Request validation failed")
    assert body["errors"], body
    named = {e["field"] for e in body["errors"]}
    assert set(fields) <= named, body["errors"]
    errors: list[dict[str, Any]] = body["errors"]
    return errors


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/api/mlmd_push", json=body)
    assert answer.json() == {"status": "success"}, answer.text
