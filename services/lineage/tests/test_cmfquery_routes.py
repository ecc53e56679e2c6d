"""Upstream's CMFQuery graph routes on both graph stores, fed by real pushes: each test runs on
PostgreSQL and on Neo4j against the same expected answers, so the stores answer alike.

The captured example: Prepare reads the Environment, data.xml and labels.csv, writes
train.tsv; Train reads the Environment and train.tsv, writes the model, step metrics and
metrics."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from lineage_support import GraphUnderTest, Pusher, empty_neo4j

from cmf_common.errors import Unavailable
from cmf_lineage.projector import Projector
from cmf_lineage.store import neo4j_reads
from cmf_lineage.store.neo4j_reads import Neo4jGraphReader
from cmf_testing.envelopes import enveloped, invalid
from cmf_testing.generator import payload_text

ENV = (
    "cmf_artifacts/python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt:2f6ab448b38d4e809cba8239b9f98db7"
)
DATA = "artifacts/data.xml:18b9e58c4262091a8806fb81b89b9f61"
LABELS = "artifacts/labels.csv:800d3d1d5fb149cbdf2e138cb024c9a6"
TRAIN = "artifacts/parsed/train.tsv:2aa64341cb31a70b49665d3df73cc3ec"
MODEL = "artifacts/model/model.pkl:cd24e3c0c20c51b12879a98838cfea55:2"
STEP = (
    "cmf_artifacts/72d025da-e9d5-11f1-a002-02fc00000001/metrics/training_metrics"
    ":df14268b940d4c4238390fe6fe6e86f5:2:76506e86-e9d5-11f1-a002-02fc00000001"
)
METRICS = "metrics:76526bbe-e9d5-11f1-a002-02fc00000001:2"
RECORD_KEYS = {
    "id",
    "type",
    "uri",
    "name",
    "create_time_since_epoch",
    "last_update_time_since_epoch",
}


def by_name(name: str, route: str = "") -> str:
    return f"/v1/artifacts/name/{name}{route}"  # the name's "/" unencoded, as clients send it


async def found(client: httpx.AsyncClient, path: str, message: str, **kw: Any) -> Any:
    answer = await (client.post(path, json=kw["json"]) if "json" in kw else client.get(path))
    data = enveloped(answer, 200)
    assert answer.json()["message"] == message
    return data


async def missing(client: httpx.AsyncClient, path: str, message: str, **kw: Any) -> None:
    """Upstream's empty answer: HTTP 200, ``status: "error"``, ``code: 404``."""
    answer = await (client.post(path, json=kw["json"]) if "json" in kw else client.get(path))
    assert enveloped(answer, 200, "error", 404) is None
    body = answer.json()
    assert body["message"] == message
    assert len(body["errors"]) == 1 and body["errors"][0]["field"], body


def names(records: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in records]


async def execution_ids(client: httpx.AsyncClient) -> dict[str, int]:
    data = await found(
        client, by_name(TRAIN, "/executions"), "Executions for artifact retrieved successfully"
    )
    return {r["execution_name"] or r["stage"]: r["execution_id"] for r in data["executions"]}


async def test_artifact_record_is_cmfquerys_frame_row(
    client: httpx.AsyncClient, loaded: None
) -> None:
    data = await found(client, by_name(DATA), "Artifact retrieved successfully")
    assert data["artifact_name"] == DATA and data["total_artifacts"] == 1
    (record,) = data["artifacts"]
    assert set(record) >= RECORD_KEYS
    assert record["name"] == DATA and record["type"] == "Dataset"
    assert {"custom_properties_labels_uri", "custom_properties_source"} <= set(record)
    frame = await found(
        client, by_name(DATA, "/dataframe"), "Artifact dataframe retrieved successfully"
    )
    assert frame["artifacts"] == data["artifacts"]


async def test_one_hop_parents_and_children(client: httpx.AsyncClient, loaded: None) -> None:
    data = await found(
        client, by_name(TRAIN, "/parents"), "One-hop parent artifacts retrieved successfully"
    )
    assert sorted(names(data["artifacts"])) == sorted([ENV, DATA, LABELS])
    assert data["total_artifacts"] == 3 and set(data) == {
        "artifact_name",
        "artifacts",
        "total_artifacts",
    }
    data = await found(
        client, by_name(DATA, "/children"), "One-hop child artifacts retrieved successfully"
    )
    assert names(data["artifacts"]) == [TRAIN] and data["pipeline_id"] is None
    await missing(client, by_name(DATA, "/parents"), "Artifacts not found")
    await missing(client, by_name(METRICS, "/children"), "Artifacts not found")
    # pipeline_id is the readers' Pipeline_id property: another one keeps none.
    await missing(client, by_name(DATA, "/children") + "?pipeline_id=999", "Artifacts not found")


async def test_ancestors_and_descendants_walk_the_whole_way(
    client: httpx.AsyncClient, loaded: None
) -> None:
    data = await found(
        client, by_name(MODEL, "/ancestors"), "All parent artifacts retrieved successfully"
    )
    assert sorted(names(data["artifacts"])) == sorted([ENV, DATA, LABELS, TRAIN])
    data = await found(
        client, by_name(DATA, "/descendants"), "All child artifacts retrieved successfully"
    )
    assert sorted(names(data["artifacts"])) == sorted([TRAIN, MODEL, STEP, METRICS])
    await missing(client, by_name(DATA, "/ancestors"), "Artifacts not found")
    await missing(client, by_name(MODEL, "/descendants"), "Artifacts not found")


async def test_executions_of_an_artifact(client: httpx.AsyncClient, loaded: None) -> None:
    data = await found(
        client, by_name(TRAIN, "/executions"), "Executions for artifact retrieved successfully"
    )
    rows = data["executions"]
    assert [(r["Type"], r["stage"]) for r in rows] == [
        ("OUTPUT", "Test-env/Prepare"),
        ("INPUT", "Test-env/Train"),
    ]
    assert set(rows[0]) == {
        "Type",
        "execution_id",
        "execution_name",
        "execution_type_name",
        "stage",
        "pipeline",
    }
    assert all(r["pipeline"] == "Test-env" for r in rows)
    artifact = (await found(client, by_name(TRAIN), "Artifact retrieved successfully"))[
        "artifacts"
    ][0]
    by_id = await found(
        client,
        f"/v1/artifacts/id/{artifact['id']}/executions",
        "Executions for artifact retrieved successfully",
    )
    assert by_id["executions"] == rows and by_id["artifact_id"] == artifact["id"]


async def test_parent_and_producer_executions(client: httpx.AsyncClient, loaded: None) -> None:
    ids = await execution_ids(client)
    data = await found(
        client, by_name(MODEL, "/parent-executions"), "All parent executions retrieved successfully"
    )
    assert [r["id"] for r in data["executions"]] == [min(ids.values())]
    assert "Execution_uuid" in data["executions"][0] and "name" in data["executions"][0]
    data = await found(
        client, by_name(MODEL, "/producer-execution"), "Producer execution retrieved successfully"
    )
    assert data["execution"]["id"] == max(ids.values())
    assert data["execution"]["Execution_type_name"] == "Test-env/Train"
    await missing(client, by_name(DATA, "/producer-execution"), "Producer execution not found")
    await missing(
        client, by_name("no/such:artifact", "/producer-execution"), "Producer execution not found"
    )


async def test_parents_by_id_leave_environment_and_label_out(
    client: httpx.AsyncClient, loaded: None
) -> None:
    record = (await found(client, by_name(TRAIN), "Artifact retrieved successfully"))["artifacts"][
        0
    ]
    data = await found(
        client,
        f"/v1/artifacts/id/{record['id']}/parents",
        "One-hop parent artifacts retrieved successfully",
    )
    assert names(data["artifacts"]) == [DATA]
    await missing(client, "/v1/artifacts/id/987654/parents", "Artifacts not found")


async def test_execution_parents_ancestors_and_artifacts(
    client: httpx.AsyncClient, loaded: None
) -> None:
    prepare, train = sorted((await execution_ids(client)).values())
    data = await found(
        client,
        f"/v1/executions/id/{train}/parents/ids",
        "One-hop parent execution ids retrieved successfully",
    )
    assert data == {
        "execution_id": train,
        "pipeline_id": None,
        "parent_execution_ids": [prepare],
        "total_parent_execution_ids": 1,
    }
    await missing(
        client, f"/v1/executions/id/{prepare}/parents/ids", "Parent execution ids not found"
    )

    body = {"execution_id": [train]}
    data = await found(
        client,
        "/v1/executions/parents/batch-get",
        "One-hop parent executions retrieved successfully",
        json=body,
    )
    assert [r["id"] for r in data["executions"]] == [prepare] and data["total_executions"] == 1
    data = await found(
        client,
        "/v1/executions/ancestors/batch-get",
        "All parent executions retrieved successfully",
        json=body,
    )
    assert data["parent_executions"] == [
        [prepare, "Test-env/Prepare", data["parent_executions"][0][2]]
    ]
    assert data["links"] == [{"source": prepare, "target": train}]
    assert data["total_parent_executions"] == 1
    await missing(
        client,
        "/v1/executions/ancestors/batch-get",
        "Parent executions not found",
        json={"execution_id": [prepare]},
    )

    data = await found(
        client,
        f"/v1/executions/id/{prepare}/artifacts",
        "Artifacts for execution retrieved successfully",
    )
    assert sorted((r["event"], r["name"]) for r in data["artifacts"]) == sorted(
        [("INPUT", ENV), ("INPUT", DATA), ("INPUT", LABELS), ("OUTPUT", TRAIN)]
    )
    data = await found(
        client,
        "/v1/executions/artifacts/batch-get",
        "Artifacts for executions retrieved successfully",
        json={"exe_ids": [prepare, train]},
    )
    assert sorted(names(data["artifacts"])) == sorted(
        [ENV, DATA, LABELS, TRAIN, MODEL, STEP, METRICS]
    )
    await missing(client, "/v1/executions/id/987654/artifacts", "Artifacts not found")


async def test_an_unknown_artifact_is_a_200_with_code_404(
    client: httpx.AsyncClient, loaded: None
) -> None:
    for route, message in [
        ("", "Artifacts not found"),
        ("/dataframe", "Artifact not found"),
        ("/parents", "Artifacts not found"),
        ("/children", "Artifacts not found"),
        ("/ancestors", "Artifacts not found"),
        ("/descendants", "Artifacts not found"),
        ("/executions", "Executions not found"),
        ("/parent-executions", "Executions not found"),
    ]:
        await missing(client, by_name("no/such.csv:0", route), message)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/executions/parents/batch-get", {"execution_id": []}, "execution_id"),
        ("POST", "/v1/executions/ancestors/batch-get", {}, "execution_id"),
        ("POST", "/v1/executions/ancestors/batch-get", {"execution_id": ["x"]}, "execution_id.0"),
        ("POST", "/v1/executions/artifacts/batch-get", {"exe_ids": []}, "exe_ids"),
        ("POST", "/v1/executions/artifacts/batch-get", {"exe_ids": [-1]}, "exe_ids.0"),
        ("GET", "/v1/executions/id/x/artifacts", None, "execution_id"),
        ("GET", "/v1/artifacts/id/-1/parents", None, "artifact_id"),
        ("GET", f"/v1/artifacts/name/{quote(DATA)}/children?pipeline_id=x", None, "pipeline_id"),
    ],
)
async def test_bad_input_is_the_422_envelope(
    client: httpx.AsyncClient, method: str, path: str, body: Any, field: str
) -> None:
    answer = await client.request(method, path, json=body)
    invalid(answer, field)


async def test_ancestors_of_a_deep_chain_are_every_earlier_artifact(
    client: httpx.AsyncClient, graph: GraphUnderTest, push_events: Pusher
) -> None:
    """A 25-execution chain (each step reads what the one before wrote): the last output's
    ancestors are what every earlier step touched, the first input's descendants all the rest."""
    payload = json.loads(payload_text("Chain", 25))
    await Projector(graph.store).apply(await push_events(payload, "Chain"))
    executions = [e for s in payload["Pipeline"][0]["stages"] for e in s["executions"]]
    outputs = [
        [ev["artifact"]["name"] for ev in e["events"] if ev["type"] == 4] for e in executions
    ]
    inputs = [[ev["artifact"]["name"] for ev in e["events"] if ev["type"] == 3] for e in executions]
    last = outputs[-1][0]
    produced_by = {name: i for i, names_ in enumerate(outputs) for name in names_}
    expected: set[str] = set()
    todo = [last]
    while todo:  # CmfQuery's recursion, written out
        name = todo.pop()
        if name in produced_by:
            for up in inputs[produced_by[name]]:
                if up not in expected:
                    expected.add(up)
                    todo.append(up)
    data = await found(
        client, by_name(last, "/ancestors"), "All parent artifacts retrieved successfully"
    )
    assert sorted(names(data["artifacts"])) == sorted(expected)
    assert len(expected) > 25
    ids = [r["id"] for r in data["artifacts"]]
    assert ids == sorted(ids)  # server id order


@pytest.mark.neo4j
async def test_a_graph_read_past_its_timeout_is_unavailable_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A statement Neo4j has not answered within the read timeout is abandoned on the server and
    reported as 503 (retry later), never left running nor turned into a 500."""
    monkeypatch.setattr(neo4j_reads, "READ_TIMEOUT_S", 0.05)
    async with empty_neo4j() as driver:
        reader = Neo4jGraphReader(driver)
        with pytest.raises(Unavailable) as refused:
            await reader._one("UNWIND range(1, 500000000) AS k RETURN sum(k) AS total")
    assert refused.value.status == 503 and refused.value.retry_after_s > 0
