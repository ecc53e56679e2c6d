"""Metahub between two real servers on loopback (docs/metahub.md): B registers A, syncs it
whole, then only what A got since; a real short schedule syncs too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ServerProcess, free_port, start_server

from cmf_testing.fixtures import cmf_fixture
from cmf_testing.generator import push_body
from cmf_testing.waiting import eventually

# Ids, and the times each server stamps its own rows with, differ between servers; so do the
# pipeline ids a pull writes into each execution's properties (the server's own, as the
# reference does), once the two servers numbered their pipelines differently.
LOCAL_KEYS = {
    "id",
    "type_id",
    "create_time_since_epoch",
    "last_update_time_since_epoch",
    "Context_ID",
    "Pipeline_id",
}


# The python env the example's executions name (Python_Env), as the client uploads it.
ENV_FILE = "python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt"
ENV_TEXT = b"numpy==1.26.4\npandas==2.2.2\n"


def comparable(value: Any) -> Any:
    """``value`` without what is each server's own; lists in a canonical order (rows made in
    one push share a time, and each server breaks the tie by its own ids)."""
    if isinstance(value, dict):
        kept = {k: comparable(v) for k, v in value.items() if k not in LOCAL_KEYS}
        name = kept.get("name")
        if isinstance(name, str) and name.startswith("metrics:"):
            kept["name"] = name.rsplit(":", 1)[0]  # ends in the server's own execution id
        return kept
    if isinstance(value, list):
        return sorted((comparable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def pulled(base_url: str, pipeline: str) -> Any:
    answer = httpx.post(f"{base_url}/api/mlmd_pull", json={"pipeline_name": pipeline}, timeout=30)
    assert answer.status_code == 200, answer.text
    return comparable(answer.json())


def clock_passed_updates(base_url: str, pipeline: str) -> None:
    """Wait until the server's ``Date`` (the sync point a peer reads) is past every update of
    ``pipeline``. uvicorn renews ``Date`` about once a second, in whole seconds, so it can lag
    the rows' millisecond stamps by up to two seconds, more on a loaded machine; a sync point
    taken earlier would pull those rows again (harmless: they merge as exists)."""
    answer = httpx.post(f"{base_url}/api/mlmd_pull", json={"pipeline_name": pipeline}, timeout=30)
    last = max(
        e["last_update_time_since_epoch"]
        for p in answer.json()["Pipeline"]
        for s in p["stages"]
        for e in s["executions"]
    )

    def passed() -> None:
        date = httpx.get(f"{base_url}/api/pipelines").headers["date"]
        assert parsedate_to_datetime(date).timestamp() * 1000 > last, (date, last)

    eventually(passed, timeout=30)


def executions(base_url: str, pipeline: str) -> int:
    answer = httpx.post(f"{base_url}/api/mlmd_pull", json={"pipeline_name": pipeline}, timeout=30)
    return sum(len(s["executions"]) for p in answer.json()["Pipeline"] for s in p["stages"])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ...]]:
    tmp = tmp_path_factory.mktemp("metahub")
    env = {"METAHUB_SYNC_OVERLAP_MS": "0", "METAHUB_SCHEDULER_INTERVAL_S": "1"}
    with start_server(tmp, free_port(), env) as a, start_server(tmp, free_port(), env) as b:
        yield a, b


def test_b_pulls_all_of_a_then_only_the_delta(servers: tuple[ServerProcess, ...]) -> None:
    a, b = servers
    push = httpx.post(f"{a.base_url}/api/mlmd_push", json=cmf_fixture("push_example.json"))
    assert push.json() == {"status": "success"}
    env = {"file": (f"cmf_artifacts/{ENV_FILE}", ENV_TEXT, "text/plain")}
    assert httpx.post(f"{a.base_url}/api/python-env", files=env).status_code == 200
    clock_passed_updates(a.base_url, "Test-env")
    server = {"server_name": "a", "server_url": a.base_url}
    registered = httpx.post(f"{b.base_url}/api/register-server", json=server, timeout=30)
    assert registered.json() == {"message": "Server registered successfully"}
    ourselves = httpx.post(
        f"{b.base_url}/register-server",
        json={"server_name": "me", "server_url": b.base_url + "/"},
        timeout=30,
    )
    assert ourselves.json()["message"].startswith("Registration failed")

    first = httpx.post(f"{b.base_url}/api/v1/servers/sync", json=server, timeout=60).json()
    assert first["data"]["status"] == "success", first
    assert pulled(b.base_url, "Test-env") == pulled(a.base_url, "Test-env")
    full = first["data"]["executions_pulled"]
    assert full == executions(a.base_url, "Test-env") > 0
    # The env file the executions name came along, as the reference's sync brings it.
    assert "1 python-env file(s) fetched" in first["data"]["message"], first
    fetched = httpx.get(f"{b.base_url}/api/python-env", params={"file_name": ENV_FILE})
    assert fetched.content == ENV_TEXT

    more = httpx.post(f"{a.base_url}/api/mlmd_push", json=push_body("More", 7), timeout=60)
    assert more.json() == {"status": "success"}
    second = httpx.post(f"{b.base_url}/api/v1/servers/sync", json=server, timeout=60).json()
    assert (second["data"]["executions_pulled"], second["data"]["executions_merged"]) == (7, 7)
    assert pulled(b.base_url, "More") == pulled(a.base_url, "More")
    assert pulled(b.base_url, "Test-env") == pulled(a.base_url, "Test-env")
    assert httpx.get(f"{b.base_url}/api/pipelines").json() == ["More", "Test-env"]

    # Nothing new: what the sync point's second pulls again merges as exists.
    again = httpx.post(f"{b.base_url}/api/v1/servers/sync", json=server, timeout=60).json()
    assert again["data"]["executions_merged"] == 0
    assert executions(b.base_url, "More") == 7

    # Both ways: A pulls from B what B pulled from A, and nothing doubles.
    back = {"server_name": "b", "server_url": b.base_url}
    assert httpx.post(f"{a.base_url}/register-server", json=back, timeout=30).status_code == 200
    assert httpx.post(f"{a.base_url}/sync", json=back, timeout=60).json()["status"] == "exists"
    assert executions(a.base_url, "More") == executions(b.base_url, "More") == 7


def test_a_real_short_interval_schedule_syncs(servers: tuple[ServerProcess, ...]) -> None:
    a, b = servers
    # Pushed before the schedule exists: its first run starts at once and must find it (pushed
    # after, the run could come first, log "exists", and the next is a minute away).
    assert httpx.post(f"{a.base_url}/api/mlmd_push", json=push_body("Later", 3)).status_code == 200
    peer = next(s for s in httpx.get(f"{b.base_url}/server-list").json() if s["server_name"] == "a")
    now = time.gmtime()
    start = time.strftime("%Y-%m-%dT%H:%M", now)
    created = httpx.post(
        f"{b.base_url}/schedule-sync",
        json={
            "server_id": peer["id"],
            "start_time_local_iso": start,  # passed: runs at once
            "recurrence_mode": "interval",
            "interval_unit": "minutes",
            "interval_value": 1,
        },
    )
    assert created.status_code == 200, created.text
    schedule_id = created.json()["schedule_id"]

    def synced() -> None:
        logs = httpx.get(f"{b.base_url}/schedule-sync/logs/{schedule_id}").json()
        assert [log["status"] for log in logs] == ["success"], logs

    eventually(synced, timeout=15, interval=0.5)
    assert executions(b.base_url, "Later") == 3
    completed = httpx.get(f"{b.base_url}/server/{peer['id']}/completed-logs").json()
    assert completed[0]["sync_type"] == "interval" and completed[0]["schedule_id"] == schedule_id


def test_a_peer_down_fails_with_its_reason_and_a_retry_succeeds(
    servers: tuple[ServerProcess, ...], tmp_path: Path
) -> None:
    _, b = servers
    port = free_port()
    with start_server(tmp_path, port) as c:
        server = {"server_name": "c", "server_url": c.base_url}
        assert (
            httpx.post(f"{b.base_url}/register-server", json=server, timeout=30).status_code == 200
        )
    failed = httpx.post(f"{b.base_url}/sync", json=server, timeout=60)
    assert failed.status_code == 502 and "not reachable" in failed.json()["detail"]
    with start_server(tmp_path, port):
        assert httpx.post(f"{b.base_url}/sync", json=server, timeout=60).status_code == 200
