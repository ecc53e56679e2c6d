"""Upstream's CMFQuery execution routes on the metadata side (docs/upstream-v1.md §6): by stage
name, stage id, pipeline and id batches, against the captured push (and the same pipeline
pushed again under another name, so stage names and ids are told apart)."""

from __future__ import annotations

import copy
from typing import Any

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, body_for, push, renamed
from test_upstream_cmfquery_tables import not_found
from upstream_support import enveloped, failed, invalid

PREPARE, TRAIN = f"{PIPELINE}/Prepare", f"{PIPELINE}/Train"
TRAIN_UUID = "72d025da-e9d5-11f1-a002-02fc00000001"
EXECUTION_KEYS = {
    "id",
    "type_id",
    "name",
    "external_id",
    "create_time_since_epoch",
    "last_update_time_since_epoch",
    "properties",
    "custom_properties",
}


@pytest.fixture(autouse=True)
async def pushed(client: httpx.AsyncClient, push_body: dict[str, Any]) -> None:
    await push(client, push_body)


async def _executions(conn: asyncpg.Connection, pipeline: str = PIPELINE) -> dict[str, int]:
    """Each execution's uuid -> its server id."""
    rows = await conn.fetch(
        "SELECT e.uuid, e.id FROM executions e JOIN pipelines p ON p.id = e.pipeline_id"
        " WHERE p.name = $1",
        pipeline,
    )
    return {r["uuid"]: r["id"] for r in rows}


async def _stage_id(conn: asyncpg.Connection, stage: str) -> int:
    return int(await conn.fetchval("SELECT id FROM stages WHERE name = $1", stage))


# By stage name.


async def test_stage_executions_are_the_records_of_the_stage(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get(f"/v1/executions/stages/name/{TRAIN}"), 200)
    assert data["stage_name"] == TRAIN and data["total_executions"] == 1
    (record,) = data["executions"]
    assert record["id"] == (await _executions(conn))[TRAIN_UUID]
    assert record["Execution_uuid"] == TRAIN_UUID and record["Context_Type"] == TRAIN
    assert record["custom_properties_Python_Env"].endswith(".txt")


async def test_stage_execution_objects_are_whole_executions(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get(f"/api/v1/executions/stages/name/{TRAIN}/list"), 200)
    assert data["stage_name"] == TRAIN and data["total_executions"] == 1
    (execution,) = data["executions"]
    assert set(execution) == EXECUTION_KEYS
    assert execution["id"] == (await _executions(conn))[TRAIN_UUID]
    assert execution["properties"]["Execution_uuid"] == TRAIN_UUID
    assert "Python_Env" in execution["custom_properties"] and execution["external_id"] == ""


async def test_a_stage_name_in_two_pipelines_lists_both_or_the_newest(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    """A stage name is the pipeline's own (``Test-env/Train``) unless a client names it so in
    another pipeline: then ``/stages/name`` has every such stage's, ``/list`` the newest's."""
    other = copy.deepcopy(payload)
    other["Pipeline"][0]["name"] = "Other"  # the same stage names, in pipeline Other
    await push(client, body_for(other, "Other"))
    both = enveloped(await client.get(f"/v1/executions/stages/name/{TRAIN}"), 200)
    mine, other = await _executions(conn), await _executions(conn, "Other")
    assert [r["id"] for r in both["executions"]] == [other[TRAIN_UUID], mine[TRAIN_UUID]]
    newest = enveloped(await client.get(f"/v1/executions/stages/name/{TRAIN}/list"), 200)
    assert [e["id"] for e in newest["executions"]] == [other[TRAIN_UUID]]


@pytest.mark.parametrize("route", ["", "/list"])
async def test_an_unknown_stage_has_no_executions(client: httpx.AsyncClient, route: str) -> None:
    not_found(
        await client.get(f"/v1/executions/stages/name/{PIPELINE}/NoSuch{route}"),
        "Executions associated with stage not found",
        "stage_name",
        f"Stage '{PIPELINE}/NoSuch' not found",
    )


# By stage id.


async def test_executions_of_a_stage_id_are_whole_executions(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    stage = await _stage_id(conn, PREPARE)
    data = enveloped(await client.get(f"/v1/executions/stages/id/{stage}"), 200)
    assert data["stage_id"] == stage and data["execution_uuid"] is None
    assert data["total_executions"] == 1 and set(data["executions"][0]) == EXECUTION_KEYS
    assert data["executions"][0]["properties"]["Context_Type"] == PREPARE


async def test_executions_of_a_stage_id_narrow_to_one_uuid(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    stage = await _stage_id(conn, TRAIN)
    path = f"/v1/executions/stages/id/{stage}"
    data = enveloped(await client.get(path, params={"execution_uuid": TRAIN_UUID}), 200)
    assert data["execution_uuid"] == TRAIN_UUID and data["total_executions"] == 1
    # a uuid is a whole member of the comma list, not a prefix of one
    not_found(
        await client.get(path, params={"execution_uuid": TRAIN_UUID[:8]}),
        "Executions not found",
        "stage_id",
        f"Executions not found for stage id {stage}",
    )


async def test_executions_of_an_unknown_stage_id_are_not_found(client: httpx.AsyncClient) -> None:
    not_found(
        await client.get("/v1/executions/stages/id/999999"),
        "Executions not found",
        "stage_id",
        "Executions not found for stage id 999999",
    )


@pytest.mark.parametrize("stage_id", ["x", "-1", "1.5", str(2**63)])
async def test_a_bad_stage_id_is_a_422_envelope(client: httpx.AsyncClient, stage_id: str) -> None:
    invalid(await client.get(f"/v1/executions/stages/id/{stage_id}"), "stage_id")


# By pipeline.


async def test_executions_of_a_pipeline_are_its_execution_records(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get(f"/api/v1/executions/pipeline/{PIPELINE}"), 200)
    records = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/executions"), 200)
    assert data == {"pipeline_name": PIPELINE, "executions": records, "total_executions": 2}
    assert [r["Context_Type"] for r in records] == [TRAIN, PREPARE]  # the pull's stage order
    assert {r["Execution_uuid"]: r["id"] for r in records} == await _executions(conn)


async def test_executions_of_an_unknown_pipeline_are_none(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get("/v1/executions/pipeline/NoSuch"), 200)
    assert data == {"pipeline_name": "NoSuch", "executions": [], "total_executions": 0}


# By id batches.


async def test_executions_by_ids_are_their_property_records(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    ids = await _executions(conn)
    wanted = [ids[TRAIN_UUID], 999_999]
    data = enveloped(await client.post("/v1/executions/batch-get", json={"exe_ids": wanted}), 200)
    assert data["exe_ids"] == wanted and data["total_executions"] == 1
    (record,) = data["executions"]
    assert record["Execution_uuid"] == TRAIN_UUID
    assert "id" not in record and "name" not in record  # CmfQuery frames the properties alone


async def test_execution_summaries_are_id_type_and_uuid(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    ids = await _executions(conn)
    wanted = sorted(ids.values(), reverse=True)
    data = enveloped(
        await client.post("/api/v1/executions/batch-summary", json={"exe_ids": wanted}), 200
    )
    assert data["exe_ids"] == wanted and data["total_executions"] == 2
    stages = {"6e892a4e-e9d5-11f1-ba62-02fc00000001": PREPARE, TRAIN_UUID: TRAIN}
    assert data["executions"] == [  # by id, whatever the order asked
        {"id": ids[uuid], "Execution_type_name": stages[uuid], "Execution_uuid": uuid}
        for uuid in sorted(ids, key=ids.__getitem__)
    ]


@pytest.mark.parametrize("route", ["batch-get", "batch-summary"])
async def test_executions_by_ids_of_no_execution_are_not_found(
    client: httpx.AsyncClient, route: str
) -> None:
    not_found(
        await client.post(f"/v1/executions/{route}", json={"exe_ids": [999_999, 999_998]}),
        "Executions not found",
        "exe_ids",
        "Executions not found for ids [999999, 999998]",
    )


@pytest.mark.parametrize("route", ["batch-get", "batch-summary"])
@pytest.mark.parametrize(
    "body",
    [None, {}, {"exe_ids": []}, {"exe_ids": 3}, {"exe_ids": ["a"]}, {"exe_ids": [-5]}],
)
async def test_bad_execution_id_batches_are_422_envelopes(
    client: httpx.AsyncClient, route: str, body: Any
) -> None:
    invalid(await client.post(f"/v1/executions/{route}", json=body))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/executions/stages/name/a%00b",
        "/v1/executions/stages/name/a%00b/list",
        "/v1/executions/pipeline/a%00b",
        "/v1/executions/stages/id/1?execution_uuid=a%00b",
    ],
)
async def test_nul_in_execution_parameters_is_a_422_envelope(
    client: httpx.AsyncClient, path: str
) -> None:
    failed(await client.get(path), 422)


async def test_renamed_pipeline_is_told_apart(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await push(client, body_for(renamed(payload, "Second"), "Second"))
    data = enveloped(await client.get("/v1/executions/stages/name/Second/Train"), 200)
    assert [r["Context_Type"] for r in data["executions"]] == ["Second/Train"]
