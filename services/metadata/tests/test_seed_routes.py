"""The seed's listing routes, GET /executions and GET /artifacts (docs/api.md), at /x and /api/x:
their shapes, paging, and problem+json errors. In-process on real PostgreSQL, rolled back."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from metadata_support import push

from cmf_testing.generator import push_body as generated_push
from cmf_testing.problems import assert_problem

PREFIXES = ["", "/api"]
EXECUTION_KEYS = {
    "id",
    "uuid",
    "pipeline",
    "stage",
    "type",
    "properties",
    "custom_properties",
    "create_time_since_epoch",
    "original_create_time_since_epoch",
}
ARTIFACT_KEYS = {
    "id",
    "uri",
    "name",
    "type",
    "properties",
    "custom_properties",
    "create_time_since_epoch",
    "stored",
}


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_executions_have_the_seed_shape(
    client: httpx.AsyncClient, push_body: dict[str, Any], payload: dict[str, Any], prefix: str
) -> None:
    await push(client, push_body)
    answer = await client.get(f"{prefix}/executions", params={"pipeline_name": "Test-env"})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    assert all(set(item) == EXECUTION_KEYS for item in body["items"])
    sent = [e for s in payload["Pipeline"][0]["stages"] for e in s["executions"]]
    assert [(i["uuid"], i["stage"], i["pipeline"]) for i in body["items"]] == [
        (e["properties"]["Execution_uuid"], e["properties"]["Context_Type"], "Test-env")
        for e in sent
    ]
    assert [i["original_create_time_since_epoch"] for i in body["items"]] == [
        e["create_time_since_epoch"] for e in sent
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_artifacts_have_the_seed_shape_and_are_not_stored(
    client: httpx.AsyncClient, push_body: dict[str, Any], prefix: str
) -> None:
    await push(client, push_body)
    body = (await client.get(f"{prefix}/artifacts")).json()
    assert set(body) == {"items", "next_cursor"}
    assert len(body["items"]) == 7
    assert all(set(item) == ARTIFACT_KEYS and item["stored"] is False for item in body["items"])


async def test_artifacts_filter_by_type(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = (await client.get("/artifacts", params={"type": "Dataset"})).json()
    assert sorted(i["name"].split(":")[0] for i in body["items"]) == [
        "artifacts/data.xml",
        "artifacts/parsed/train.tsv",
    ]


async def test_artifacts_of_a_pipeline_include_those_it_shares(
    client: httpx.AsyncClient, push_body: dict[str, Any], payload: dict[str, Any]
) -> None:
    await push(client, push_body)
    await push(client, generated_push("other", 2))
    other = json.loads(json.dumps(payload).replace('"Test-env', '"Shared-env'))
    await push(
        client,
        {"exec_uuid": None, "pipeline_name": "Shared-env", "json_payload": json.dumps(other)},
    )
    test_env = (await client.get("/artifacts", params={"pipeline_name": "Test-env"})).json()
    shared = (await client.get("/artifacts", params={"pipeline_name": "Shared-env"})).json()
    assert {i["uri"] for i in test_env["items"]} == {i["uri"] for i in shared["items"]}
    assert len(test_env["items"]) == 7


async def test_pages_follow_next_cursor_to_the_end(client: httpx.AsyncClient) -> None:
    await push(client, generated_push("paged", 7))
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"pipeline_name": "paged", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/executions", params=params)).json()
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(set(seen))


async def test_a_page_that_ends_the_list_exactly_has_no_next_cursor(
    client: httpx.AsyncClient,
) -> None:
    await push(client, generated_push("exact", 4))
    first = (await client.get("/executions", params={"limit": 2})).json()
    second = (
        await client.get("/executions", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None


async def test_empty_store_lists_nothing(client: httpx.AsyncClient) -> None:
    assert (await client.get("/executions")).json() == {"items": [], "next_cursor": None}
    assert (await client.get("/artifacts")).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("route", ["executions", "artifacts"])
async def test_unknown_pipeline_is_404_problem(
    client: httpx.AsyncClient, prefix: str, route: str
) -> None:
    answer = await client.get(f"{prefix}/{route}", params={"pipeline_name": "NoSuch"})
    assert_problem(answer, 404, "pipeline_not_found")


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("limit", [0, 1001, -1, "many"])
async def test_limit_outside_1_to_1000_is_422_problem(
    client: httpx.AsyncClient, prefix: str, limit: int | str
) -> None:
    answer = await client.get(f"{prefix}/executions", params={"limit": limit})
    assert_problem(answer, 422, "invalid")
    assert answer.json()["errors"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize("route", ["executions", "artifacts"])
async def test_garbled_cursor_is_422_problem(client: httpx.AsyncClient, route: str) -> None:
    answer = await client.get(f"/api/{route}", params={"cursor": "bm90IGEgY3Vyc29y"})
    assert_problem(answer, 422, "invalid_cursor")


async def test_cursor_of_another_route_is_422_problem(client: httpx.AsyncClient) -> None:
    await push(client, generated_push("cross", 3))
    page = (await client.get("/executions", params={"limit": 1})).json()
    answer = await client.get("/artifacts", params={"limit": 1, "cursor": page["next_cursor"]})
    assert_problem(answer, 422, "invalid_cursor")


async def test_cursor_of_another_pipeline_is_422_problem(client: httpx.AsyncClient) -> None:
    await push(client, generated_push("one", 3))
    await push(client, generated_push("two", 3))
    page = (await client.get("/executions", params={"pipeline_name": "one", "limit": 1})).json()
    answer = await client.get(
        "/executions", params={"pipeline_name": "two", "cursor": page["next_cursor"]}
    )
    assert_problem(answer, 422, "invalid_cursor")


async def test_nul_in_pipeline_name_is_422_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get("/executions", params={"pipeline_name": "a\x00b"})
    assert_problem(answer, 422, "invalid_parameter")


async def test_unrouted_path_below_a_legacy_route_keeps_the_reference_shape(
    client: httpx.AsyncClient,
) -> None:
    """Only the seed's exact paths answer problem+json; /executions/... is the reference's."""
    answer = await client.get("/api/executions/p/no/such/route")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"detail": "Not Found"}
