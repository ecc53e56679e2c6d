"""The shape of upstream CMF's v1 envelope (docs/upstream-v1.md §2), as the tests of every
service that serves v1 routes check it."""

from __future__ import annotations

import re
from typing import Any

import httpx

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")
ENVELOPE_KEYS = {"status", "code", "data", "message", "errors", "meta"}


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
