"""Upstream's CMFQuery table routes on the metadata side (docs/upstream-v1.md §6, "CMFQuery's
table questions"): pipelines by name and their JSON, artifacts by id and pipeline, metrics,
against the captured push. Found answers are success envelopes, empty ones upstream's HTTP 200
``code: 404``, bad input the 422 envelope."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, push
from upstream_support import enveloped, failed, invalid

from cmf_common.prefixes import UPSTREAM_V1

NUL = "a%00b"


@pytest.fixture
async def pushed(client: httpx.AsyncClient, push_body: dict[str, Any]) -> None:
    await push(client, push_body)


def not_found(answer: httpx.Response, message: str, field: str, detail: str) -> None:
    """Upstream's empty CMFQuery answer: HTTP 200, ``status: "error"``, ``code: 404``."""
    enveloped(answer, 200, "error", 404)
    body = answer.json()
    assert body["message"] == message and body["data"] is None
    assert body["errors"] == [{"field": field, "message": detail, "code": None}]


async def _ids(conn: asyncpg.Connection, table: str) -> list[int]:
    return [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} ORDER BY id")]


# Pipelines.


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize("prefix", UPSTREAM_V1)
async def test_pipeline_names_are_every_pipeline(client: httpx.AsyncClient, prefix: str) -> None:
    data = enveloped(await client.get(f"{prefix}/pipelines/names"), 200)
    assert data == {"pipelines": [PIPELINE], "total_pipelines": 1}


async def test_pipeline_names_of_an_empty_store_are_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/pipelines/names")
    not_found(answer, "No pipelines found", "pipelines", "No pipelines found")


@pytest.mark.usefixtures("pushed")
async def test_pipeline_id_is_the_server_id(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get(f"/api/v1/pipelines/{PIPELINE}/id"), 200)
    assert data == {"pipeline_name": PIPELINE, "pipeline_id": (await _ids(conn, "pipelines"))[0]}


@pytest.mark.usefixtures("pushed")
@pytest.mark.parametrize("route", ["id", "json"])
async def test_an_unknown_pipeline_has_no_id_or_json(client: httpx.AsyncClient, route: str) -> None:
    answer = await client.get(f"/v1/pipelines/NoSuch/{route}")
    not_found(answer, "Pipeline not found", "pipeline_name", "Pipeline 'NoSuch' not found")


@pytest.mark.usefixtures("pushed")
async def test_pipeline_json_is_the_pull_document(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/json"), 200)
    pulled = await client.get(f"/api/mlmd_pull/{PIPELINE}")
    assert data == pulled.json()
    assert [s["name"] for s in data["Pipeline"][0]["stages"]] == [
        f"{PIPELINE}/Train",
        f"{PIPELINE}/Prepare",
    ]


@pytest.mark.usefixtures("pushed")
async def test_pipeline_json_of_one_execution_keeps_the_other_stages_empty(
    client: httpx.AsyncClient,
) -> None:
    uuid = "72d025da-e9d5-11f1-a002-02fc00000001"
    data = enveloped(
        await client.get(f"/v1/pipelines/{PIPELINE}/json", params={"exec_uuid": uuid}), 200
    )
    stages = {s["name"]: s["executions"] for s in data["Pipeline"][0]["stages"]}
    assert [e["properties"]["Execution_uuid"] for e in stages[f"{PIPELINE}/Train"]] == [uuid]
    assert stages[f"{PIPELINE}/Prepare"] == []
    # an execution the pipeline does not have: every stage empty (dumptojson's answer)
    data = enveloped(
        await client.get(f"/v1/pipelines/{PIPELINE}/json", params={"exec_uuid": "nope"}), 200
    )
    assert all(s["executions"] == [] for s in data["Pipeline"][0]["stages"])


@pytest.mark.usefixtures("pushed")
async def test_pipelines_json_since_a_sync_time_is_what_changed_after_it(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    everything = enveloped(await client.get("/v1/pipelines/sync/0/json"), 200)
    assert everything == (await client.post("/api/mlmd_pull", json={})).json()
    assert [p["name"] for p in everything["Pipeline"]] == [PIPELINE]
    newest = await conn.fetchval("SELECT max(last_update_time_since_epoch) FROM executions")
    assert enveloped(await client.get(f"/v1/pipelines/sync/{newest}/json"), 200) == {"Pipeline": []}
    assert enveloped(await client.get("/v1/pipelines/sync/-1/json"), 200) == everything


@pytest.mark.parametrize("time", ["x", "1.5", str(2**70)])
async def test_pipelines_json_of_a_bad_sync_time_is_a_422_envelope(
    client: httpx.AsyncClient, time: str
) -> None:
    invalid(await client.get(f"/v1/pipelines/sync/{time}/json"), "last_sync_time")


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/pipelines/{NUL}/id",
        f"/v1/pipelines/{NUL}/json",
        f"/v1/pipelines/{PIPELINE}/json?exec_uuid={NUL}",
        f"/v1/artifacts/{NUL}",
        f"/v1/artifacts/metrics/{NUL}",
        f"/api/v1/pipelines/{PIPELINE}/json?exec_uuid={'u' * 257}",
    ],
)
async def test_nul_and_overlong_parameters_are_422_envelopes(
    client: httpx.AsyncClient, path: str
) -> None:
    failed(await client.get(path), 422)


# Artifacts.


@pytest.mark.usefixtures("pushed")
async def test_artifact_names_are_every_artifact_by_id(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    data = enveloped(await client.get("/v1/artifacts"), 200)
    names = [r["name"] for r in await conn.fetch("SELECT name FROM artifacts ORDER BY id")]
    assert data == {"artifacts": names, "total_artifacts": len(names)} and len(names) == 7


async def test_artifact_names_of_an_empty_store_are_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/artifacts")
    not_found(answer, "No artifacts found", "artifacts", "No artifacts found in the system")


@pytest.mark.usefixtures("pushed")
async def test_artifacts_of_a_pipeline_are_its_artifact_records(
    client: httpx.AsyncClient,
) -> None:
    data = enveloped(await client.get(f"/v1/artifacts/{PIPELINE}"), 200)
    records = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/artifacts"), 200)
    assert data == {"pipeline_name": PIPELINE, "artifacts": records, "total_artifacts": 7}


@pytest.mark.usefixtures("pushed")
async def test_artifacts_of_an_unknown_pipeline_are_not_found(client: httpx.AsyncClient) -> None:
    not_found(
        await client.get("/v1/artifacts/NoSuch"),
        "Artifacts associated with pipeline not found",
        "pipeline_name",
        "Pipeline 'NoSuch' not found or has no artifacts",
    )


@pytest.mark.usefixtures("pushed")
async def test_artifact_types_stay_the_ui_list(client: httpx.AsyncClient) -> None:
    data = enveloped(await client.get("/v1/artifacts/types"), 200)
    assert isinstance(data, list) and "Model" in data


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_ids_are_their_records_by_id(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    ids = await _ids(conn, "artifacts")
    wanted = [ids[3], ids[0], 999_999_999, ids[3]]
    data = enveloped(
        await client.post("/v1/artifacts/batch-get", json={"artifact_ids": wanted}), 200
    )
    assert data["artifact_ids"] == wanted
    assert [a["id"] for a in data["artifacts"]] == [ids[0], ids[3]]
    assert data["total_artifacts"] == 2
    first = data["artifacts"][0]
    assert {"id", "type", "uri", "name", "create_time_since_epoch"} <= set(first)
    records = enveloped(await client.get(f"/v1/pipelines/{PIPELINE}/artifacts"), 200)
    by_id = {r["id"]: r for r in records}
    assert {k: v for k, v in by_id[ids[0]].items() if v is not None} == {
        k: v for k, v in first.items() if v is not None
    }


@pytest.mark.usefixtures("pushed")
async def test_artifacts_by_ids_of_no_artifact_are_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/artifacts/batch-get", json={"artifact_ids": [999_999]})
    not_found(answer, "Artifacts not found", "artifact_ids", "Artifacts not found for ids [999999]")


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"artifact_ids": []},
        {"artifact_ids": "1"},
        {"artifact_ids": ["x"]},
        {"artifact_ids": [-1]},
        {"artifact_ids": [2**63]},
        {"artifact_ids": [1.5]},
        {"artifact_ids": list(range(10_001))},
    ],
)
async def test_bad_artifact_id_batches_are_422_envelopes(
    client: httpx.AsyncClient, body: Any
) -> None:
    answer = await client.post("/v1/artifacts/batch-get", json=body)
    invalid(answer)


@pytest.mark.usefixtures("pushed")
async def test_metrics_are_not_found_whether_recorded_or_not(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    name = await conn.fetchval("SELECT name FROM artifacts WHERE type = 'Step_Metrics'")
    assert "/" in name  # served at the path unencoded, as upstream's {metrics_name:path}
    not_found(
        await client.get(f"/v1/artifacts/metrics/{name}"),
        "Metrics not found",
        "metrics_name",
        f"Metrics '{name}' not found",
    )
    await conn.execute(
        'UPDATE artifacts SET custom_properties = \'{"Name": "m.parquet"}\''
        " WHERE type = 'Step_Metrics'"
    )
    not_found(
        await client.get(f"/v1/artifacts/metrics/{name}"),
        "Metrics not found",
        "metrics_name",
        f"Metrics '{name}' are in the client's file 'm.parquet', not on this server",
    )
