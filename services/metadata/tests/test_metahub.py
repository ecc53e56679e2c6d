"""Metahub on one server, its peer faked with the reference's shapes (docs/metahub.md).

Two real servers syncing are in tests/integration/test_metahub_sync.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cmf_common.db import create_pool
from cmf_common.migrations import migrate
from cmf_common.service import state_of
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import MIGRATIONS
from cmf_metadata.files import LocalFileStore
from cmf_metadata.metahub.peers import TokenCipher
from cmf_metadata.metahub.schedules import ScheduleSpec
from cmf_metadata.metahub.service import Metahub
from cmf_testing.fixtures import cmf_fixture
from cmf_testing.waiting import eventually_async

PEER = "http://peer.test:8080"
PEER_DATE = "Tue, 01 Dec 2026 12:00:00 GMT"
PEER_MS = 1_796_126_400_000  # PEER_DATE in epoch ms


def v1_envelope(data: Any, message: str = "Success", code: int = 200) -> dict[str, Any]:
    """Upstream's v1 envelope around ``data`` (docs/upstream-v1.md §2)."""
    status = "success" if code < 400 else "error"
    meta = {"timestamp": "2026-12-01T12:00:00Z", "pagination": None}
    return {
        "status": status,
        "code": code,
        "data": data,
        "message": message,
        "errors": [],
        "meta": meta,
    }


@dataclass
class FakePeer:
    """A reference server as the sync sees it: acknowledge, the pipeline list, mlmd_pull."""

    document: dict[str, Any] = field(default_factory=lambda: cmf_fixture("pull_example.json"))
    down: bool = False
    server_id: str | None = None
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.answer(request, {"date": PEER_DATE})

    def answer(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        if request.url.path == "/api/acknowledge":
            if self.server_id:
                headers["x-cmf-server-id"] = self.server_id
            return httpx.Response(
                200, json={"message": "Hi, I acknowledge your request."}, headers=headers
            )
        if request.url.path == "/api/pipelines":
            names = [p["name"] for p in self.document["Pipeline"]]
            return httpx.Response(200, json=names, headers=headers)
        if request.url.path == "/api/mlmd_pull":
            body = json.loads(request.content)
            if body.get("last_sync_time"):
                return httpx.Response(200, json={"Pipeline": []}, headers=headers)
            return httpx.Response(200, json=self.document, headers=headers)
        return httpx.Response(404, json={"detail": "Not Found"})

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.seen if r.url.path == path]


ENV_NAME = "python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt"  # pull_example.json's Python_Env
ENV_TEXT = "numpy==2.1.0\npandas==2.2.3\n"


@dataclass
class FakeV1Peer(FakePeer):
    """A newest upstream server: only the v1 routes (docs/upstream-v1.md §3, §4, §7, §8), JSON
    in the envelope, the pull raw; every other path an enveloped 404, as upstream's router."""

    def answer(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/acknowledge":
            body = json.loads(request.content)
            return httpx.Response(200, json=v1_envelope({**body, "status": "ok"}), headers=headers)
        if path == "/api/v1/pipelines":
            names = [p["name"] for p in self.document["Pipeline"]]
            return httpx.Response(200, json=v1_envelope(names), headers=headers)
        if path == "/api/v1/mlmd/pull":
            body = json.loads(request.content)
            document = {"Pipeline": []} if body.get("last_sync_time") else self.document
            raw = json.dumps(document).encode()
            return httpx.Response(
                200, content=raw, headers={**headers, "content-type": "text/html"}
            )
        if path == "/api/v1/python-env" and request.url.params.get("file_name") == ENV_NAME:
            return httpx.Response(200, json=v1_envelope(ENV_TEXT), headers=headers)
        return httpx.Response(404, json=v1_envelope(None, "Not Found", 404), headers=headers)


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def now_ms(self) -> int:
        return self.now


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()


@pytest.fixture
def hub(app: FastAPI, peer: FakePeer) -> Metahub:
    metahub = state_of(app, MetadataState).metahub
    assert metahub is not None
    metahub.http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
    metahub.overlap_ms = 0
    return metahub


async def register(client: httpx.AsyncClient, name: str = "a", url: str = PEER) -> httpx.Response:
    return await client.post("/register-server", json={"server_name": name, "server_url": url})


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_acknowledge_answers_with_our_server_id(
    client: httpx.AsyncClient, prefix: str
) -> None:
    answer = await client.post(
        f"{prefix}/acknowledge", json={"server_name": "b", "server_url": "http://b"}
    )
    assert answer.json() == {"message": "Hi, I acknowledge your request."}
    v1 = await client.post(
        f"{prefix}/v1/acknowledge", json={"server_name": "b", "server_url": "http://b"}
    )
    assert v1.json()["data"] == {"server_name": "b", "server_url": "http://b", "status": "ok"}
    assert answer.headers["x-cmf-server-id"] == v1.headers["x-cmf-server-id"]


@pytest.mark.usefixtures("hub")
async def test_register_then_list_in_both_generations(
    client: httpx.AsyncClient, peer: FakePeer
) -> None:
    assert (await register(client)).json() == {"message": "Server registered successfully"}
    assert peer.bodies("/api/acknowledge") == [
        {"server_name": "a", "server_url": "http://metadata"}
    ]
    listed = (await client.get("/api/server-list")).json()
    assert listed == [
        {"id": listed[0]["id"], "server_name": "a", "host_info": PEER, "last_sync_time": None}
    ]
    v1 = (await client.get("/api/v1/servers")).json()
    assert v1["status"] == "success" and v1["data"] == listed
    taken = await register(client, url=PEER + "/")
    assert taken.json() == {
        "message": "Server name already exists. Please use a unique server name"
    }
    v1_taken = await client.post(
        "/v1/servers/register", json={"server_name": "a", "server_url": PEER}
    )
    assert v1_taken.status_code == 409 and v1_taken.json()["status"] == "error"
    created = await client.post(
        "/v1/servers/register", json={"server_name": "b", "server_url": "https://peer-b.test"}
    )
    assert created.json()["code"] == 201
    assert created.json()["data"]["host_info"] == "https://peer-b.test"


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize(
    "url", ["ftp://peer.test", "peer.test:8080", "http://", "http://u:p@peer.test", "http://h:x"]
)
async def test_a_peer_url_is_http_or_https_with_a_host(
    client: httpx.AsyncClient, url: str, peer: FakePeer
) -> None:
    answer = await register(client, url=url)
    assert answer.status_code == 400 and "server_url" in answer.json()["detail"]
    v1 = await client.post("/v1/servers/register", json={"server_name": "a", "server_url": url})
    assert v1.status_code == 400 and v1.json()["status"] == "error"
    assert peer.seen == []


async def test_only_a_peer_host_the_operator_allows_is_registered_or_called(
    client: httpx.AsyncClient, hub: Metahub, peer: FakePeer
) -> None:
    hub.peer_hosts = frozenset({"peer.test"})
    refused = await register(client, url="http://elsewhere.test")
    assert refused.status_code == 400 and "METAHUB_PEER_HOSTS" in refused.json()["detail"]
    assert peer.seen == []
    assert (await register(client, url="http://PEER.test:8080")).status_code == 200
    assert (await client.get("/server-list")).json()[0]["host_info"] == "http://PEER.test:8080"


async def test_we_refuse_to_register_ourselves(
    client: httpx.AsyncClient, hub: Metahub, peer: FakePeer
) -> None:
    peer.server_id = await hub.server_id()  # some alias of our own address
    refused = await register(client)
    assert refused.json() == {
        "message": "Registration failed: Cannot register the server with its own details."
    }
    ourselves = await register(client, url="http://metadata")
    assert ourselves.json()["message"].startswith("Registration failed")
    v1 = await client.post("/v1/servers/register", json={"server_name": "a", "server_url": PEER})
    assert v1.status_code == 400
    assert (await client.get("/server-list")).json() == []


@pytest.mark.usefixtures("hub")
async def test_a_peer_down_is_a_502_with_the_reason(
    client: httpx.AsyncClient, peer: FakePeer
) -> None:
    peer.down = True
    answer = await register(client)
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith("Target server is not reachable")
    assert (await client.get("/server-list")).json() == []


async def test_a_token_is_kept_encrypted_sent_to_the_peer_and_never_returned(
    client: httpx.AsyncClient, hub: Metahub, peer: FakePeer, conn: Any
) -> None:
    body = {"server_name": "a", "server_url": PEER, "token": "s3cret-token"}
    no_key = await client.post("/register-server", json=body)
    assert no_key.status_code == 403 and "METAHUB_SECRET_KEY" in no_key.json()["detail"]
    hub.cipher = TokenCipher("key from settings")
    assert (await client.post("/register-server", json=body)).status_code == 200
    sealed = await conn.fetchval("SELECT token_encrypted FROM metahub_peers")
    assert b"s3cret" not in sealed and hub.cipher.decrypt(sealed) == "s3cret-token"
    assert peer.seen[-1].headers["authorization"] == "Bearer s3cret-token"
    assert "s3cret" not in (await client.get("/server-list")).text
    assert "s3cret" not in (await client.get("/v1/servers")).text
    peer.seen.clear()
    await client.post("/sync", json={"server_name": "a", "server_url": PEER})
    assert {r.headers["authorization"] for r in peer.seen} == {"Bearer s3cret-token"}


@pytest.mark.usefixtures("hub")
async def test_sync_from_a_reference_peer_full_then_delta(
    client: httpx.AsyncClient, peer: FakePeer
) -> None:
    await register(client)
    server = {"server_name": "a", "server_url": PEER}
    first = (await client.post("/sync", json=server)).json()
    assert first["status"] == "success" and first["last_sync_time"] == PEER_MS
    assert peer.bodies("/api/mlmd_pull") == [{"pipeline_name": "Test-env"}]
    assert (await client.get("/pipelines")).json() == ["Test-env"]
    assert (await client.get("/server-list")).json()[0]["last_sync_time"] == PEER_MS
    peer.seen.clear()
    second = (await client.post("/api/v1/servers/sync", json=server)).json()
    assert second["data"]["message"] == "Nothing to sync"
    assert peer.bodies("/api/mlmd_pull") == [{"last_sync_time": PEER_MS}]
    server_id = (await client.get("/server-list")).json()[0]["id"]
    logs = (await client.get(f"/server/{server_id}/completed-logs")).json()
    assert [(log["status"], log["sync_type"]) for log in logs] == [
        ("success", "sync_now"),
        ("success", "sync_now"),
    ]
    assert logs[1]["executions_pulled"] == 1 and logs[1]["executions_merged"] == 1


async def test_sync_from_a_peer_that_serves_only_upstream_v1_full_then_delta(
    app: FastAPI, client: httpx.AsyncClient, store: LocalFileStore
) -> None:
    """The newest upstream server no longer serves the 0.1.0 routes: registered and synced
    through the v1 ones, its env file fetched from v1's python-env."""
    peer = FakeV1Peer()
    metahub = state_of(app, MetadataState).metahub
    assert metahub is not None
    metahub.http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
    metahub.overlap_ms = 0
    metahub.files = store
    registered = await client.post(
        "/v1/servers/register", json={"server_name": "v1", "server_url": PEER}
    )
    assert registered.json()["code"] == 201, registered.text
    assert [r.url.path for r in peer.seen] == ["/api/acknowledge", "/api/v1/acknowledge"]
    server = {"server_name": "v1", "server_url": PEER}
    first = (await client.post("/sync", json=server)).json()
    assert first["status"] == "success" and first["last_sync_time"] == PEER_MS, first
    assert "1 python-env file(s) fetched" in first["message"]
    assert peer.bodies("/api/v1/mlmd/pull") == [{"pipeline_name": "Test-env"}]
    assert peer.bodies("/api/mlmd_pull") == []
    assert (await client.get("/pipelines")).json() == ["Test-env"]
    ours = await client.get("/api/python-env", params={"file_name": ENV_NAME})
    assert ours.status_code == 200 and ours.text == ENV_TEXT
    peer.seen.clear()
    second = (await client.post("/api/v1/servers/sync", json=server)).json()["data"]
    assert second["message"] == "Nothing to sync", second
    assert peer.bodies("/api/v1/mlmd/pull") == [{"last_sync_time": PEER_MS}]


async def test_a_peer_serving_neither_generation_fails_the_sync_with_the_reason(
    client: httpx.AsyncClient, hub: Metahub
) -> None:
    await register(client)
    hub.http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(404, json={"detail": "Not Found"}))
    )
    failed = await client.post("/sync", json={"server_name": "a", "server_url": PEER})
    assert failed.status_code == 502
    assert "no pipeline list of the 0.1.0 or the v1 routes" in failed.json()["detail"]


@pytest.mark.usefixtures("hub")
async def test_a_failed_sync_is_logged_and_keeps_the_sync_point(
    client: httpx.AsyncClient, peer: FakePeer
) -> None:
    await register(client)
    server = {"server_name": "a", "server_url": PEER}
    peer.down = True
    failed = await client.post("/sync", json=server)
    assert failed.status_code == 502 and "not reachable" in failed.json()["detail"]
    v1 = await client.post("/v1/servers/sync", json=server)
    assert v1.status_code == 502 and v1.json()["status"] == "error"
    assert (await client.get("/server-list")).json()[0]["last_sync_time"] is None
    server_id = (await client.get("/server-list")).json()[0]["id"]
    logs = (await client.get(f"/v1/servers/{server_id}/completed-logs")).json()["data"]
    assert [log["status"] for log in logs] == ["failed", "failed"]
    assert "not reachable" in logs[0]["message"]
    peer.down = False
    assert (await client.post("/sync", json=server)).json()["status"] == "success"


@pytest.mark.usefixtures("hub")
async def test_sync_of_an_unknown_server_is_404(client: httpx.AsyncClient) -> None:
    server = {"server_name": "nobody", "server_url": PEER}
    answer = await client.post("/sync", json=server)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Server not found in the registered servers list"}
    assert (await client.post("/v1/servers/sync", json=server)).status_code == 404


Schedule = Callable[..., Any]


async def test_schedules_fire_on_the_fake_clock_and_a_missed_run_runs_once(
    client: httpx.AsyncClient, hub: Metahub, peer: FakePeer
) -> None:
    clock = FakeClock(PEER_MS)  # 2026-12-01 12:00 UTC
    hub.clock = clock
    await register(client)
    server_id = (await client.get("/server-list")).json()[0]["id"]
    created = await client.post(
        "/schedule-sync",
        json={
            "server_id": server_id,
            "timezone": "Europe/Paris",  # UTC+1 in December
            "start_time_local_iso": "2026-12-01T13:30",
            "recurrence_mode": "interval",
            "interval_unit": "minutes",
            "interval_value": 10,
        },
    )
    assert created.status_code == 200, created.text
    first = PEER_MS + 30 * 60_000
    assert created.json()["next_run_time_utc"] == first
    assert await hub.run_due() == 0
    clock.now = first + 35 * 60_000  # three runs missed while down: one runs
    assert await hub.run_due() == 1
    assert await hub.run_due() == 0
    listed = (await client.get("/schedules", params={"server_id": server_id})).json()
    assert listed[0]["next_run_time_utc"] == first + 40 * 60_000
    v1_listed = await client.get("/api/v1/schedules", params={"server_id": server_id})
    assert v1_listed.json()["data"] == listed  # the v1 UI's call, its rows in the envelope
    schedule_id = created.json()["schedule_id"]
    logs = (await client.get(f"/schedule-sync/logs/{schedule_id}")).json()
    assert [(log["status"], log["sync_type"]) for log in logs] == [("success", "interval")]
    v1_logs = (await client.get(f"/v1/schedules/{schedule_id}/logs")).json()["data"]
    assert v1_logs == logs
    deleted = await client.delete(f"/schedule-sync/{schedule_id}")
    assert deleted.json() == {"message": "Schedule deactivated"}
    assert (await client.get("/schedules")).json() == []
    assert (await client.delete(f"/v1/schedules/{schedule_id}")).status_code == 200
    assert (await client.delete("/schedule-sync/999")).status_code == 404


async def test_a_one_time_schedule_runs_once_and_ends(
    client: httpx.AsyncClient, hub: Metahub
) -> None:
    clock = FakeClock(PEER_MS)
    hub.clock = clock
    await register(client)
    server_id = (await client.get("/server-list")).json()[0]["id"]
    created = await client.post(
        "/v1/schedules",
        json={
            "server_id": server_id,
            "start_time_local_iso": "2026-12-01T12:05",
            "one_time": True,
            "recurrence_mode": "weekly",  # dropped: one time
        },
    )
    assert created.json()["code"] == 201
    assert created.json()["data"]["next_run_time_utc"] == PEER_MS + 5 * 60_000
    clock.now += 6 * 60_000
    assert await hub.run_due() == 1
    assert (await client.get("/v1/schedules")).json()["data"] == []
    assert await hub.run_due() == 0


async def test_a_run_claimed_by_a_process_that_died_runs_once_more(
    make_database_url: Callable[[], str], peer: FakePeer
) -> None:
    """Two processes on one database: the first claims a one-time schedule's run and dies
    before it syncs; while it lived nobody else ran it, and once its session is gone the next
    tick runs it, once."""
    url = make_database_url()
    pool = await create_pool(url, "metadata", min_size=1, max_size=4)
    dying = await create_pool(url, "metadata", min_size=1, max_size=1)
    try:
        await migrate(pool, "metadata", MIGRATIONS)
        clock = FakeClock(PEER_MS)
        http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
        hub = Metahub(pool, http, overlap_ms=0, clock=clock)
        await hub.register("a", PEER, own_url="http://metadata")
        (server,) = await hub.peers()
        spec = ScheduleSpec(server["id"], "UTC", "2026-12-01T12:05", one_time=True)
        schedule_id = (await hub.add_schedule(spec))["schedule_id"]
        clock.now += 6 * 60_000

        (claimed,) = await Metahub(dying, http, clock=clock).claim_due(await dying.acquire())
        assert claimed["id"] == schedule_id
        assert await hub.run_due() == 0, "its claimer lives: nobody else runs it"
        dying.terminate()  # killed: its connection, and with it the run lock, go

        async def reran() -> None:
            assert await hub.run_due() == 1

        await eventually_async(reran, timeout=30)
        assert await hub.run_due() == 0
        logs = await hub.schedule_logs(schedule_id)
        assert [(log["status"], log["sync_type"]) for log in logs] == [("success", "one_time")]
        assert await hub.schedules(None) == []
    finally:
        dying.terminate()
        await pool.close()


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"timezone": "Mars/Olympus"}, 400, "Invalid timezone"),
        ({"start_time_local_iso": "tomorrow"}, 400, "Invalid datetime format"),
        ({"one_time": True, "start_time_local_iso": "2020-01-01T00:00"}, 400, "future"),
        ({"server_id": 4242}, 404, "Registered server not found"),
        ({"recurrence_mode": "weekly"}, 422, None),
        ({"interval_unit": "days"}, 422, None),
        ({"server_id": 2**70}, 422, None),
    ],
)
async def test_bad_schedules_are_4xx_in_each_dialect(
    client: httpx.AsyncClient, change: dict[str, Any], status: int, detail: str | None
) -> None:
    await register(client)
    server_id = (await client.get("/server-list")).json()[0]["id"]
    body = {"server_id": server_id, "start_time_local_iso": "2030-01-01T00:00", **change}
    answer = await client.post("/schedule-sync", json=body)
    assert answer.status_code == status, answer.text
    if detail is not None:
        assert detail in answer.json()["detail"]
    v1 = await client.post("/v1/schedules", json=body)
    assert v1.status_code == status and v1.json()["status"] == "error"


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize(
    "path", ["/schedule-sync/logs/0", "/server/-1/completed-logs", "/schedules?server_id=x"]
)
async def test_bad_ids_are_422(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 422
    assert (await client.get(f"/api{path}")).status_code == 422
