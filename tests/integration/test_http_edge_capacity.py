"""The connection cap of a real ``cmf-server up`` sheds idle connections first: 1,000 idle
connections do not shut out a push (issue 12 item 5)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from raw_http import Connection
from support import ServerProcess, server_on_new_database

from cmf_testing.generator import push_body_bytes

CAP = 1000


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "HTTP_MAX_CONNECTIONS": str(CAP),
        "HTTP_KEEP_ALIVE_TIMEOUT_S": "120",  # idle connections stay until shed
        "LOG_LEVEL": "WARNING",
    }
    with server_on_new_database(tmp_path_factory.mktemp("cap"), env) as process:
        yield process


def test_a_thousand_idle_connections_do_not_shut_out_a_push(server: ServerProcess) -> None:
    idle: list[socket.socket] = []
    try:
        for _ in range(CAP):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
        # One that has been served and now idles, among them.
        with Connection(server.port) as served:
            assert served.request("GET", "/livez").status == 200
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                pushed = client.post("/api/mlmd_push", content=push_body_bytes("capped", 2))
                assert pushed.status_code == 200, pushed.text
                assert pushed.json()["status"] == "success"
                assert client.get("/api/pipelines").status_code == 200
        # The oldest idle connection made room.
        assert idle[0].recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
