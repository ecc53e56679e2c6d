"""The signed principal and its pipeline prefix in the metadata service (docs/prefixes.md):
every read of every dialect answers as if pipelines outside the prefix did
not exist, pushes to them are refused with 403, unsigned or badly signed calls with 401.

The scene (``cmf_testing.prefixes``): ``teamA-p`` inside the prefix ``teamA-``,
``teamB-secret`` and ``teamB-shared`` (which shares ``teamA-p``'s artifacts) outside. Every
route is called, by a principal restricted to ``teamA-``, with the ids and names of what lies
outside: no answer may carry anything only those pipelines hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from cmf_common.dialects import served_routes
from cmf_common.principal import PRINCIPAL_HEADER
from cmf_common.service import install_state
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import create_service
from cmf_metadata.settings import MetadataSettings
from cmf_testing.prefixes import (
    HIDDEN,
    SCENE,
    SECRET,
    SHARED,
    VISIBLE,
    filled,
    hidden_payload,
    leaks_of,
    push_body,
    signed,
    visible_payload,
)


def app_with(pool: Any, database_url: str, **settings: Any) -> FastAPI:
    config = MetadataSettings(
        database_url=SecretStr(database_url),
        principal_secret=SecretStr(SECRET.decode()),
        **settings,
    )
    service = create_service(config)
    install_state(service.app, MetadataState.on(config, pool))
    return service.app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://metadata")


@pytest.fixture
def app(single_connection_pool: Any, fresh_database_url: str) -> FastAPI:
    return app_with(single_connection_pool, fresh_database_url)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as http:
        yield http


@pytest.fixture
async def pushed(client: httpx.AsyncClient, payload: dict[str, Any], conn: Any) -> dict[str, Any]:
    """The scene pushed (without a principal: full access); the ids of what lies outside."""
    for name, make in SCENE:
        answer = await client.post("/api/mlmd_push", json=push_body(name, make(payload)))
        assert answer.json() == {"status": "success"}, answer.text
    hidden = await conn.fetchval("SELECT id FROM pipelines WHERE name = $1", HIDDEN)
    return {
        "model": await conn.fetchval(
            "SELECT a.id FROM artifacts a WHERE a.type = 'Model' AND a.name LIKE 'hiddenzz/%'"
        ),
        "execution": await conn.fetchval(
            "SELECT id FROM executions WHERE pipeline_id = $1 ORDER BY id DESC LIMIT 1", hidden
        ),
        "shared_execution": await conn.fetchval(
            "SELECT e.id FROM executions e JOIN pipelines p ON p.id = e.pipeline_id"
            " WHERE p.name = $1 ORDER BY e.id DESC LIMIT 1",
            SHARED,
        ),
        "uuid": await conn.fetchval(
            "SELECT uuid FROM executions WHERE pipeline_id = $1 LIMIT 1", hidden
        ),
        "stage_id": await conn.fetchval(
            "SELECT id FROM stages WHERE pipeline_id = $1 ORDER BY id DESC LIMIT 1", hidden
        ),
        "metrics": await conn.fetchval(
            "SELECT name FROM artifacts WHERE type = 'Step_Metrics' AND name LIKE '%hiddenzz%'"
        ),
    }


# Routes that hold no pipeline's data (Metahub's, uploaded files by their names) or write.
METAHUB = re.compile(
    r"/(acknowledge|register-server|server-list|sync|schedule-sync|schedules|servers"
    r"|servers/register|servers/sync)$"
)
FILES = ("/python-env", "/label-data", "/python-env/download", "/download-python-env")
UPLOADS = ("/python-env", "/label", "/tensorboard")


def _is_read(method: str, path: str) -> bool:
    if "push" in path or METAHUB.search(path):
        return False
    if method == "POST" and path.endswith(UPLOADS):
        return False
    return not (method == "GET" and path.endswith(FILES) and "{" not in path)


async def test_every_read_answers_as_if_the_pipelines_outside_did_not_exist(
    app: FastAPI, client: httpx.AsyncClient, pushed: dict[str, Any]
) -> None:
    stage = f"{HIDDEN}/Train"
    values = {
        "pipeline_name": HIDDEN,
        "pipeline": HIDDEN,
        "stage": stage,
        "stage_name": stage,
        "artifact_type": "Model",
        "artifact_id": pushed["model"],
        "model_id": pushed["model"],
        "execution_id": pushed["execution"],
        "execution_uuid": pushed["uuid"],
        "uuid": pushed["uuid"],
        "stage_id": pushed["stage_id"],
        "last_sync_time": 0,
        "metrics_name": pushed["metrics"],
    }
    ids = f"{pushed['execution']},{pushed['shared_execution']}"
    by_id = {"modelId": pushed["model"], "ids": ids}
    targeted = {
        **by_id,
        "pipeline_name": HIDDEN,
        "stage_name": stage,
        "artifact_type": "Model",
        "pipeline": HIDDEN,
        "stage": stage,
        "name": HIDDEN,
    }
    bodies = [
        {
            "pipeline_name": HIDDEN,
            "artifact_type": "Model",
            "exe_ids": [pushed["execution"], pushed["shared_execution"]],
            "artifact_ids": [pushed["model"]],
        },
        {},
    ]
    asked, found = 0, []
    for entry in served_routes("metadata", app.routes):
        path = filled(entry.path, values)
        for method in sorted(entry.methods & {"GET", "POST"}):
            if path is None or not _is_read(method, entry.path):
                continue
            variants: list[dict[str, Any]] = (
                [{"params": targeted}, {"params": by_id}]
                if method == "GET"
                else [{"json": b} for b in bodies]
            )
            for variant in variants:
                found += await leaks_of(client, method, path, **variant)
                asked += 1
    assert asked > 150
    assert not found, "\n".join(found)


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_listings_and_pulls_hold_only_the_pipelines_inside(
    client: httpx.AsyncClient, pushed: dict[str, Any], prefix: str
) -> None:
    assert (await client.get(f"{prefix}/pipelines", headers=signed())).json() == [VISIBLE]
    full = (await client.get(f"{prefix}/pipelines")).json()
    assert set(full) == {VISIBLE, HIDDEN, SHARED}
    pulled = await client.post(f"{prefix}/mlmd_pull", json={}, headers=signed())
    assert [p["name"] for p in json.loads(pulled.text)["Pipeline"]] == [VISIBLE]
    missing = await client.get(f"{prefix}/mlmd_pull/{HIDDEN}", headers=signed())
    unknown = await client.get(f"{prefix}/mlmd_pull/never-pushed", headers=signed())
    assert missing.status_code == unknown.status_code == 404
    assert missing.json() == {"detail": f"Pipeline {HIDDEN} not found."}
    mine = await client.get(f"{prefix}/mlmd_pull/{VISIBLE}", headers=signed())
    assert [p["name"] for p in json.loads(mine.text)["Pipeline"]] == [VISIBLE]


async def test_the_other_dialects_answer_alike(
    client: httpx.AsyncClient, pushed: dict[str, Any]
) -> None:
    v1 = (await client.get("/api/v1/pipelines", headers=signed())).json()
    assert v1["data"] == [VISIBLE]
    native = (await client.get("/api/native/v1/pipelines", headers=signed())).json()
    assert [p["name"] for p in native["items"]] == [VISIBLE] and native["total"] == 1
    cards = (await client.get("/api/native/v1/views/pipelines", headers=signed())).json()
    assert [p["name"] for p in cards["items"]] == [VISIBLE] and cards["total"] == 1
    hidden = await client.get(
        "/api/native/v1/views/pipeline", params={"name": HIDDEN}, headers=signed()
    )
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    envelope = await client.get(f"/api/v1/pipelines/{HIDDEN}/executions", headers=signed())
    never = await client.get("/api/v1/pipelines/never-pushed/executions", headers=signed())
    assert envelope.json()["code"] == never.json()["code"]
    sequences = await client.get("/api/native/v1/pipeline-sequences", headers=signed())
    assert list(sequences.json()["pipelines"]) == [VISIBLE]


async def test_a_shared_artifact_shows_only_the_pipelines_and_executions_inside(
    client: httpx.AsyncClient, pushed: dict[str, Any]
) -> None:
    listed = await client.get(
        "/api/native/v1/artifacts", params={"type": "Model"}, headers=signed()
    )
    (model,) = listed.json()["items"]
    assert model["pipelines"] == [VISIBLE]
    full = (await client.get("/api/native/v1/artifacts", params={"type": "Model"})).json()
    assert {tuple(m["pipelines"]) for m in full["items"]} == {(VISIBLE, SHARED), (HIDDEN,)}
    one = (await client.get(f"/api/native/v1/artifacts/{model['id']}", headers=signed())).json()
    assert {e["execution"]["pipeline"] for e in one["events"]} == {VISIBLE}
    assert one["events_total"] == len(one["events"])
    card = await client.get(f"/api/native/v1/views/model-card/{model['id']}", headers=signed())
    assert {e["pipeline"] for e in card.json()["executions"]} == {VISIBLE}


@pytest.mark.parametrize("path", ["/mlmd_push", "/api/mlmd_push", "/api/v1/mlmd/push"])
async def test_a_push_outside_the_prefix_is_refused_with_403(
    client: httpx.AsyncClient, payload: dict[str, Any], conn: Any, path: str
) -> None:
    outside = push_body(HIDDEN, hidden_payload(payload))
    refused = await client.post(path, json=outside, headers=signed())
    assert refused.status_code == 403, refused.text
    if "/v1/" in path:
        assert refused.json()["code"] == 403 and refused.json()["status"] == "error"
    else:
        assert "outside" in refused.json()["detail"]
    assert await conn.fetchval("SELECT count(*) FROM pipelines") == 0
    inside = push_body(VISIBLE, visible_payload(payload))
    reader = await client.post(path, json=inside, headers=signed(scopes=frozenset({"read"})))
    assert reader.status_code == 403
    allowed = await client.post(path, json=inside, headers=signed())
    assert allowed.status_code == 200, allowed.text
    assert await conn.fetchval("SELECT name FROM pipelines") == VISIBLE


async def test_a_big_push_outside_the_prefix_is_refused_before_it_merges(
    single_connection_pool: Any,
    fresh_database_url: str,
    payload: dict[str, Any],
    conn: Any,
    tmp_path: Path,
) -> None:
    app = app_with(
        single_connection_pool, fresh_database_url, big_push_bytes=1024, files_dir=tmp_path
    )
    async with client_of(app) as http:
        refused = await http.post(
            "/api/mlmd_push", json=push_body(HIDDEN, hidden_payload(payload)), headers=signed()
        )
    assert refused.status_code == 403, refused.text
    assert "outside" in refused.json()["detail"]
    assert await conn.fetchval("SELECT count(*) FROM pipelines") == 0


async def test_unsigned_and_badly_signed_calls_are_refused_with_401(
    single_connection_pool: Any, fresh_database_url: str
) -> None:
    forged = signed()
    version, body, signature = forged[PRINCIPAL_HEADER].split(".")
    body = body[:-1] + ("A" if body[-1] != "A" else "B")
    forged[PRINCIPAL_HEADER] = f"{version}.{body}.{signature}"
    required = app_with(single_connection_pool, fresh_database_url, require_principal=True)
    async with client_of(required) as http:
        unsigned = await http.get("/api/pipelines")
        assert unsigned.status_code == 401 and "principal" in unsigned.json()["detail"]
        native = await http.get("/api/native/v1/pipelines")
        assert native.status_code == 401
        assert native.headers["content-type"].startswith("application/problem+json")
        v1 = await http.get("/api/v1/pipelines")
        assert v1.status_code == 401 and v1.json()["code"] == 401
        assert (await http.get("/livez")).status_code == 200
        assert (await http.get("/api/pipelines", headers=signed())).status_code == 200
        assert (await http.get("/api/pipelines", headers=signed(ttl_s=-1))).status_code == 401
        assert (await http.get("/api/pipelines", headers=forged)).status_code == 401
        other = signed(secret=b"another-secret-of-the-same-size!")
        assert (await http.get("/api/pipelines", headers=other)).status_code == 401
    optional = app_with(single_connection_pool, fresh_database_url)
    async with client_of(optional) as http:
        assert (await http.get("/api/pipelines")).status_code == 200
        # Not required, but a principal that comes must verify: no widening by forgery.
        assert (await http.get("/api/pipelines", headers=forged)).status_code == 401
