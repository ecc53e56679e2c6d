"""Upstream v1 push and pull (docs/upstream-v1.md §3) against the captured push: the same merge
as ``/mlmd_push``, in the envelope; the pull's raw MLMD JSON as ``/mlmd_pull`` answers it."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, body_for, row_counts
from upstream_support import enveloped, failed, invalid

TOKEN = "X-CMF-Consistency-Token"


async def test_push_answers_the_merge_status_in_the_envelope(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    first = await client.post("/v1/mlmd/push", json=push_body)
    assert enveloped(first, 200) == {"status": "success"}
    assert first.json()["message"] == "MLMD pushed successfully"
    assert first.headers[TOKEN].startswith(f"{PIPELINE}:")
    again = await client.post("/v1/mlmd/push", json=push_body)
    assert enveloped(again, 200) == {"status": "exists"}
    assert TOKEN not in again.headers


async def test_push_of_a_pipeline_not_in_the_payload_is_pipeline_not_exist(
    client: httpx.AsyncClient, payload: dict[str, Any], conn: asyncpg.Connection
) -> None:
    answer = await client.post("/v1/mlmd/push", json=body_for(payload, "Other"))
    assert enveloped(answer, 200) == {"status": "pipeline_not_exist"}
    assert (await row_counts(conn))["executions"] == 0


def _no_ids(name: str) -> str:
    """A name without the server execution ids a Model's and a Metrics' name end with."""
    return re.sub(r":\d+$", ":<id>", name)


async def _stored(conn: asyncpg.Connection) -> dict[str, Any]:
    """What a push stored, without the ids and times the server assigns."""
    return {
        "executions": sorted(
            (r["uuid"], r["stage"])
            for r in await conn.fetch(
                "SELECT x.uuid, s.name AS stage FROM executions x"
                " JOIN stages s ON s.id = x.stage_id"
            )
        ),
        "artifacts": sorted(
            (r["uri"], _no_ids(r["name"]), r["type"], json.dumps(r["properties"], sort_keys=True))
            for r in await conn.fetch(
                "SELECT a.uri, a.name, t.name AS type, a.properties FROM artifacts a"
                " JOIN types t ON t.id = a.type_id"
            )
        ),
        "events": sorted(
            (r["uuid"], r["uri"], r["type"])
            for r in await conn.fetch(
                "SELECT x.uuid, a.uri, ev.type FROM events ev"
                " JOIN executions x ON x.id = ev.execution_id"
                " JOIN artifacts a ON a.id = ev.artifact_id"
            )
        ),
    }


@pytest.fixture
async def stored_by_the_reference_route(
    client: httpx.AsyncClient, conn: asyncpg.Connection, push_body: dict[str, Any]
) -> dict[str, Any]:
    """What ``/api/mlmd_push`` stores, then undone."""
    savepoint = conn.transaction()
    await savepoint.start()
    assert (await client.post("/api/mlmd_push", json=push_body)).status_code == 200
    stored = await _stored(conn)
    await savepoint.rollback()
    return stored


async def test_v1_push_stores_what_the_reference_push_stores(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    push_body: dict[str, Any],
    stored_by_the_reference_route: dict[str, Any],
) -> None:
    assert (await row_counts(conn))["executions"] == 0
    enveloped(await client.post("/v1/mlmd/push", json=push_body), 200)
    assert await _stored(conn) == stored_by_the_reference_route


async def test_pull_answers_the_same_raw_document_as_the_reference_pull(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await client.post("/v1/mlmd/push", json=push_body)
    ours = await client.post("/v1/mlmd/pull", json={"pipeline_name": PIPELINE})
    reference = await client.post("/api/mlmd_pull", json={"pipeline_name": PIPELINE})
    assert ours.status_code == 200
    assert ours.headers["content-type"] == "text/html; charset=utf-8"
    assert ours.content == reference.content
    everything = await client.post("/v1/mlmd/pull", json={})
    assert [p["name"] for p in everything.json()["Pipeline"]] == [PIPELINE]


async def test_pull_of_an_unknown_execution_is_the_literal_no_exec_uuid(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await client.post("/v1/mlmd/push", json=push_body)
    answer = await client.post(
        "/v1/mlmd/pull", json={"pipeline_name": PIPELINE, "exec_uuid": "nope"}
    )
    assert answer.status_code == 200 and answer.text == "no_exec_uuid"


async def test_pull_of_an_unknown_pipeline_is_an_enveloped_404(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/mlmd/pull", json={"pipeline_name": "NoSuch"})
    failed(answer, 404, "Pipeline NoSuch not found.")


async def test_pull_of_a_malformed_body_is_a_422_envelope(client: httpx.AsyncClient) -> None:
    invalid(await client.post("/v1/mlmd/pull", json={"last_sync_time": "soon"}), "last_sync_time")
    invalid(await client.post("/v1/mlmd/pull", content=b"{"))


def _without_pipeline(payload: dict[str, Any]) -> str:
    return json.dumps({"Pipeline": []})


def _without_uuid(payload: dict[str, Any]) -> str:
    changed = copy.deepcopy(payload)
    execution = changed["Pipeline"][0]["stages"][0]["executions"][0]
    execution["name"] = ""
    del execution["properties"]["Execution_uuid"]
    return json.dumps(changed)


BAD_PUSHES: dict[str, tuple[Any, int, str | None]] = {
    "blank pipeline name": ({"pipeline_name": "  ", "json_payload": "{}"}, 422, "pipeline_name"),
    "no pipeline name": ({"json_payload": "{}"}, 422, "pipeline_name"),
    "empty payload": ({"pipeline_name": PIPELINE, "json_payload": ""}, 422, "json_payload"),
    "no payload": ({"pipeline_name": PIPELINE}, 422, "json_payload"),
    "payload not JSON": ({"pipeline_name": PIPELINE, "json_payload": "{"}, 422, "json_payload"),
    "payload of the wrong shape": (
        {"pipeline_name": PIPELINE, "json_payload": '{"Pipeline": [{"name": 1}]}'},
        422,
        "json_payload.Pipeline.0.name",
    ),
    "body not JSON": (b"{", 422, None),
}


@pytest.mark.parametrize("case", list(BAD_PUSHES))
async def test_bad_pushes_are_422_envelopes_and_store_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection, case: str
) -> None:
    body, status, field = BAD_PUSHES[case]
    before = await row_counts(conn)
    if isinstance(body, bytes):
        answer = await client.post("/v1/mlmd/push", content=body)
    else:
        answer = await client.post("/v1/mlmd/push", json=body)
    assert answer.status_code == status
    invalid(answer, *([field] if field else []))
    assert await row_counts(conn) == before


async def test_payload_without_pipeline_is_400(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    body = {"pipeline_name": PIPELINE, "json_payload": _without_pipeline(payload)}
    answer = await client.post("/v1/mlmd/push", json=body)
    failed(answer, 400, "Invalid JSON payload. The pipeline name is missing.")
    assert (await row_counts(conn))["executions"] == 0


async def test_execution_without_uuid_is_422_version_update_and_stores_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    before = await row_counts(conn)
    body = {"pipeline_name": PIPELINE, "json_payload": _without_uuid(payload)}
    failed(await client.post("/v1/mlmd/push", json=body), 422, "version_update")
    assert await row_counts(conn) == before


@pytest.mark.parametrize(
    "query",
    [
        {"pipeline_name": PIPELINE, "exec_uuid": "72d025da-e9d5-11f1-a002-02fc00000001"},
        {"pipeline_name": PIPELINE, "last_sync_time": 0},
        {"last_sync_time": 4102444800000},  # after every update: no pipeline left
        {"pipeline_name": "", "exec_uuid": ""},  # empty means unset, as on /mlmd_pull
    ],
)
async def test_pull_narrowed_answers_as_the_reference_pull(
    client: httpx.AsyncClient, push_body: dict[str, Any], query: dict[str, Any]
) -> None:
    await client.post("/v1/mlmd/push", json=push_body)
    ours = await client.post("/v1/mlmd/pull", json=query)
    reference = await client.post("/api/mlmd_pull", json=query)
    assert ours.status_code == reference.status_code == 200
    assert ours.content == reference.content


async def test_push_over_the_body_limit_is_an_enveloped_413_and_stores_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    before = await row_counts(conn)
    body = {"pipeline_name": PIPELINE, "json_payload": "x" * (3 * 1024**2)}  # limit: 2 MiB
    failed(await client.post("/v1/mlmd/push", json=body), 413)
    assert await row_counts(conn) == before
