"""Upstream v1 listings (docs/upstream-v1.md §4, §5) against the
captured push: each answers in the envelope the data its 0.1.0 twin answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, push, row_counts
from upstream_support import enveloped, failed, invalid

PREPARE, TRAIN = f"{PIPELINE}/Prepare", f"{PIPELINE}/Train"
TRAIN_UUID = "72d025da-e9d5-11f1-a002-02fc00000001"


@pytest.fixture(autouse=True)
async def pushed(client: httpx.AsyncClient, push_body: dict[str, Any]) -> None:
    await push(client, push_body)


async def twin(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = await client.get(f"/api{path}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_pipelines_are_the_reference_list(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get("/v1/pipelines"), 200)
    assert data == await twin(client, "/pipelines") == [PIPELINE]


async def test_stages_carry_the_pipeline_name_and_the_reference_stages(
    client: httpx.AsyncClient,
) -> None:
    data = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/stages"), 200)
    assert data == {"pipeline_name": PIPELINE, **await twin(client, f"/pipeline-stages/{PIPELINE}")}
    assert data["stages"] == [PREPARE, TRAIN] and data["total_stages"] == 2


async def test_stages_of_an_unknown_pipeline_are_empty(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get("/v1/pipelines/NoSuch/stages"), 200)
    assert data == {"pipeline_name": "NoSuch", "stages": [], "total_stages": 0}


@pytest.mark.parametrize("stage_path", [TRAIN, quote(TRAIN, safe="")])
async def test_artifact_types_by_stage_take_the_stage_from_the_path(
    client: httpx.AsyncClient, stage_path: str
) -> None:
    answer = await client.post(f"/v1/pipelines/{PIPELINE}/stages/{stage_path}/artifacts/types")
    data = enveloped(answer, 200)
    assert data == await twin(client, f"/artifact-types-by-stage/{PIPELINE}", stage_name=TRAIN)
    assert "Model" in data


@pytest.mark.parametrize(
    "body",
    [
        {"active_page": 1, "record_per_page": 5},  # upstream's UI line: the stage is the path's
        {"stage_name": TRAIN, "active_page": 1, "record_per_page": 5},  # its CMFQuery line
        {},
    ],
)
async def test_executions_by_stage_accept_both_drafts_of_the_body(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    answer = await client.post(f"/v1/pipelines/{PIPELINE}/stages/{TRAIN}/executions", json=body)
    data = enveloped(answer, 200)
    assert data == await twin(client, f"/executions-by-stage/{PIPELINE}", stage_name=TRAIN)
    assert data["total_items"] == 1 and set(data["items"][0]) == {
        "execution_id",
        "execution_properties",
    }


async def test_executions_by_stage_page_sort_and_filter_as_the_reference(
    client: httpx.AsyncClient,
) -> None:
    body = {"active_page": 2, "record_per_page": 1, "sort_order": "asc", "filter_value": "x"}
    answer = await client.post(f"/v1/pipelines/{PIPELINE}/stages/{TRAIN}/executions", json=body)
    params = {k: v for k, v in body.items()} | {"stage_name": TRAIN}
    assert enveloped(answer, 200) == await twin(
        client, f"/executions-by-stage/{PIPELINE}", **params
    )


@pytest.mark.parametrize(("filter_value", "total"), [("%", 1), ("_", 1), ("\\%", 0)])
@pytest.mark.parametrize("route", ["executions", "artifacts"])
async def test_stage_listings_filter_with_the_reference_wildcards(
    client: httpx.AsyncClient, route: str, filter_value: str, total: int
) -> None:
    """``%`` and ``_`` are ILIKE wildcards in the reference's filter, ``\\`` escapes them."""
    body: dict[str, Any] = {"filter_value": filter_value}
    params: dict[str, Any] = {"stage_name": TRAIN, "filter_value": filter_value}
    if route == "artifacts":
        body["artifact_type"] = params["artifact_type"] = "Dataset"
    answer = await client.post(f"/v1/pipelines/{PIPELINE}/stages/{TRAIN}/{route}", json=body)
    data = enveloped(answer, 200)
    assert data == await twin(client, f"/{route}-by-stage/{PIPELINE}", **params)
    assert data["total_items"] == total


@pytest.mark.parametrize("stage_name", [None, TRAIN])
async def test_artifacts_by_stage_answer_the_reference_page(
    client: httpx.AsyncClient, stage_name: str | None
) -> None:
    body: dict[str, Any] = {"artifact_type": "Dataset", "sort_field": "name", "sort_order": "desc"}
    if stage_name is not None:
        body["stage_name"] = stage_name
    answer = await client.post(f"/v1/pipelines/{PIPELINE}/stages/{TRAIN}/artifacts", json=body)
    data = enveloped(answer, 200)
    params = {"stage_name": TRAIN, "artifact_type": "Dataset", "sort_order": "desc"}
    assert data == await twin(client, f"/artifacts-by-stage/{PIPELINE}", **params)
    assert data["total_items"] == 1
    assert {"artifact_id", "name", "create_time_since_epoch", "artifact_properties"} <= set(
        data["items"][0]
    )


BAD_STAGE_BODIES: dict[str, tuple[str, Any, str]] = {
    "artifacts without artifact_type": ("artifacts", {"active_page": 1}, "artifact_type"),
    "artifacts of page 0": (
        "artifacts",
        {"artifact_type": "Model", "active_page": 0},
        "active_page",
    ),
    "artifacts with a bad sort order": (
        "artifacts",
        {"artifact_type": "Model", "sort_order": "sideways"},
        "sort_order",
    ),
    "artifacts of another stage": (
        "artifacts",
        {"artifact_type": "Model", "stage_name": PREPARE},
        "stage_name",
    ),
    "executions of 0 per page": ("executions", {"record_per_page": 0}, "record_per_page"),
    "executions of too many per page": (
        "executions",
        {"record_per_page": 10**6},
        "record_per_page",
    ),
    "executions with a filter too long": (
        "executions",
        {"filter_value": "x" * 5000},
        "filter_value",
    ),
    "executions of another stage": ("executions", {"stage_name": PREPARE}, "stage_name"),
    "executions with a page as text": ("executions", {"active_page": "one"}, "active_page"),
}


@pytest.mark.parametrize("case", list(BAD_STAGE_BODIES))
async def test_bad_stage_bodies_are_422_envelopes(
    client: httpx.AsyncClient, conn: asyncpg.Connection, case: str
) -> None:
    route, body, field = BAD_STAGE_BODIES[case]
    before = await row_counts(conn)
    answer = await client.post(f"/v1/pipelines/{PIPELINE}/stages/{TRAIN}/{route}", json=body)
    invalid(answer, field)
    assert await row_counts(conn) == before


@pytest.mark.parametrize("route", ["artifacts", "executions"])
async def test_stage_listings_without_a_body_are_422_envelopes(
    client: httpx.AsyncClient, route: str
) -> None:
    invalid(await client.post(f"/v1/pipelines/{PIPELINE}/stages/{TRAIN}/{route}"))


async def test_pipeline_executions_are_a_list_of_execution_records(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/executions"), 200)
    assert isinstance(data, list) and len(data) == 2
    ids = {r["uuid"]: r["id"] for r in await conn.fetch("SELECT uuid, id FROM executions")}
    assert {r["Execution_uuid"]: r["id"] for r in data} == ids
    assert all(r["custom_properties_Python_Env"].endswith(".txt") for r in data)
    assert [r["Context_Type"] for r in data] == [TRAIN, PREPARE]  # the pull's stage order


async def test_pipeline_artifacts_are_each_artifact_once(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/artifacts"), 200)
    assert isinstance(data, list)
    stored = {r["id"]: r["uri"] for r in await conn.fetch("SELECT id, uri FROM artifacts")}
    assert sorted(r["id"] for r in data) == sorted(stored)
    assert {r["id"]: r["uri"] for r in data} == stored
    assert {"id", "name", "type", "uri", "create_time_since_epoch"} <= set(data[0])


@pytest.mark.parametrize("route", ["executions", "artifacts", "executions/list"])
async def test_pipeline_records_of_an_unknown_pipeline_are_404(
    client: httpx.AsyncClient, route: str
) -> None:
    failed(await client.get(f"/v1/pipelines/NoSuch/{route}"), 404, "Pipeline NoSuch not found.")


async def test_execution_list_is_the_reference_list(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/executions/list"), 200)
    assert data == await twin(client, f"/list-of-executions/{PIPELINE}")
    assert "Train_72d0" in data


async def test_artifact_types_are_the_reference_list(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get("/v1/artifacts/types"), 200)
    assert data == await twin(client, "/artifact_types")
    assert "Environment" not in data and "Model" in data


async def _model_id(conn: asyncpg.Connection, type_name: str = "Model") -> int:
    value = await conn.fetchval(
        "SELECT a.id FROM artifacts a JOIN types t ON t.id = a.type_id WHERE t.name = $1",
        type_name,
    )
    return int(value)


async def test_model_card_by_id_is_the_reference_card(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    model = await _model_id(conn)
    data = enveloped(await client.get(f"/v1/artifacts/models/{model}/card"), 200)
    assert data == await twin(client, "/model-card", modelId=model)
    assert len(data) == 4 and data[0][0]["id"] == model
    assert enveloped(await client.get("/v1/model-card", params={"modelId": model}), 200) == data


async def test_model_card_by_id_of_another_type_is_400(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    dataset = await _model_id(conn, "Dataset")
    answer = await client.get(f"/v1/artifacts/models/{dataset}/card")
    failed(answer, 400, f"Artifact id {dataset} is not a Model artifact")
    # /v1/model-card checks no type: the reference's four empty cells
    data = enveloped(await client.get("/v1/model-card", params={"modelId": dataset}), 200)
    assert data == ["", "", "", ""]


@pytest.mark.parametrize("model_id", ["999999999", str(2**70)])
async def test_model_card_by_id_of_no_artifact_is_404(
    client: httpx.AsyncClient, model_id: str
) -> None:
    answer = await client.get(f"/v1/artifacts/models/{model_id}/card")
    failed(answer, 404, f"Model artifact with id {model_id} not found")


@pytest.mark.parametrize("params", [{}, {"modelId": "x"}, {"modelId": str(2**70)}])
async def test_model_card_with_a_bad_id_is_a_422_envelope(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    invalid(await client.get("/v1/model-card", params=params), "modelId")
    if "modelId" in params and params["modelId"] == "x":
        invalid(await client.get("/v1/artifacts/models/x/card"), "model_id")
