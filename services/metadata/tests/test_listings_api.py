"""The CMF listing routes and the model card (docs/wire-contract.md §1.4, §1.9) on real
PostgreSQL, each test rolled back, against the captured push (cmf_testing's data/cmf) and
variations of it."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, body_for, push, renamed

from cmf_common.service import state_of
from cmf_metadata.api.deps import MetadataState

PREPARE, TRAIN = f"{PIPELINE}/Prepare", f"{PIPELINE}/Train"
PREPARE_UUID = "6e892a4e-e9d5-11f1-ba62-02fc00000001"
TRAIN_UUID = "72d025da-e9d5-11f1-a002-02fc00000001"
# The property names of an execution on the reference server (docs/wire-contract.md §1.4's example).
EXECUTION_PROPERTY_NAMES = {
    "Context_Type",
    "Context_ID",
    "Execution",
    "Execution_uuid",
    "Git_Repo",
    "Git_Start_Commit",
    "Git_End_Commit",
    "Pipeline_Type",
    "Pipeline_id",
    "Execution_type_name",
    "Python_Env",
    "original_create_time_since_epoch",
}
HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


def train_stage_of(payload: dict[str, Any], customs: list[dict[str, Any]]) -> dict[str, Any]:
    """The payload with its Train stage holding one execution per entry of ``customs``: each
    a copy of the real Train execution with its own uuid and the entry's custom properties
    (``create_time_since_epoch`` among them sets the execution's creation time)."""
    changed = copy.deepcopy(payload)
    train = changed["Pipeline"][0]["stages"][1]
    template = train["executions"][0]
    executions = []
    for i, custom in enumerate(customs):
        execution = copy.deepcopy(template)
        execution["properties"]["Execution_uuid"] = f"{i:08x}-0000-11f1-0000-000000000000"
        execution["create_time_since_epoch"] = custom.pop("create_time_since_epoch", 1_000 + i)
        execution["custom_properties"] = custom
        executions.append(execution)
    train["executions"] = executions
    return changed


async def execution_ids(conn: asyncpg.Connection) -> dict[str, int]:
    return {r["uuid"]: r["id"] for r in await conn.fetch("SELECT uuid, id FROM executions")}


async def artifact_ids(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        r["type"] + ":" + r["name"]: r["id"] for r in await conn.fetch("SELECT * FROM artifacts")
    }


def properties_of(item: dict[str, Any], key: str = "execution_properties") -> dict[str, Any]:
    return {p["name"]: p["value"] for p in item[key]}


@pytest.fixture
async def pushed(client: httpx.AsyncClient, push_body: dict[str, Any]) -> None:
    await push(client, push_body)


# ---- pipelines, types, stages ------------------------------------------------------------------


async def test_pipelines_lists_the_newest_first(
    client: httpx.AsyncClient, payload: dict[str, Any], push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    await push(client, body_for(renamed(payload, "Other-env"), "Other-env"))
    answer = await client.get("/api/pipelines")
    assert answer.status_code == 200
    assert answer.json() == ["Other-env", PIPELINE]


async def test_pipelines_of_an_empty_store_is_an_empty_list(client: httpx.AsyncClient) -> None:
    assert (await client.get("/pipelines")).json() == []


@pytest.mark.usefixtures("pushed")
async def test_artifact_types_leave_out_environment(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/artifact_types")
    assert sorted(answer.json()) == ["Dataset", "Label", "Metrics", "Model", "Step_Metrics"]


@pytest.mark.usefixtures("pushed")
async def test_artifact_types_come_in_the_order_the_push_first_met_them(
    client: httpx.AsyncClient,
) -> None:
    """As the reference answers the example pipeline (docs/wire-contract.md §1.4)."""
    answer = await client.get("/api/artifact_types")
    assert answer.json() == ["Dataset", "Label", "Model", "Step_Metrics", "Metrics"]


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_pipeline_stages_are_the_sorted_context_types(
    client: httpx.AsyncClient, prefix: str
) -> None:
    answer = await client.get(f"{prefix}/pipeline-stages/{PIPELINE}")
    assert answer.json() == {"stages": [PREPARE, TRAIN], "total_stages": 2}


async def test_pipeline_stages_of_an_unknown_pipeline_is_empty(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/pipeline-stages/NoSuch")
    assert answer.status_code == 200
    assert answer.json() == {"stages": [], "total_stages": 0}


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize(
    ("stage", "types"),
    [(TRAIN, ["Dataset", "Metrics", "Model", "Step_Metrics"]), (PREPARE, ["Dataset", "Label"])],
)
async def test_artifact_types_by_stage_are_sorted_without_environment(
    client: httpx.AsyncClient, stage: str, types: list[str]
) -> None:
    answer = await client.get(
        f"/api/artifact-types-by-stage/{PIPELINE}", params={"stage_name": stage}
    )
    assert answer.json() == types


async def test_artifact_types_by_stage_of_an_unknown_pipeline_is_empty(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/artifact-types-by-stage/NoSuch", params={"stage_name": "x"})
    assert answer.json() == []


async def test_artifact_types_by_stage_without_stage_name_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/api/artifact-types-by-stage/{PIPELINE}")
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"


# ---- executions-by-stage -----------------------------------------------------------------------


@pytest.mark.usefixtures("pushed")
async def test_executions_by_stage_item_has_the_reference_shape(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    answer = await client.get(f"/api/executions-by-stage/{PIPELINE}", params={"stage_name": TRAIN})
    assert answer.status_code == 200
    body = answer.json()
    assert body["total_items"] == 1
    (item,) = body["items"]
    assert set(item) == {"execution_id", "execution_properties"}
    assert item["execution_id"] == (await execution_ids(conn))[TRAIN_UUID]
    assert all(set(p) == {"name", "value"} for p in item["execution_properties"])
    assert all(isinstance(p["value"], str) for p in item["execution_properties"])
    values = properties_of(item)
    assert set(values) == EXECUTION_PROPERTY_NAMES | {"max_depth", "n_est"}
    original = payload["Pipeline"][0]["stages"][1]["executions"][0]["create_time_since_epoch"]
    assert values["original_create_time_since_epoch"] == str(original)
    assert values["max_depth"] == "5"
    assert values["Execution_uuid"] == TRAIN_UUID
    assert values["Context_ID"] == str(
        await conn.fetchval("SELECT id FROM stages WHERE name = $1", TRAIN)
    )


async def test_executions_by_stage_of_an_unknown_pipeline_is_empty(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/executions-by-stage/NoSuch", params={"stage_name": "x"})
    assert answer.json() == {"total_items": 0, "items": []}


@pytest.fixture
async def ten_trains(client: httpx.AsyncClient, payload: dict[str, Any]) -> list[str]:
    """Ten Train executions created at 1000 + 7i ms (so creation order is not id order):
    returns their uuids, oldest first."""
    times = [1000 + 7 * ((i * 3) % 10) for i in range(10)]
    await push(
        client, body_for(train_stage_of(payload, [{"create_time_since_epoch": t} for t in times]))
    )
    by_time = sorted(range(10), key=lambda i: times[i])
    return [f"{i:08x}-0000-11f1-0000-000000000000" for i in by_time]


def uuids_of(body: dict[str, Any]) -> list[str]:
    return [properties_of(item)["Execution_uuid"] for item in body["items"]]


async def executions_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer = await client.get(
        f"/api/executions-by-stage/{PIPELINE}", params={"stage_name": TRAIN, **params}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_executions_by_stage_default_is_five_newest_first(
    client: httpx.AsyncClient, ten_trains: list[str]
) -> None:
    body = await executions_page(client)
    assert body["total_items"] == 10
    assert uuids_of(body) == ten_trains[::-1][:5]


async def test_executions_by_stage_ascending_pages_follow_creation_time(
    client: httpx.AsyncClient, ten_trains: list[str]
) -> None:
    first = await executions_page(client, sort_order="asc", record_per_page=4)
    third = await executions_page(client, sort_order="ASC", record_per_page=4, active_page=3)
    assert uuids_of(first) == ten_trains[:4]
    assert uuids_of(third) == ten_trains[8:]
    assert third["total_items"] == 10


async def test_executions_by_stage_total_counts_every_push_into_the_stage(
    client: httpx.AsyncClient, push_body: dict[str, Any], ten_trains: list[str]
) -> None:
    await push(client, push_body)
    again = await client.post("/api/mlmd_push", json=push_body)
    assert again.json() == {"status": "exists"}
    assert (await executions_page(client))["total_items"] == 11
    assert (await executions_page(client, filter_value="train.py"))["total_items"] == 11


async def test_executions_by_stage_past_the_end_has_total_zero(
    client: httpx.AsyncClient, ten_trains: list[str]
) -> None:
    assert await executions_page(client, active_page=3, record_per_page=5) == {
        "total_items": 0,
        "items": [],
    }


async def test_executions_by_stage_sorts_creation_time_as_a_number(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    customs: list[dict[str, Any]] = [{"create_time_since_epoch": t} for t in (999, 1000, 25)]
    await push(client, body_for(train_stage_of(payload, customs)))
    body = await executions_page(client, sort_order="asc")
    times = [properties_of(i)["original_create_time_since_epoch"] for i in body["items"]]
    assert times == ["25", "999", "1000"]


async def test_executions_by_stage_puts_executions_without_a_time_last(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    customs: list[dict[str, Any]] = [{"create_time_since_epoch": t} for t in (5, 6)]
    await push(client, body_for(train_stage_of(payload, customs)))
    first = (await execution_ids(conn))[f"{0:08x}-0000-11f1-0000-000000000000"]
    await conn.execute(
        "UPDATE executions SET custom_properties = custom_properties"
        " - 'original_create_time_since_epoch' WHERE id = $1",
        first,
    )
    for order in ("asc", "desc"):
        body = await executions_page(client, sort_order=order)
        assert body["items"][-1]["execution_id"] == first


@pytest.fixture
async def searchable(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    """Train executions whose values hold LIKE's metacharacters, and near misses."""
    customs: list[dict[str, Any]] = [
        {"note": "50%_off"},
        {"note": "50Xoff"},
        {"note": "a_b"},
        {"note": "aXb"},
        {"note": "it's"},
        {"note": "back\\slash"},
        {"note": "Plain Words"},
    ]
    await push(client, body_for(train_stage_of(payload, customs)))


def notes(body: dict[str, Any]) -> list[str]:
    return sorted(properties_of(i)["note"] for i in body["items"])


@pytest.mark.usefixtures("searchable")
@pytest.mark.parametrize(
    ("filter_value", "expected"),
    [
        ("%", sorted(["50%_off", "50Xoff", "a_b", "aXb", "it's", "back\\slash", "Plain Words"])),
        ("50%off", ["50%_off", "50Xoff"]),
        ("50_off", ["50Xoff"]),
        ("50__off", ["50%_off"]),
        ("\\%", ["50%_off"]),
        ("50%\\_off", ["50%_off"]),
        ("it's", ["it's"]),
        ("plain words", ["Plain Words"]),
        ("PLAIN", ["Plain Words"]),
    ],
)
async def test_executions_by_stage_filter_is_the_reference_ilike_pattern(
    client: httpx.AsyncClient, filter_value: str, expected: list[str]
) -> None:
    """The reference filters with ``ILIKE '%<filter_value>%'``, unescaped: ``%`` and ``_``
    are wildcards and a backslash escapes them (server/app/db/dbqueries.py)."""
    body = await executions_page(client, filter_value=filter_value, record_per_page=20)
    assert notes(body) == expected
    assert body["total_items"] == len(expected)


@pytest.mark.usefixtures("searchable")
async def test_executions_by_stage_filter_matching_nothing_is_empty(
    client: httpx.AsyncClient,
) -> None:
    assert await executions_page(client, filter_value="no such text") == {
        "total_items": 0,
        "items": [],
    }


@pytest.mark.usefixtures("pushed")
async def test_executions_by_stage_filter_matches_the_execution_id(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    train_id = (await execution_ids(conn))[TRAIN_UUID]
    body = await executions_page(client, filter_value=f"{train_id}{{")  # id, then the JSON
    assert [i["execution_id"] for i in body["items"]] == [train_id]


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize("rendering", ["%Y-%m-%d %H:%M:%S", "{month}/{day}/%Y", "%Y"])
async def test_executions_by_stage_filter_matches_creation_time_renderings(
    client: httpx.AsyncClient, payload: dict[str, Any], rendering: str
) -> None:
    original = payload["Pipeline"][0]["stages"][1]["executions"][0]["create_time_since_epoch"]
    created = datetime.fromtimestamp(original / 1000, UTC)
    text = created.strftime(rendering.format(month=created.month, day=created.day))
    body = await executions_page(client, filter_value=text)
    assert body["total_items"] == 1


@pytest.mark.usefixtures("pushed")
async def test_executions_by_stage_filter_matches_property_names(
    client: httpx.AsyncClient,
) -> None:
    assert (await executions_page(client, filter_value="max_depth"))["total_items"] == 1
    assert (await executions_page(client, filter_value="n_estimators"))["total_items"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"stage_name": TRAIN, "active_page": 0},
        {"stage_name": TRAIN, "active_page": "x"},
        {"stage_name": TRAIN, "record_per_page": 0},
        {"stage_name": TRAIN, "record_per_page": 1001},
        {"stage_name": TRAIN, "sort_order": "sideways"},
        {"stage_name": TRAIN, "filter_value": "x" * 1025},
    ],
)
async def test_executions_by_stage_bad_query_is_422_invalid_request(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await client.get(f"/api/executions-by-stage/{PIPELINE}", params=params)
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"
    assert isinstance(answer.json()["detail"], list)


# ---- artifacts-by-stage ------------------------------------------------------------------------


async def artifacts_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer = await client.get(f"/api/artifacts-by-stage/{PIPELINE}", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_stage_item_has_the_reference_shape(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    body = await artifacts_page(client, stage_name=TRAIN, artifact_type="Model")
    assert body["total_items"] == 1
    (item,) = body["items"]
    assert set(item) == {"artifact_id", "name", "create_time_since_epoch", "artifact_properties"}
    model = await conn.fetchrow("SELECT * FROM artifacts WHERE type = 'Model'")
    assert model is not None
    assert item["artifact_id"] == model["id"]
    assert item["name"] == model["name"]
    assert item["create_time_since_epoch"] == model["create_time_since_epoch"]
    values = properties_of(item, "artifact_properties")
    assert set(values) == {
        "Commit",
        "url",
        "model_framework",
        "model_type",
        "model_name",
        "original_create_time_since_epoch",
    }
    assert all(isinstance(v, str) for v in values.values())


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize(
    ("sort_order", "expected"),
    [
        ("asc", ["artifacts/data.xml", "artifacts/parsed/train.tsv"]),
        ("desc", ["artifacts/parsed/train.tsv", "artifacts/data.xml"]),
    ],
)
async def test_artifacts_by_stage_sorts_by_name(
    client: httpx.AsyncClient, sort_order: str, expected: list[str]
) -> None:
    body = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", sort_order=sort_order
    )
    assert [i["name"].split(":")[0] for i in body["items"]] == expected


async def test_artifacts_by_stage_sorts_by_name_ignoring_case(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    changed = copy.deepcopy(payload)
    prepare = changed["Pipeline"][0]["stages"][0]["executions"][0]
    prepare["events"][1]["artifact"]["name"] = "B-data.xml:18b9e58c4262091a8806fb81b89b9f61"
    prepare["events"][3]["artifact"]["name"] = "a-train.tsv:2aa64341cb31a70b49665d3df73cc3ec"
    await push(client, body_for(changed))
    body = await artifacts_page(client, stage_name=PREPARE, artifact_type="Dataset")
    assert [i["name"][:2] for i in body["items"]] == ["a-", "B-"]


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_stage_other_sort_field_sorts_by_creation_time(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    await conn.execute(
        "UPDATE artifacts SET create_time_since_epoch = CASE WHEN name LIKE 'artifacts/data%'"
        " THEN 2 ELSE 1 END WHERE type = 'Dataset'"
    )
    body = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", sort_field="create_time_since_epoch"
    )
    assert [i["create_time_since_epoch"] for i in body["items"]] == [1, 2]


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_stage_filter_matches_custom_properties(
    client: httpx.AsyncClient,
) -> None:
    body = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", filter_value="SYNTHETIC"
    )
    assert [i["name"].split(":")[0] for i in body["items"]] == ["artifacts/data.xml"]


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_stage_filter_percent_is_a_wildcard(client: httpx.AsyncClient) -> None:
    """``ILIKE '%%%'`` in the reference: every artifact of the type."""
    everything = await artifacts_page(client, stage_name=PREPARE, artifact_type="Dataset")
    body = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", filter_value="%"
    )
    assert body == everything and body["total_items"] == 2
    literal = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", filter_value="\\%"
    )
    assert literal == {"total_items": 0, "items": []}


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_stage_past_the_end_has_total_zero(client: httpx.AsyncClient) -> None:
    body = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", active_page=2, record_per_page=2
    )
    assert body == {"total_items": 0, "items": []}


async def test_artifacts_by_stage_lists_an_artifact_shared_by_executions_once(
    client: httpx.AsyncClient, push_body: dict[str, Any], ten_trains: list[str]
) -> None:
    await push(client, push_body)
    body = await artifacts_page(client, stage_name=TRAIN, artifact_type="Dataset")
    assert body["total_items"] == 1
    assert [i["name"].split(":")[0] for i in body["items"]] == ["artifacts/parsed/train.tsv"]


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_stage_filtered_and_by_time_pages_agree_on_the_total(
    client: httpx.AsyncClient,
) -> None:
    by_time = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", sort_field="create_time_since_epoch"
    )
    filtered = await artifacts_page(
        client, stage_name=PREPARE, artifact_type="Dataset", filter_value="artifacts/"
    )
    assert by_time["total_items"] == filtered["total_items"] == 2


async def test_artifacts_by_stage_of_an_unknown_pipeline_is_empty(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(
        "/api/artifacts-by-stage/NoSuch", params={"stage_name": "x", "artifact_type": "Dataset"}
    )
    assert answer.json() == {"total_items": 0, "items": []}


async def test_artifacts_by_stage_without_artifact_type_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/api/artifacts-by-stage/{PIPELINE}", params={"stage_name": TRAIN})
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"


# ---- model card --------------------------------------------------------------------------------


async def model_card(client: httpx.AsyncClient, model_id: Any) -> Any:
    answer = await client.get("/api/model-card", params={"modelId": model_id})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.usefixtures("pushed")
async def test_model_card_model_row_has_sorted_flattened_columns(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    model = await conn.fetchrow("SELECT * FROM artifacts WHERE type = 'Model'")
    assert model is not None
    card = await model_card(client, model["id"])
    assert len(card) == 4
    (row,) = card[0]
    assert list(row) == sorted(row)
    assert set(row) == {
        "id",
        "name",
        "type",
        "uri",
        "create_time_since_epoch",
        "last_update_time_since_epoch",
        "Commit",
        "url",
        "model_framework",
        "model_type",
        "model_name",
        "custom_properties_original_create_time_since_epoch",
    }
    assert row["id"] == model["id"] and row["type"] == "Model" and row["uri"] == model["uri"]


@pytest.mark.usefixtures("pushed")
async def test_model_card_execution_rows_drop_the_git_commits(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    model_id = await conn.fetchval("SELECT id FROM artifacts WHERE type = 'Model'")
    (row,) = (await model_card(client, model_id))[1]
    assert list(row) == sorted(row)
    assert "Git_Start_Commit" not in row and "Git_End_Commit" not in row and "id" not in row
    assert row["Execution_uuid"] == TRAIN_UUID
    assert row["custom_properties_max_depth"] == 5
    assert row["Context_Type"] == TRAIN


@pytest.mark.usefixtures("pushed")
async def test_model_card_lists_the_execution_inputs_and_other_outputs(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    model_id = await conn.fetchval("SELECT id FROM artifacts WHERE type = 'Model'")
    _, _, inputs, outputs = await model_card(client, model_id)
    assert sorted(r["type"] for r in inputs) == ["Dataset", "Environment"]
    assert sorted(r["type"] for r in outputs) == ["Metrics", "Step_Metrics"]
    assert [r["id"] for r in outputs] == sorted(r["id"] for r in outputs)


@pytest.mark.usefixtures("pushed")
async def test_model_card_rows_share_columns_with_missing_cells_null(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    model_id = await conn.fetchval("SELECT id FROM artifacts WHERE type = 'Model'")
    outputs = (await model_card(client, model_id))[3]
    assert len({tuple(r) for r in outputs}) == 1
    by_type = {r["type"]: r for r in outputs}
    assert by_type["Metrics"]["custom_properties_auc"] == 0.91
    assert by_type["Step_Metrics"]["custom_properties_auc"] is None
    assert by_type["Step_Metrics"]["metrics_name"] is None


@pytest.mark.usefixtures("pushed")
async def test_model_card_of_an_artifact_that_is_no_model_is_four_empty_strings(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    dataset_id = await conn.fetchval("SELECT min(id) FROM artifacts WHERE type = 'Dataset'")
    assert await model_card(client, dataset_id) == ["", "", "", ""]


async def test_model_card_of_an_unknown_id_is_four_empty_strings(client: httpx.AsyncClient) -> None:
    assert await model_card(client, 987654321) == ["", "", "", ""]


@pytest.mark.parametrize("model_id", ["x", "1.5", str(2**63)])
async def test_model_card_with_a_bad_id_is_422(client: httpx.AsyncClient, model_id: str) -> None:
    answer = await client.get("/api/model-card", params={"modelId": model_id})
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"


# ---- list-of-executions ------------------------------------------------------------------------


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_list_of_executions_names_stage_and_uuid_prefix(
    client: httpx.AsyncClient, prefix: str
) -> None:
    answer = await client.get(f"{prefix}/list-of-executions/{PIPELINE}")
    assert answer.json() == ["Train_72d0", "Prepare_6e89"]


async def test_list_of_executions_of_an_unknown_pipeline_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/list-of-executions/NoSuch")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Pipeline NoSuch not found."}


# ---- the 0.1.0 routes --------------------------------------------------------------------------


@pytest.mark.usefixtures("pushed")
async def test_legacy_artifacts_item_has_the_0_1_0_shape(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/api/artifacts/{PIPELINE}/Dataset")
    body = answer.json()
    assert body["total_items"] == 2
    item = body["items"][1]
    assert set(item) == {
        "artifact_id",
        "name",
        "execution",
        "uri",
        "create_time_since_epoch",
        "last_update_time_since_epoch",
        "artifact_properties",
    }
    assert item["name"].startswith("artifacts/parsed/train.tsv:")
    assert item["execution"] == f"{PREPARE}, {TRAIN}"
    assert item["uri"] == "2aa64341cb31a70b49665d3df73cc3ec"
    assert HTTP_DATE.match(item["create_time_since_epoch"])
    assert isinstance(item["last_update_time_since_epoch"], int)


@pytest.mark.usefixtures("pushed")
async def test_legacy_artifacts_filter_and_sort(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        f"/artifacts/{PIPELINE}/Dataset", params={"sort_field": "uri", "sort_order": "desc"}
    )
    assert [i["uri"][:4] for i in answer.json()["items"]] == ["2aa6", "18b9"]
    filtered = await client.get(f"/artifacts/{PIPELINE}/Dataset", params={"filter_value": "parsed"})
    assert filtered.json()["total_items"] == 1


async def test_legacy_artifacts_of_an_unknown_pipeline_is_empty(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/artifacts/NoSuch/Dataset")
    assert answer.json() == {"total_items": 0, "items": []}


async def test_legacy_artifacts_with_an_unknown_sort_field_is_422(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(f"/api/artifacts/{PIPELINE}/Dataset", params={"sort_field": "x"})
    assert answer.status_code == 422


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize(("sort_order", "first"), [("asc", PREPARE_UUID), ("desc", TRAIN_UUID)])
async def test_legacy_executions_lists_every_stage_by_stage(
    client: httpx.AsyncClient, sort_order: str, first: str
) -> None:
    answer = await client.get(f"/api/executions/{PIPELINE}", params={"sort_order": sort_order})
    body = answer.json()
    assert body["total_items"] == 2
    assert set(body["items"][0]) == {"execution_id", "execution_properties"}
    assert properties_of(body["items"][0])["Execution_uuid"] == first


@pytest.mark.usefixtures("pushed")
async def test_legacy_executions_filter(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/executions/{PIPELINE}", params={"filter_value": "train.py"})
    assert [properties_of(i)["Execution_uuid"] for i in answer.json()["items"]] == [TRAIN_UUID]


async def test_legacy_executions_of_an_unknown_pipeline_is_empty(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/executions/NoSuch")
    assert answer.json() == {"total_items": 0, "items": []}


async def test_executions_by_stage_filtered_total_is_counted_once_per_pipeline_version(
    app: Any, client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    def tagged(tags: list[str]) -> dict[str, Any]:
        return body_for(train_stage_of(payload, [{"tag": t} for t in tags]))

    await push(client, tagged(["broad"] * 10))
    pages = [
        await executions_page(client, filter_value="broad", record_per_page=3, active_page=n)
        for n in (1, 2, 3, 4)
    ]
    assert [p["total_items"] for p in pages] == [10, 10, 10, 10]
    assert sum(len(p["items"]) for p in pages) == 10
    assert len(state_of(app, MetadataState).match_counts.entries) == 1  # paging did not count again

    # A push makes a new version of the pipeline: the next page is counted afresh.
    await push(client, tagged(["broad"] * 15))
    assert (await executions_page(client, filter_value="broad"))["total_items"] == 15
    await push(client, tagged(["broad"] * 15 + ["narrow"] * 5))
    assert (await executions_page(client, filter_value="broad"))["total_items"] == 15
    assert (await executions_page(client, filter_value="narrow"))["total_items"] == 5
    assert (await executions_page(client, filter_value="tag"))["total_items"] == 20
    # Past the end is still the reference's empty answer, whatever was remembered.
    assert await executions_page(client, filter_value="broad", active_page=9) == {
        "total_items": 0,
        "items": [],
    }
