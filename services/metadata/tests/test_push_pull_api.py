"""The CMF push and pull routes, in-process on real PostgreSQL (each test rolled back)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, body_for, renamed, row_counts


def key_shape(value: Any) -> Any:
    """Key sets and value types, recursively: what the client's merge depends on."""
    if isinstance(value, dict):
        return {k: key_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_first_push_succeeds_and_repush_exists(
    client: httpx.AsyncClient, push_body: dict[str, Any], prefix: str
) -> None:
    first = await client.post(f"{prefix}/mlmd_push", json=push_body)
    assert first.status_code == 200 and first.json() == {"status": "success"}
    token = first.headers["X-CMF-Consistency-Token"]
    assert token.startswith(f"{PIPELINE}:") and int(token.split(":")[1]) > 0
    again = await client.post(f"{prefix}/mlmd_push", json=push_body)
    assert again.json() == {"status": "exists"}
    assert "X-CMF-Consistency-Token" not in again.headers


async def test_push_stores_every_execution_artifact_and_event(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    push_body: dict[str, Any],
    payload: dict[str, Any],
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    executions = [e for s in payload["Pipeline"][0]["stages"] for e in s["executions"]]
    uris = {ev["artifact"]["uri"] for e in executions for ev in e["events"]}
    events = {
        (e["properties"]["Execution_uuid"], ev["artifact"]["uri"], ev["type"])
        for e in executions
        for ev in e["events"]
    }
    assert {r["uuid"] for r in await conn.fetch("SELECT uuid FROM executions")} == {
        e["properties"]["Execution_uuid"] for e in executions
    }
    assert {r["uri"] for r in await conn.fetch("SELECT uri FROM artifacts")} == uris
    stored = await conn.fetch(
        "SELECT x.uuid, a.uri, ev.type FROM events ev JOIN executions x ON x.id = ev.execution_id"
        " JOIN artifacts a ON a.id = ev.artifact_id"
    )
    assert {(r["uuid"], r["uri"], r["type"]) for r in stored} == events


def first_sightings(payload: dict[str, Any]) -> list[str]:
    """The payload's artifact uris in the order the client lists them, once each."""
    uris = [
        ev["artifact"]["uri"]
        for s in payload["Pipeline"][0]["stages"]
        for e in s["executions"]
        for ev in e["events"]
    ]
    return list(dict.fromkeys(uris))


async def test_push_numbers_and_times_artifacts_in_the_client_order(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    """The reference creates them one by one, in payload order (pull_example.json: ids and
    times rise with it), not at one shared instant."""
    await client.post("/api/mlmd_push", json=body_for(payload))
    rows = await conn.fetch("SELECT uri, create_time_since_epoch AS t FROM artifacts ORDER BY id")
    assert [r["uri"] for r in rows] == first_sightings(payload)
    times = [r["t"] for r in rows]
    assert times == sorted(set(times))


async def test_a_repush_of_known_artifacts_draws_no_artifact_ids(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=body_for(payload))
    before = await conn.fetchval("SELECT max(id) FROM artifacts")
    other = renamed(payload, "Other-env")
    added = copy.deepcopy(other["Pipeline"][0]["stages"][0]["executions"][0]["events"][0])
    added["artifact"]["uri"] = "0123456789abcdef0123456789abcdef"
    added["artifact"]["name"] = "artifacts/new.xml:0123456789abcdef0123456789abcdef"
    other["Pipeline"][0]["stages"][1]["executions"][0]["events"].append(added)
    await client.post("/api/mlmd_push", json=body_for(other, "Other-env"))
    new_id = await conn.fetchval(
        "SELECT id FROM artifacts WHERE uri = $1", added["artifact"]["uri"]
    )
    assert new_id == before + 1


async def test_push_of_a_pipeline_not_in_the_payload_answers_pipeline_not_exist(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    answer = await client.post("/api/mlmd_push", json=body_for(payload, pipeline="Elsewhere"))
    assert answer.status_code == 200 and answer.json() == {"status": "pipeline_not_exist"}
    assert sum((await row_counts(conn)).values()) == 0


async def test_exec_uuid_push_stores_only_that_execution(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    wanted = payload["Pipeline"][0]["stages"][1]["executions"][0]["properties"]["Execution_uuid"]
    answer = await client.post("/api/mlmd_push", json=body_for(payload, exec_uuid=wanted))
    assert answer.json() == {"status": "success"}
    assert [r["uuid"] for r in await conn.fetch("SELECT uuid FROM executions")] == [wanted]
    rest = await client.post("/api/mlmd_push", json=body_for(payload))
    assert rest.json() == {"status": "success"}
    assert await conn.fetchval("SELECT count(*) FROM executions") == 2


async def test_server_ids_replace_client_ids_in_execution_properties(
    client: httpx.AsyncClient, conn: asyncpg.Connection, push_body: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    rows = await conn.fetch(
        "SELECT e.properties, e.stage_id, e.pipeline_id, e.type, s.name AS stage"
        " FROM executions e JOIN stages s ON s.id = e.stage_id"
    )
    for row in rows:
        assert row["properties"]["Context_ID"] == row["stage_id"]
        assert row["properties"]["Pipeline_id"] == row["pipeline_id"]
        assert row["type"] == row["properties"]["Context_Type"] == row["stage"]


async def test_metrics_name_carries_the_server_execution_id(
    client: httpx.AsyncClient, conn: asyncpg.Connection, push_body: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    row = await conn.fetchrow(
        "SELECT a.name, a.uri, ev.execution_id FROM artifacts a"
        " JOIN events ev ON ev.artifact_id = a.id WHERE a.type = 'Metrics'"
    )
    assert row is not None
    assert row["name"].split(":")[1:] == [row["uri"], str(row["execution_id"])]


async def test_shared_artifact_lists_each_pipeline_in_its_url_once(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=body_for(payload))
    await client.post("/api/mlmd_push", json=body_for(renamed(payload, "Other-env"), "Other-env"))
    url = await conn.fetchval(
        "SELECT properties->>'url' FROM artifacts WHERE name LIKE 'artifacts/data.xml:%'"
    )
    entries = url.split(",")
    assert len(entries) == len(set(entries)) == 2
    assert [e.split(":")[0] for e in entries] == [PIPELINE, "Other-env"]
    memberships = await conn.fetchval(
        "SELECT count(DISTINCT x.pipeline_id) FROM artifacts a"
        " JOIN events ev ON ev.artifact_id = a.id JOIN executions x ON x.id = ev.execution_id"
        " WHERE a.name LIKE 'artifacts/data.xml:%'"
    )
    assert memberships == 2


async def test_reused_execution_unions_its_uuid_set(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    reused = copy.deepcopy(payload)
    execution = reused["Pipeline"][0]["stages"][0]["executions"][0]
    execution["name"] = "prepare-once"
    await client.post("/api/mlmd_push", json=body_for(reused))
    execution["properties"]["Execution_uuid"] = "11111111-2222-3333-4444-555555555555"
    await client.post("/api/mlmd_push", json=body_for(reused))
    row = await conn.fetchrow("SELECT id, uuid FROM executions WHERE name = 'prepare-once'")
    assert row is not None
    assert set(row["uuid"].split(",")) == {
        payload["Pipeline"][0]["stages"][0]["executions"][0]["properties"]["Execution_uuid"],
        "11111111-2222-3333-4444-555555555555",
    }
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM execution_uuids WHERE execution_id = $1", row["id"]
        )
        == 2
    )


async def test_push_writes_its_outbox_events_in_sequence(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    push_body: dict[str, Any],
    payload: dict[str, Any],
) -> None:
    answer = await client.post("/api/mlmd_push", json=push_body)
    rows = await conn.fetch("SELECT subject, seq, type, data FROM outbox ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert answer.headers["X-CMF-Consistency-Token"] == f"{PIPELINE}:{rows[-1]['seq']}"
    assert {r["subject"] for r in rows} == {PIPELINE}
    types = [r["type"] for r in rows]
    assert types[0] == "cmf.metadata.pipeline.upserted.v1"
    merged = [
        e
        for r in rows
        if r["type"] == "cmf.metadata.execution.merged.v1"
        for e in r["data"]["executions"]
    ]
    assert len(merged) == sum(len(s["executions"]) for s in payload["Pipeline"][0]["stages"])


async def test_unicode_names_round_trip(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    name = "管道-🚀-ñ"
    answer = await client.post("/api/mlmd_push", json=body_for(renamed(payload, name), name))
    assert answer.json() == {"status": "success"}
    pulled = await client.post("/api/mlmd_pull", json={"pipeline_name": name})
    document = json.loads(pulled.text)
    assert document["Pipeline"][0]["name"] == name
    assert document["Pipeline"][0]["stages"][0]["name"].startswith(f"{name}/")


# ---- bad input: a clear 4xx and nothing stored ------------------------------------------------


def _payload_with(payload: dict[str, Any], path: list[Any], value: Any) -> str:
    changed = copy.deepcopy(payload)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(changed)


BAD_BODIES: dict[str, Any] = {
    "body is not json": b'{"pipeline_name": "Test-env", "json_payload": ',
    "body is a list": [1, 2],
    "json_payload missing": {"pipeline_name": PIPELINE, "execution_id": 1},
    "json_payload not a string": {"pipeline_name": PIPELINE, "json_payload": {"Pipeline": []}},
    "json_payload empty": {"pipeline_name": PIPELINE, "json_payload": ""},
    "json_payload not json": {"pipeline_name": PIPELINE, "json_payload": "{not json"},
    "json_payload a list": {"pipeline_name": PIPELINE, "json_payload": "[1, 2]"},
    "pipeline_name blank": {"pipeline_name": "   ", "json_payload": '{"Pipeline": []}'},
    "pipeline_name not a string": {"pipeline_name": 7, "json_payload": '{"Pipeline": []}'},
    "pipeline name of 10,000 characters": {
        "pipeline_name": "p" * 10_000,
        "json_payload": '{"Pipeline": []}',
    },
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_malformed_push_bodies_are_422_invalid_request(
    client: httpx.AsyncClient, conn: asyncpg.Connection, case: str
) -> None:
    raw = BAD_BODIES[case]
    content = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    answer = await client.post(
        "/api/mlmd_push", content=content, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["status"] == "invalid_request"
    assert body["detail"] and isinstance(body["detail"], list)
    assert sum((await row_counts(conn)).values()) == 0


async def test_missing_json_payload_names_the_field(client: httpx.AsyncClient) -> None:
    answer = await client.post("/mlmd_push", json={"pipeline_name": PIPELINE, "execution_id": 1})
    assert answer.status_code == 422
    assert ["body", "json_payload"] in [e["loc"] for e in answer.json()["detail"]]


BAD_PAYLOADS: dict[str, tuple[list[Any], Any]] = {
    "event type a string": (
        ["Pipeline", 0, "stages", 0, "executions", 0, "events", 0, "type"],
        "input",
    ),
    "artifact without uri": (
        ["Pipeline", 0, "stages", 0, "executions", 0, "events", 0, "artifact", "uri"],
        None,
    ),
    "stages not a list": (["Pipeline", 0, "stages"], {"a": 1}),
    "stage name of 10,000 characters": (["Pipeline", 0, "stages", 0, "name"], "s" * 10_000),
    "artifact uri of 10,000 characters": (
        ["Pipeline", 0, "stages", 0, "executions", 0, "events", 0, "artifact", "uri"],
        "u" * 10_000,
    ),
    "NUL in a name": (["Pipeline", 0, "stages", 0, "name"], "Test-env/Pre\u0000pare"),
    "properties not an object": (
        ["Pipeline", 0, "stages", 0, "executions", 0, "properties"],
        "Context_Type=x",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
async def test_invalid_payloads_are_422_and_store_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any], case: str
) -> None:
    path, value = BAD_PAYLOADS[case]
    answer = await client.post(
        "/api/mlmd_push",
        json={"pipeline_name": PIPELINE, "json_payload": _payload_with(payload, path, value)},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["status"] == "invalid_request"
    assert sum((await row_counts(conn)).values()) == 0


async def test_payload_without_pipeline_is_400_in_the_reference_shape(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    answer = await client.post(
        "/api/mlmd_push", json={"pipeline_name": PIPELINE, "json_payload": '{"Pipeline": []}'}
    )
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Invalid JSON payload. The pipeline name is missing."}
    assert sum((await row_counts(conn)).values()) == 0


async def test_execution_without_uuid_is_422_version_update(
    client: httpx.AsyncClient, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    old = copy.deepcopy(payload)
    del old["Pipeline"][0]["stages"][1]["executions"][0]["properties"]["Execution_uuid"]
    answer = await client.post("/api/mlmd_push", json=body_for(old))
    assert answer.status_code == 422
    assert answer.json() == {"status": "version_update", "detail": "version_update"}
    assert sum((await row_counts(conn)).values()) == 0


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    huge = {"pipeline_name": PIPELINE, "json_payload": " " * (3 * 1024**2)}
    answer = await client.post("/api/mlmd_push", json=huge)
    assert answer.status_code == 413
    assert "limit" in answer.json()["detail"]
    assert sum((await row_counts(conn)).values()) == 0


async def test_failed_push_rolls_back_everything_it_wrote(
    app: Any, conn: asyncpg.Connection, payload: dict[str, Any]
) -> None:
    """A failure mid-merge (here: a row the store refuses) leaves no trace, not a part."""
    broken = copy.deepcopy(payload)
    broken["Pipeline"][0]["stages"][1]["executions"][0]["custom_properties"]["refused"] = "1"
    await conn.execute("SAVEPOINT before_push")
    await conn.execute(
        "ALTER TABLE executions ADD CONSTRAINT refuse CHECK (NOT custom_properties ? 'refused')"
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://metadata") as http:
        answer = await http.post("/api/mlmd_push", json=body_for(broken))
    assert answer.status_code == 500
    assert await conn.fetchval("SELECT count(*) FROM pipelines") == 0
    await conn.execute("ROLLBACK TO SAVEPOINT before_push")
    assert sum((await row_counts(conn)).values()) == 0


# ---- pull ---------------------------------------------------------------------------------------


async def test_pull_matches_the_reference_shape(
    client: httpx.AsyncClient, push_body: dict[str, Any], fixtures_dir: Path
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    answer = await client.post(
        "/api/mlmd_pull", json={"pipeline_name": PIPELINE, "exec_uuid": None}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    ours = json.loads(answer.text)
    reference = json.loads((fixtures_dir / "pull_example.json").read_text())
    ours_execution = ours["Pipeline"][0]["stages"][0]["executions"][0]
    ref_execution = reference["Pipeline"][0]["stages"][0]["executions"][0]
    assert set(ours["Pipeline"][0]) == set(reference["Pipeline"][0])
    assert set(ours["Pipeline"][0]["stages"][0]) == set(reference["Pipeline"][0]["stages"][0])
    assert set(ours_execution) == set(ref_execution)
    assert {k for ev in ours_execution["events"] for k in ev} == {
        k for ev in ref_execution["events"] for k in ev
    }
    assert key_shape(ours["Pipeline"][0]["properties"]) == key_shape(
        reference["Pipeline"][0]["properties"]
    )
    ref_artifact_keys = {
        k
        for s in reference["Pipeline"][0]["stages"]
        for e in s["executions"]
        for ev in e["events"]
        for k in ev["artifact"]
    }
    assert {k for ev in ours_execution["events"] for k in ev["artifact"]} == ref_artifact_keys
    assert isinstance(ours_execution["custom_properties"]["original_create_time_since_epoch"], str)


async def test_pull_lists_the_newest_stage_and_execution_first(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    """The reference's order: stages as its pull shows them (fixtures/cmf/pull_example.json:
    Train before Prepare), each stage's executions by MLMD's get_executions_by_context
    (create_time_since_epoch DESC, id DESC)."""
    twice = copy.deepcopy(payload)
    train = twice["Pipeline"][0]["stages"][1]
    again = copy.deepcopy(train["executions"][0])
    again["properties"]["Execution_uuid"] = "99999999-e9d5-11f1-a002-02fc00000001"
    train["executions"].append(again)
    await client.post("/api/mlmd_push", json=body_for(twice))
    answer = await client.post("/api/mlmd_pull", json={"pipeline_name": PIPELINE})
    stages = json.loads(answer.text)["Pipeline"][0]["stages"]
    assert [s["name"] for s in stages] == [f"{PIPELINE}/Train", f"{PIPELINE}/Prepare"]
    uuids = [e["properties"]["Execution_uuid"] for e in stages[0]["executions"]]
    assert uuids == [
        again["properties"]["Execution_uuid"],
        train["executions"][0]["properties"]["Execution_uuid"],
    ]


async def test_pulled_environment_artifacts_have_no_client_creation_time(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    """As the reference's pull shows them (fixtures/cmf/pull_example.json): ``{}``."""
    await client.post("/api/mlmd_push", json=push_body)
    answer = await client.post("/api/mlmd_pull", json={"pipeline_name": PIPELINE})
    artifacts = [
        ev["artifact"]
        for s in json.loads(answer.text)["Pipeline"][0]["stages"]
        for e in s["executions"]
        for ev in e["events"]
    ]
    environments = [a for a in artifacts if a["type"] == "Environment"]
    assert environments and all(a["custom_properties"] == {} for a in environments)
    others = [a for a in artifacts if a["type"] != "Environment"]
    assert all("original_create_time_since_epoch" in a["custom_properties"] for a in others)


async def test_pull_with_exec_uuid_keeps_every_stage_and_only_that_execution(
    client: httpx.AsyncClient, push_body: dict[str, Any], payload: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    wanted = payload["Pipeline"][0]["stages"][1]["executions"][0]["properties"]["Execution_uuid"]
    answer = await client.post(
        "/api/mlmd_pull", json={"pipeline_name": PIPELINE, "exec_uuid": wanted}
    )
    stages = json.loads(answer.text)["Pipeline"][0]["stages"]
    assert len(stages) == 2
    executions = [e for s in stages for e in s["executions"]]
    assert [e["properties"]["Execution_uuid"] for e in executions] == [wanted]


async def test_pull_of_an_unknown_exec_uuid_is_the_literal_no_exec_uuid(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    answer = await client.post(
        "/api/mlmd_pull", json={"pipeline_name": PIPELINE, "exec_uuid": "nope"}
    )
    assert answer.status_code == 200 and answer.text == "no_exec_uuid"


@pytest.mark.parametrize("path", ["/mlmd_pull", "/api/mlmd_pull", "/api/mlmd_push"])
@pytest.mark.parametrize("field", ["pipeline_name", "exec_uuid"])
async def test_a_nul_in_a_body_name_is_a_422_not_a_database_error(
    client: httpx.AsyncClient, push_body: dict[str, Any], path: str, field: str
) -> None:
    """Issue 12 item 9: a NUL in mlmd_pull's exec_uuid was a 500 (PostgreSQL's text cannot
    hold one); it is refused as a query parameter's is, and nothing is stored."""
    await client.post("/api/mlmd_push", json=push_body)
    body = {**push_body, "pipeline_name": PIPELINE, field: "a\x00b"}
    answer = await client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["status"] == "invalid_request"
    assert answer.json()["detail"][0]["loc"] == ["body", field]
    pipelines = (await client.get("/api/native/v1/pipelines")).json()["items"]
    assert [p["name"] for p in pipelines] == [PIPELINE]


async def test_pull_of_an_unknown_pipeline_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/mlmd_pull", json={"pipeline_name": "NoSuch"})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Pipeline NoSuch not found."}


async def test_pull_without_pipeline_returns_every_pipeline(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=body_for(payload))
    await client.post("/api/mlmd_push", json=body_for(renamed(payload, "Other-env"), "Other-env"))
    answer = await client.post("/api/mlmd_pull", json={})
    names = [p["name"] for p in json.loads(answer.text)["Pipeline"]]
    assert names == [PIPELINE, "Other-env"]


async def test_pull_since_last_sync_time_keeps_only_later_updates(
    client: httpx.AsyncClient, conn: asyncpg.Connection, push_body: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    latest = await conn.fetchval("SELECT max(last_update_time_since_epoch) FROM executions")
    nothing_new = await client.post("/api/mlmd_pull", json={"last_sync_time": latest})
    assert json.loads(nothing_new.text) == {"Pipeline": []}
    everything = await client.post("/api/mlmd_pull", json={"last_sync_time": latest - 1})
    assert json.loads(everything.text)["Pipeline"][0]["name"] == PIPELINE


@pytest.mark.parametrize(
    "narrowed",
    [
        {"pipeline_name": PIPELINE, "last_sync_time": 4102444800000},  # dumptojson ignores it
        {"last_sync_time": 0},  # 0 is "never synced": extract_to_json(0), everything
        {"exec_uuid": "72d025da-e9d5-11f1-a002-02fc00000001"},  # ignored without a pipeline
    ],
)
async def test_pull_reads_last_sync_time_and_exec_uuid_as_the_reference(
    client: httpx.AsyncClient, push_body: dict[str, Any], narrowed: dict[str, Any]
) -> None:
    """server/app/get_data.py get_mlmd_from_server: a named pipeline is answered whole (but
    for exec_uuid), and only a pull of every pipeline is narrowed by last_sync_time."""
    await client.post("/api/mlmd_push", json=push_body)
    whole = {"pipeline_name": PIPELINE} if "pipeline_name" in narrowed else {}
    answer = await client.post("/api/mlmd_pull", json=narrowed)
    assert answer.status_code == 200
    assert answer.text == (await client.post("/api/mlmd_pull", json=whole)).text


async def test_get_pull_route_answers_like_post(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await client.post("/api/mlmd_push", json=push_body)
    by_get = await client.get(f"/mlmd_pull/{PIPELINE}")
    by_post = await client.post("/mlmd_pull", json={"pipeline_name": PIPELINE})
    assert by_get.status_code == 200 and by_get.text == by_post.text
    assert (await client.get("/api/mlmd_pull/NoSuch")).status_code == 404


async def test_pull_of_a_malformed_body_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/mlmd_pull", content=b'{"last_sync_time": "yesterday"}')
    assert answer.status_code == 422 and answer.json()["status"] == "invalid_request"
