"""/api/native/v1/views/: what the web UI's pages read. In-process on real PostgreSQL, each test
rolled back."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from metadata_support import PIPELINE, body_for, push

from cmf_common.service import state_of
from cmf_metadata.api.deps import MetadataState
from cmf_testing.generator import payload_text, stage_short_name
from cmf_testing.problems import assert_problem

VIEWS = "/api/native/v1/views"
SWEEP = "Sweep"
SWEEP_STAGE = f"{SWEEP}/{stage_short_name(0)}"
LABEL_MD5 = "800d3d1d5fb149cbdf2e138cb024c9a6"
ENV_FILE = "python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt"

pytestmark = pytest.mark.usefixtures("store")


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = await client.get(f"{VIEWS}{path}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def push_sweep(client: httpx.AsyncClient, n: int = 12) -> None:
    payload = json.loads(payload_text(SWEEP, n, stages=1))
    await push(client, body_for(payload, SWEEP))


async def push_fixture(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    await push(client, body_for(payload))


async def ids_of(client: httpx.AsyncClient, **params: Any) -> list[int]:
    page = await get(client, "/executions", pipeline=SWEEP, stage=SWEEP_STAGE, **params)
    return [e["id"] for e in page["items"]]


async def test_pipeline_cards_come_last_pushed_first_with_their_counts(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    await push_sweep(client)
    page = await get(client, "/pipelines")
    assert [p["name"] for p in page["items"]] == [SWEEP, PIPELINE]
    assert page["total"] == 2
    test_env = page["items"][1]
    assert (test_env["stage_count"], test_env["execution_count"]) == (2, 2)
    assert test_env["artifact_count"] == 7
    assert test_env["last_push_time_since_epoch"] > 0


async def test_pipeline_cards_search_names_in_any_case(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    await push_sweep(client)
    page = await get(client, "/pipelines", q="SWE")
    assert [p["name"] for p in page["items"]] == [SWEEP]
    assert (await get(client, "/pipelines", q="%"))["total"] == 0


async def test_pipeline_overview_lists_stages_and_artifact_types(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    overview = await get(client, "/pipeline", name=PIPELINE)
    assert [(s["label"], s["execution_count"]) for s in overview["stages"]] == [
        ("Prepare", 1),
        ("Train", 1),
    ]
    types = {t["type"]: t["count"] for t in overview["artifact_types"]}
    assert types["Dataset"] == 2 and types["Model"] == 1 and types["Label"] == 1


def linked_artifacts(payload: dict[str, Any]) -> set[tuple[str, str]]:
    """(type, uri) of every artifact an event of the payload links."""
    return {
        (event["artifact"]["type"], event["artifact"]["uri"])
        for pipeline in payload["Pipeline"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
        for event in execution["events"]
    }


async def test_pipeline_counts_each_artifact_once_across_stages_and_pushes(
    client: httpx.AsyncClient,
) -> None:
    # Each execution reads what the one before wrote, across the three stages, and all of them
    # read one Environment; the second push adds executions and artifacts of its own.
    pushed = [json.loads(payload_text(SWEEP, 9, stages=3, seed=s)) for s in (0, 1)]
    for payload in pushed:
        await push(client, body_for(payload, SWEEP))
    expected = linked_artifacts(pushed[0]) | linked_artifacts(pushed[1])
    overview = await get(client, "/pipeline", name=SWEEP)
    assert overview["artifact_count"] == len(expected)
    by_type = {t["type"]: t["count"] for t in overview["artifact_types"]}
    assert by_type == {t: sum(1 for k, _ in expected if k == t) for t, _ in expected}
    (card,) = (await get(client, "/pipelines", q=SWEEP))["items"]
    assert card["artifact_count"] == len(expected)


async def test_unknown_pipeline_is_a_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{VIEWS}/pipeline", params={"name": "nope"})
    assert_problem(answer, 404, "pipeline_not_found")


async def test_stage_columns_put_the_users_properties_first(
    client: httpx.AsyncClient,
) -> None:
    await push_sweep(client)
    columns = await get(client, "/stage-columns", pipeline=SWEEP, stage=SWEEP_STAGE)
    by_key = {c["key"]: c for c in columns["columns"]}
    assert by_key["learning_rate"]["numeric"] and by_key["step"]["numeric"]
    assert not by_key["Execution"]["numeric"]
    assert by_key["Git_Repo"]["bag"] == "properties"
    assert columns["sampled"] == 12
    assert columns["default_columns"][:4] == ["learning_rate", "seed", "split", "step"]
    assert "Python_Env" not in columns["default_columns"]


async def test_stage_columns_are_kept_until_the_next_push_of_their_pipeline(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await push_sweep(client)
    kept = state_of(app, MetadataState).stage_columns
    first = await get(client, "/stage-columns", pipeline=SWEEP, stage=SWEEP_STAGE)
    assert await get(client, "/stage-columns", pipeline=SWEEP, stage=SWEEP_STAGE) == first
    assert len(kept.entries) == 1
    # A push of the pipeline raises its version: the next answer holds the key it brought.
    payload = json.loads(payload_text(SWEEP, 3, stages=1, seed=1))
    for execution in payload["Pipeline"][0]["stages"][0]["executions"]:
        execution["custom_properties"]["note"] = "second push"
    await push(client, body_for(payload, SWEEP))
    after = await get(client, "/stage-columns", pipeline=SWEEP, stage=SWEEP_STAGE)
    assert "note" in {c["key"] for c in after["columns"]}
    assert "note" not in {c["key"] for c in first["columns"]}
    assert len(kept.entries) == 2


async def test_unknown_stage_is_a_problem(client: httpx.AsyncClient) -> None:
    await push_sweep(client)
    answer = await client.get(
        f"{VIEWS}/stage-columns", params={"pipeline": SWEEP, "stage": "Sweep/None"}
    )
    assert_problem(answer, 404, "stage_not_found")


async def test_stage_executions_come_newest_first_in_numbered_pages(
    client: httpx.AsyncClient,
) -> None:
    await push_sweep(client)
    every = await ids_of(client, limit=100)
    assert every == sorted(every, reverse=True) and len(every) == 12
    page = await get(client, "/executions", pipeline=SWEEP, stage=SWEEP_STAGE, offset=5, limit=5)
    assert [e["id"] for e in page["items"]] == every[5:10]
    assert (page["total"], page["offset"]) == (12, 5)


async def test_stage_executions_sort_by_a_numeric_property(client: httpx.AsyncClient) -> None:
    await push_sweep(client)
    page = await get(
        client, "/executions", pipeline=SWEEP, stage=SWEEP_STAGE, sort="-property:step", limit=3
    )
    assert [e["custom_properties"]["step"] for e in page["items"]] == [11, 10, 9]
    assert page["total"] == 12


async def test_stage_executions_filter_by_free_text(client: httpx.AsyncClient) -> None:
    await push_sweep(client)
    every = await get(client, "/executions", pipeline=SWEEP, stage=SWEEP_STAGE)
    uuid = every["items"][3]["uuid"]
    page = await get(client, "/executions", pipeline=SWEEP, stage=SWEEP_STAGE, q=uuid[:13])
    assert [e["uuid"] for e in page["items"]] == [uuid]
    assert page["total"] == 1


async def test_stage_executions_refuse_an_unknown_sort(client: httpx.AsyncClient) -> None:
    await push_sweep(client)
    answer = await client.get(
        f"{VIEWS}/executions", params={"pipeline": SWEEP, "stage": SWEEP_STAGE, "sort": "uuid"}
    )
    assert_problem(answer, 422, "invalid_sort")


async def test_compare_marks_the_rows_that_differ_and_their_numbers(
    client: httpx.AsyncClient,
) -> None:
    await push_sweep(client)
    ids = (await ids_of(client))[:3]
    answer = await get(client, "/compare", ids=",".join(map(str, ids)))
    assert [e["id"] for e in answer["executions"]] == ids
    rows = {r["key"]: r for r in answer["rows"]}
    assert rows["step"]["differs"] and rows["step"]["numbers"] == [11.0, 10.0, 9.0]
    assert not rows["split"]["differs"] and rows["split"]["numbers"] == [0.2, 0.2, 0.2]
    assert rows["Execution"]["numbers"] is None
    assert rows["step"]["chart"] and not rows["split"]["chart"]


async def test_compare_takes_at_most_ten(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{VIEWS}/compare", params={"ids": ",".join(map(str, range(1, 12)))})
    assert_problem(answer, 422, "invalid_parameter")


async def test_compare_of_a_missing_execution_is_a_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{VIEWS}/compare", params={"ids": "999999"})
    assert_problem(answer, 404, "execution_not_found")


async def test_artifacts_of_a_type_sort_by_name(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    page = await get(client, "/artifacts", pipeline=PIPELINE, type="Dataset", sort="name")
    names = [a["name"] for a in page["items"]]
    assert names == sorted(names) and len(names) == 2
    assert page["items"][0]["pipelines"] == [PIPELINE]
    found = await get(client, "/artifacts", pipeline=PIPELINE, q="model.pkl")
    assert [a["type"] for a in found["items"]] == ["Model"]


async def _artifact_id(client: httpx.AsyncClient, type: str) -> int:
    page = await get(client, "/artifacts", pipeline=PIPELINE, type=type)
    return int(page["items"][0]["id"])


async def test_labels_of_a_dataset_come_in_pages(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    rows = "".join(f"{i},label{i}\n" for i in range(120))
    await client.post("/api/label", files={"file": (LABEL_MD5, f"id,label\n{rows}".encode())})
    dataset = (await get(client, "/artifacts", pipeline=PIPELINE, type="Dataset", q="data.xml"))[
        "items"
    ][0]["id"]
    page = await get(client, f"/labels/{dataset}", offset=100, limit=50)
    assert page["columns"] == ["id", "label"]
    assert page["rows"][0] == ["100", "label100"] and len(page["rows"]) == 20
    assert (page["total"], page["file_name"]) == (120, LABEL_MD5)
    label = await _artifact_id(client, "Label")
    assert (await get(client, f"/labels/{label}"))["total"] == 120


async def test_labels_not_uploaded_are_a_problem(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    label = await _artifact_id(client, "Label")
    assert_problem(await client.get(f"{VIEWS}/labels/{label}"), 404, "labels_not_found")
    model = await _artifact_id(client, "Model")
    assert_problem(await client.get(f"{VIEWS}/labels/{model}"), 404, "labels_not_found")


async def test_model_card_holds_its_executions_inputs_and_outputs(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    model = await _artifact_id(client, "Model")
    card = await get(client, f"/model-card/{model}")
    assert card["model"]["id"] == model
    assert [e["stage"] for e in card["executions"]] == [f"{PIPELINE}/Train"]
    assert {a["type"] for a in card["inputs"]} == {"Environment", "Dataset"}
    assert {a["type"] for a in card["outputs"]} == {"Metrics", "Step_Metrics"}


async def test_model_card_of_a_dataset_is_a_problem(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    dataset = await _artifact_id(client, "Dataset")
    assert_problem(await client.get(f"{VIEWS}/model-card/{dataset}"), 404, "not_a_model")


async def test_python_env_of_an_execution_is_its_uploaded_file(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    execution = (await client.get("/api/native/v1/executions")).json()["items"][0]["id"]
    missing = await client.get(f"{VIEWS}/executions/{execution}/python-env")
    assert_problem(missing, 404, "python_env_not_found")
    await client.post("/api/python-env", files={"file": (ENV_FILE, b"numpy==2.0\n")})
    answer = await client.get(f"{VIEWS}/executions/{execution}/python-env")
    assert answer.status_code == 200 and answer.text == "numpy==2.0\n"
    assert answer.headers["content-type"].startswith("text/plain")


async def test_tensorboard_is_not_configured_by_default(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push_fixture(client, payload)
    answer = await get(client, "/tensorboard", pipeline=PIPELINE)
    assert answer == {"pipeline": PIPELINE, "configured": False, "url": None, "files": []}
