"""The scene the pipeline-prefix tests of every service share
(``services/*/tests/test_prefix_*.py``).

Three pipelines made of the captured example: ``teamA-p`` (inside the prefix ``teamA-``),
``teamB-secret`` (outside it, with artifacts and executions of its own) and ``teamB-shared``
(outside it, sharing ``teamA-p``'s artifacts, with executions of its own). A principal
restricted to ``teamA-`` must never be answered anything only the last two hold:
:data:`MARKERS` are strings only they carry.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx

from cmf_common.principal import PRINCIPAL_HEADER, Principal, sign_principal

SECRET = b"prefix-tests-principal-secret-01"
PREFIX = "teamA-"
VISIBLE, HIDDEN, SHARED = "teamA-p", "teamB-secret", "teamB-shared"
# Only the pipelines outside the prefix hold these (unless a request itself names one: an
# answer may echo what was asked). Their execution uuids in their dashed form: a trace id is
# hex too, and may hold ``e9d6`` by chance.
MARKERS = (HIDDEN, SHARED, "hiddenzz", "-e9d6-", "-e9d7-")
EXAMPLE = "Test-env"  # the captured example's pipeline


def visible_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(payload).replace(EXAMPLE, VISIBLE)))


def hidden_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The example as ``teamB-secret``: artifacts (names ``hiddenzz/…``, md5s reversed) and
    executions (uuids ``…-e9d6-…``) of its own."""
    text = json.dumps(payload).replace(EXAMPLE, HIDDEN).replace("artifacts/", "hiddenzz/")
    text = re.sub(r"[0-9a-f]{32}", lambda m: m.group(0)[::-1], text)
    return dict(json.loads(text.replace("e9d5", "e9d6")))


def shared_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The example as ``teamB-shared``: ``teamA-p``'s artifacts, executions ``…-e9d7-…``."""
    text = json.dumps(payload).replace(EXAMPLE, SHARED).replace("e9d5", "e9d7")
    return dict(json.loads(text))


SCENE = ((VISIBLE, visible_payload), (HIDDEN, hidden_payload), (SHARED, shared_payload))


def push_body(pipeline: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The CMF push of ``payload`` (made for ``pipeline`` by one of :data:`SCENE`)."""
    return {"exec_uuid": None, "pipeline_name": pipeline, "json_payload": json.dumps(payload)}


def signed(
    prefix: str | None = PREFIX,
    scopes: frozenset[str] = frozenset({"write"}),
    secret: bytes = SECRET,
    **kw: Any,
) -> dict[str, str]:
    """The principal header of a token restricted to ``prefix``, as the gateway signs it."""
    principal = Principal("test-token", scopes, prefix, "tok-1")
    return {PRINCIPAL_HEADER: sign_principal(principal, secret, now=time.time(), **kw)}


def leaks(answer_text: str, request_text: str) -> list[str]:
    """The markers ``answer_text`` carries that ``request_text`` did not ask for."""
    return [m for m in MARKERS if m in answer_text and m not in request_text]


async def leaks_of(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> list[str]:
    """Call ``path`` as a principal restricted to :data:`PREFIX` (never a 5xx): what its answer
    carries of the pipelines outside, each as ``"<method> <path> <kw>: <marker>"``."""
    answer = await client.request(method, path, headers=signed(), **kw)
    assert answer.status_code < 500, (method, path, answer.text)
    asked_for = str(answer.request.url) + answer.request.content.decode()
    return [f"{method} {path} {kw}: {m}" for m in leaks(answer.text, asked_for)]


def filled(path: str, values: dict[str, Any]) -> str | None:
    """``path`` with its ``{parameters}`` from ``values``; ``None`` when one has no value."""
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        if m.group(1) not in values:
            missing = True
            return ""
        return str(values[m.group(1)])

    result = re.sub(r"\{([A-Za-z_]+)(?::path)?\}", fill, path)
    return None if missing else result
