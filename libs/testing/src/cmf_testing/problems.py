"""The shape of an error on our own routes (the seed's and ``/api/native/v1``): RFC 9457
``application/problem+json`` with a stable ``code`` and the ``trace_id`` (``docs/api.md``)."""

from __future__ import annotations

import httpx


def assert_problem(answer: httpx.Response, status: int, code: str) -> None:
    """``answer`` is a problem+json of ``status`` whose ``code`` (and ``type``) is ``code``."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith(code)
    assert body["trace_id"] and body["detail"] and body["title"]
