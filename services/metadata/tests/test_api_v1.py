"""/api/native/v1/: pipelines, stages, executions and artifacts with their filters, sorts, keyset
pages and problem+json errors. In-process on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from cmf_testing.generator import payload_text
from cmf_testing.problems import assert_problem

V1 = "/api/native/v1"
NOTES = ["a%b", "a_b", "a'b", "a\\b", 'a"b', "axb"]


def body_of(payload: dict[str, Any], pipeline: str) -> dict[str, Any]:
    return {"exec_uuid": None, "pipeline_name": pipeline, "json_payload": json.dumps(payload)}


def generated(
    name: str,
    n: int,
    *,
    stages: int = 1,
    seed: int = 0,
    edit: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """A client-shaped push of ``n`` chained executions; ``edit`` may change the executions."""
    payload = json.loads(payload_text(name, n, stages=stages, seed=seed))
    if edit is not None:
        edit([e for s in payload["Pipeline"][0]["stages"] for e in s["executions"]])
    return body_of(payload, name)


def renamed(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """The fixture's payload as another pipeline sends it: same artifacts, shared by both."""
    return dict(json.loads(json.dumps(payload).replace('"Test-env', f'"{name}')))


def with_notes(executions: list[dict[str, Any]]) -> None:
    for execution, note in zip(executions, NOTES, strict=True):
        execution["custom_properties"]["note"] = note


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/api/mlmd_push", json=body)
    assert answer.json() == {"status": "success"}, answer.text


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = await client.get(f"{V1}{path}", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


async def walk(
    client: httpx.AsyncClient, path: str, cursor: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a listing, page by page (from ``cursor``, when given)."""
    items: list[dict[str, Any]] = []
    for _ in range(1000):
        page = await get(client, path, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


# --- pipelines and stages ------------------------------------------------------------------------


async def test_pipelines_count_their_stages_executions_and_artifacts(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    await push(client, generated("gen", 5, stages=2))
    body = await get(client, "/pipelines")
    counts = {
        p["name"]: (p["stage_count"], p["execution_count"], p["artifact_count"])
        for p in body["items"]
    }
    assert counts == {"Test-env": (2, 2, 7), "gen": (2, 5, 13)}
    assert body["total"] == 2 and body["next_cursor"] is None


async def test_pipelines_artifact_counts_are_the_distinct_artifacts_of_their_stages(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    push_body: dict[str, Any],
    payload: dict[str, Any],
) -> None:
    # The kept counts (pipeline_artifact_counts) agree with counting the distinct artifacts
    # attributed to each pipeline's stages: artifacts shared by stages, by two pushes of one
    # pipeline and by two pipelines (the fixture renamed) each count once per pipeline.
    await push(client, push_body)
    await push(client, body_of(renamed(payload, "Other-env"), "Other-env"))
    for seed in (0, 1):
        await push(client, generated("gen", 6, stages=3, seed=seed))
    body = await get(client, "/pipelines")
    counted = {
        r["name"]: r["artifacts"]
        for r in await conn.fetch(
            "SELECT p.name, (SELECT count(DISTINCT at.artifact_id) FROM attributions at"
            "   JOIN stages s ON s.id = at.stage_id WHERE s.pipeline_id = p.id) AS artifacts"
            " FROM pipelines p"
        )
    }
    assert {p["name"]: p["artifact_count"] for p in body["items"]} == counted
    assert counted["Test-env"] == counted["Other-env"] == 7


async def test_pipelines_report_the_last_push_and_the_outbox_sequence(
    client: httpx.AsyncClient, conn: asyncpg.Connection, push_body: dict[str, Any]
) -> None:
    answer = await client.post("/api/mlmd_push", json=push_body)
    token_seq = int(answer.headers["X-CMF-Consistency-Token"].rsplit(":", 1)[1])
    (pipeline,) = (await get(client, "/pipelines"))["items"]
    stored = await conn.fetchval("SELECT max(create_time_since_epoch) FROM executions")
    assert pipeline["last_push_time_since_epoch"] == stored
    assert pipeline["seq"] == token_seq


async def test_pipelines_page_by_name(client: httpx.AsyncClient) -> None:
    for name in ("c", "a", "b"):
        await push(client, generated(name, 1))
    first = await get(client, "/pipelines", limit=2)
    assert [p["name"] for p in first["items"]] == ["a", "b"] and first["total"] == 3
    rest = await get(client, "/pipelines", limit=2, cursor=first["next_cursor"])
    assert [p["name"] for p in rest["items"]] == ["c"] and rest["next_cursor"] is None


async def test_stages_list_each_stage_with_its_counts(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/pipelines/Test-env/stages")
    assert body["pipeline"] == "Test-env"
    assert [(s["name"], s["execution_count"], s["artifact_count"]) for s in body["items"]] == [
        ("Test-env/Prepare", 1, 4),
        ("Test-env/Train", 1, 5),
    ]


async def test_stages_of_a_pipeline_whose_name_has_a_slash(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push(client, body_of(renamed(payload, "team/env"), "team/env"))
    body = await get(client, "/pipelines/team%2Fenv/stages")
    assert [s["name"] for s in body["items"]] == ["team/env/Prepare", "team/env/Train"]


async def test_stages_of_an_unknown_pipeline_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{V1}/pipelines/NoSuch/stages"), 404, "pipeline_not_found")


# --- executions: filters -------------------------------------------------------------------------


async def test_executions_filter_by_pipeline(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    await push(client, generated("gen", 3))
    body = await get(client, "/executions", pipeline="gen")
    assert body["total"] == 3 and {e["pipeline"] for e in body["items"]} == {"gen"}


async def test_executions_filter_by_stage(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 6, stages=3))
    body = await get(client, "/executions", stage="gen/Featurize")
    assert body["total"] == 2 and {e["stage"] for e in body["items"]} == {"gen/Featurize"}


async def test_executions_filter_by_type(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", type="Test-env/Train")
    assert [e["uuid"] for e in body["items"]] == ["72d025da-e9d5-11f1-a002-02fc00000001"]


async def test_property_filter_matches_a_string_value(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", property="split:0.2")
    assert [e["stage"] for e in body["items"]] == ["Test-env/Prepare"]


async def test_property_filter_matches_an_integer_value(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", property="seed:42")
    assert [e["custom_properties"]["seed"] for e in body["items"]] == [42]


async def test_property_filter_matches_properties_as_well_as_custom_ones(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", property="Context_Type:Test-env/Train")
    assert [e["stage"] for e in body["items"]] == ["Test-env/Train"]


async def test_repeated_property_filters_must_all_match(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 6, stages=2))
    answer = await client.get(
        f"{V1}/executions", params=[("property", "split:0.2"), ("property", "step:4")]
    )
    assert [e["custom_properties"]["step"] for e in answer.json()["items"]] == [4]


async def test_property_filter_that_matches_nothing_answers_an_empty_page(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", property="seed:43")
    assert body == {"items": [], "total": 0, "next_cursor": None}


async def test_property_filter_without_a_colon_is_422_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{V1}/executions", params={"property": "seed"})
    assert_problem(answer, 422, "invalid_property")


async def test_free_text_matches_property_values(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", q="TRAIN.PY")
    assert [e["stage"] for e in body["items"]] == ["Test-env/Train"]


async def test_free_text_does_not_match_property_keys(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 3))
    assert (await get(client, "/executions", q="learning_rate"))["total"] == 0


async def test_free_text_matches_an_execution_uuid(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/executions", q="72D025DA-E9D5")
    assert [e["stage"] for e in body["items"]] == ["Test-env/Train"]


@pytest.mark.parametrize("note", NOTES[:5])
async def test_free_text_treats_like_metacharacters_and_quotes_as_text(
    client: httpx.AsyncClient, note: str
) -> None:
    await push(client, generated("notes", 6, edit=with_notes))
    body = await get(client, "/executions", q=note)
    assert [e["custom_properties"]["note"] for e in body["items"]] == [note]


@pytest.mark.parametrize("note", NOTES)
async def test_property_filter_treats_metacharacters_as_text(
    client: httpx.AsyncClient, note: str
) -> None:
    await push(client, generated("notes", 6, edit=with_notes))
    body = await get(client, "/executions", property=f"note:{note}")
    assert [e["custom_properties"]["note"] for e in body["items"]] == [note]


async def test_created_range_keeps_executions_inside_it(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    await push(client, generated("gen", 4))
    await conn.execute("UPDATE executions SET create_time_since_epoch = 1000 + id")
    first = await conn.fetchval("SELECT min(id) FROM executions")
    body = await get(
        client, "/executions", created_after=1000 + first + 1, created_before=1000 + first + 3
    )
    assert [e["id"] for e in body["items"]] == [first + 1, first + 2]


async def test_empty_created_range_is_422_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        f"{V1}/executions", params={"created_after": 10, "created_before": 10}
    )
    assert_problem(answer, 422, "invalid_parameter")


async def test_filter_by_an_unknown_pipeline_is_404_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{V1}/executions", params={"pipeline": "NoSuch"})
    assert_problem(answer, 404, "pipeline_not_found")


async def test_filter_by_an_unknown_stage_answers_an_empty_page(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    assert (await get(client, "/executions", stage="NoSuch"))["total"] == 0


@pytest.mark.parametrize("param", ["pipeline", "stage", "type", "q"])
async def test_nul_in_a_filter_is_422_problem(client: httpx.AsyncClient, param: str) -> None:
    answer = await client.get(f"{V1}/executions", params={param: "a\x00b"})
    assert_problem(answer, 422, "invalid_parameter")


# --- executions: sort and pages ------------------------------------------------------------------


async def test_sort_by_original_time_descending(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 5))
    body = await get(client, "/executions", sort="-original_create_time_since_epoch")
    times = [e["original_create_time_since_epoch"] for e in body["items"]]
    assert times == sorted(times, reverse=True) and len(set(times)) == 5


@pytest.mark.parametrize(
    "sort",
    [
        "id",
        "-id",
        "create_time_since_epoch",
        "-last_update_time_since_epoch",
        "original_create_time_since_epoch",
    ],
)
@pytest.mark.parametrize("prop", [None, "split:0.2"])
async def test_pages_walk_every_match_once_in_order(
    client: httpx.AsyncClient, conn: asyncpg.Connection, sort: str, prop: str | None
) -> None:
    await push(client, generated("gen", 7))
    await push(client, generated("gen2", 4))
    # Ties in the sort key (one push stamps one time) must not lose or repeat rows.
    await conn.execute("UPDATE executions SET create_time_since_epoch = 5 + id % 3")
    params: dict[str, Any] = {"sort": sort, "limit": 3, **({"property": prop} if prop else {})}
    items = await walk(client, "/executions", **params)
    field = sort.lstrip("-")
    keys = [(e[field], e["id"]) for e in items]
    assert len(keys) == 11 and len({k[1] for k in keys}) == 11
    assert keys == sorted(keys, reverse=sort.startswith("-"))


async def test_total_counts_every_match_not_the_page(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 5))
    body = await get(client, "/executions", limit=2)
    assert len(body["items"]) == 2 and body["total"] == 5


async def test_last_page_has_no_next_cursor(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 4))
    first = await get(client, "/executions", limit=2, property="split:0.2")
    last = await get(
        client, "/executions", limit=2, property="split:0.2", cursor=first["next_cursor"]
    )
    assert len(last["items"]) == 2 and last["next_cursor"] is None and last["total"] == 4


async def test_cursor_keeps_its_place_when_executions_are_pushed_meanwhile(
    client: httpx.AsyncClient,
) -> None:
    await push(client, generated("gen", 4))
    first = await get(client, "/executions", limit=2)
    await push(client, generated("later", 3))
    rest = await walk(client, "/executions", limit=2, cursor=first["next_cursor"])
    ids = [e["id"] for e in first["items"] + rest]
    assert ids == sorted(ids) and len(ids) == 7


async def test_cursor_used_with_other_filters_is_422_problem(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 4))
    first = await get(client, "/executions", limit=1, property="split:0.2")
    answer = await client.get(
        f"{V1}/executions",
        params={"limit": 1, "property": "seed:0", "cursor": first["next_cursor"]},
    )
    assert_problem(answer, 422, "invalid_cursor")


async def test_cursor_used_with_another_sort_is_422_problem(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 4))
    first = await get(client, "/executions", limit=1)
    answer = await client.get(
        f"{V1}/executions", params={"sort": "-id", "cursor": first["next_cursor"]}
    )
    assert_problem(answer, 422, "invalid_cursor")


async def test_page_size_may_change_between_pages(client: httpx.AsyncClient) -> None:
    await push(client, generated("gen", 4))
    first = await get(client, "/executions", limit=1)
    rest = await get(client, "/executions", limit=10, cursor=first["next_cursor"])
    assert len(rest["items"]) == 3


@pytest.mark.parametrize(
    "cursor",
    ["x", "eyJhIjoxfQ", "A" * 40, "WzEsImFiYyIsMSwxXQ"],
    ids=["short", "json", "zeros", "unsigned"],
)
async def test_garbled_or_forged_cursor_is_422_problem(
    client: httpx.AsyncClient, cursor: str
) -> None:
    assert_problem(
        await client.get(f"{V1}/executions", params={"cursor": cursor}), 422, "invalid_cursor"
    )


async def test_empty_cursor_is_422_problem_not_the_first_page(client: httpx.AsyncClient) -> None:
    """A client that sent ``next_cursor: null`` back as an empty string must not loop forever."""
    answer = await client.get(f"{V1}/executions", params={"cursor": ""})
    assert_problem(answer, 422, "invalid_cursor")


async def test_unknown_sort_field_is_422_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{V1}/executions", params={"sort": "properties"})
    assert_problem(answer, 422, "invalid_sort")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"created_after": 2**63},
        {"created_before": "yesterday"},
        {"property": [f"k:{i}" for i in range(21)]},
    ],
    ids=["limit-0", "limit-1001", "after-over-bigint", "before-not-a-number", "21-properties"],
)
async def test_out_of_range_parameters_are_422_problem(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    assert_problem(await client.get(f"{V1}/executions", params=params), 422, "invalid")


# --- one execution -------------------------------------------------------------------------------


async def test_execution_lists_its_events_with_their_artifacts(
    client: httpx.AsyncClient, push_body: dict[str, Any], payload: dict[str, Any]
) -> None:
    await push(client, push_body)
    (listed,) = (await get(client, "/executions", type="Test-env/Train"))["items"]
    body = await get(client, f"/executions/{listed['id']}")
    sent = payload["Pipeline"][0]["stages"][1]["executions"][0]
    assert body["uuid"] == sent["properties"]["Execution_uuid"]
    assert [(e["kind"], e["artifact"]["uri"], e["artifact"]["type"]) for e in body["events"]] == [
        ("INPUT" if ev["type"] == 3 else "OUTPUT", ev["artifact"]["uri"], ev["artifact"]["type"])
        for ev in sent["events"]
    ]


async def test_unknown_execution_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{V1}/executions/999999"), 404, "execution_not_found")


@pytest.mark.parametrize("execution_id", ["0", "abc", str(2**63)])
async def test_execution_id_that_is_no_bigint_is_422_problem(
    client: httpx.AsyncClient, execution_id: str
) -> None:
    assert_problem(await client.get(f"{V1}/executions/{execution_id}"), 422, "invalid")


# --- artifacts -----------------------------------------------------------------------------------


async def test_artifacts_of_a_pipeline_include_those_it_shares(
    client: httpx.AsyncClient, push_body: dict[str, Any], payload: dict[str, Any]
) -> None:
    await push(client, push_body)
    await push(client, body_of(renamed(payload, "Other-env"), "Other-env"))
    await push(client, generated("gen", 2))
    body = await get(client, "/artifacts", pipeline="Other-env")
    assert body["total"] == 7
    assert all(a["pipelines"] == ["Other-env", "Test-env"] for a in body["items"])


async def test_artifacts_filter_by_stage_and_type(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/artifacts", stage="Test-env/Train", type="Dataset")
    assert [a["name"].split(":")[0] for a in body["items"]] == ["artifacts/parsed/train.tsv"]


async def test_artifact_property_filter_matches_a_float(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    body = await get(client, "/artifacts", property="auc:0.91")
    assert [a["type"] for a in body["items"]] == ["Metrics"]


async def test_artifact_lookup_by_uri(client: httpx.AsyncClient, push_body: dict[str, Any]) -> None:
    await push(client, push_body)
    body = await get(client, "/artifacts", uri="18b9e58c4262091a8806fb81b89b9f61")
    assert [a["name"] for a in body["items"]] == [
        "artifacts/data.xml:18b9e58c4262091a8806fb81b89b9f61"
    ]


async def test_artifact_lookup_by_pipeline_and_name(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    name = "artifacts/parsed/train.tsv:2aa64341cb31a70b49665d3df73cc3ec"
    body = await get(client, "/artifacts", pipeline="Test-env", name=name)
    assert [a["uri"] for a in body["items"]] == ["2aa64341cb31a70b49665d3df73cc3ec"]


async def test_artifact_lookup_of_an_unknown_uri_is_an_empty_page(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    assert (await get(client, "/artifacts", uri="0" * 32))["items"] == []


async def test_artifacts_sort_by_name_descending(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    names = [a["name"] for a in await walk(client, "/artifacts", sort="-name", limit=2)]
    assert names == sorted(names, reverse=True) and len(names) == 7


@pytest.mark.parametrize("sort", ["id", "-name", "type", "-create_time_since_epoch"])
@pytest.mark.parametrize("prop", [None, "git_repo:/srv/repo/cmf_git_remote.git"])
async def test_artifact_pages_walk_every_match_once_in_order(
    client: httpx.AsyncClient, sort: str, prop: str | None
) -> None:
    await push(client, generated("gen", 4))
    params: dict[str, Any] = {"sort": sort, "limit": 3, **({"property": prop} if prop else {})}
    items = await walk(client, "/artifacts", **params)
    field = sort.lstrip("-")
    keys = [(a[field], a["id"]) for a in items]
    assert len(keys) == 11 and len({k[1] for k in keys}) == 11
    assert keys == sorted(keys, reverse=sort.startswith("-"))


async def test_artifact_lists_its_events_with_their_executions(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    (listed,) = (await get(client, "/artifacts", uri="2aa64341cb31a70b49665d3df73cc3ec"))["items"]
    body = await get(client, f"/artifacts/{listed['id']}")
    assert [(e["kind"], e["execution"]["stage"]) for e in body["events"]] == [
        ("OUTPUT", "Test-env/Prepare"),
        ("INPUT", "Test-env/Train"),
    ]
    assert body["events_total"] == 2 and body["pipelines"] == ["Test-env"]


async def test_artifact_events_stop_at_the_limit_and_report_the_total(
    client: httpx.AsyncClient,
) -> None:
    await push(client, generated("gen", 6))
    (environment,) = (await get(client, "/artifacts", type="Environment"))["items"]
    body = await get(client, f"/artifacts/{environment['id']}", events=4)
    assert len(body["events"]) == 4 and body["events_total"] == 6


async def test_unknown_artifact_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{V1}/artifacts/424242"), 404, "artifact_not_found")
