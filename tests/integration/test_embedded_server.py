"""`cmf-server up` on its private PostgreSQL: start, stop, restart and a kill -9."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from support import free_port, start_server

from cmf_testing.fixtures import cmf_fixture
from cmf_testing.postgres import postgres_pids


def _push_fixture(base_url: str) -> httpx.Response:
    body = cmf_fixture("push_example.json")
    return httpx.post(f"{base_url}/api/mlmd_push", json=body, timeout=60)


def test_data_survives_a_clean_restart_and_postgres_stops_with_the_server(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = start_server(tmp_path, port)
    pgdata = server.data_dir / "postgres"
    try:
        assert _push_fixture(server.base_url).json() == {"status": "success"}
        assert f"http://127.0.0.1:{port}" in server.stderr()
        assert str(pgdata) in server.stderr()
    finally:
        assert server.stop() == 0
    assert not postgres_pids(pgdata)

    with start_server(tmp_path, port) as again:
        assert _push_fixture(again.base_url).json() == {"status": "exists"}


def test_a_killed_server_leaves_postgres_that_the_next_start_reuses(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path, port)
    pgdata = server.data_dir / "postgres"
    assert _push_fixture(server.base_url).json() == {"status": "success"}
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    left_running = postgres_pids(pgdata)
    assert left_running, "PostgreSQL outlives a kill -9 of its server"

    with start_server(tmp_path, port) as again:
        assert _push_fixture(again.base_url).json() == {"status": "exists"}
        assert postgres_pids(pgdata) == left_running
    assert not postgres_pids(pgdata), "the restarted server stops the reused PostgreSQL"


def test_a_ui_on_a_localhost_dev_server_may_call_it_by_default(running_server: str) -> None:
    """The default CORS origins: the server's own and the localhost dev servers, no others."""
    preflight = {"Access-Control-Request-Method": "GET"}
    allowed = httpx.options(
        f"{running_server}/api/pipelines",
        headers={"Origin": "http://localhost:5173", **preflight},
        timeout=30,
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    refused = httpx.options(
        f"{running_server}/api/pipelines",
        headers={"Origin": "http://elsewhere.example", **preflight},
        timeout=30,
    )
    assert refused.status_code == 400
    answer = httpx.get(
        f"{running_server}/api/pipelines", headers={"Origin": "http://localhost:5173"}, timeout=30
    )
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
