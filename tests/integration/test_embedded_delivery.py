"""The embedded server's in-process event delivery survives a kill -9: every acknowledged push
reaches the lineage graph after a restart, and nothing is applied twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from support import free_port, start_server

from cmf_common import outbox
from cmf_gateway.app import Gateway
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.settings import LineageSettings
from cmf_metadata.settings import MetadataSettings
from cmf_server.embedded import embedded_server
from cmf_testing.generator import push_body
from cmf_testing.waiting import eventually, eventually_async


def _socket_dir(data_dir: Path) -> str:
    """The embedded PostgreSQL listens on a unix socket; postmaster.pid names its folder."""
    lines = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    return lines[4].strip()


async def _query(data_dir: Path, sql: str) -> Any:
    conn = await asyncpg.connect(host=_socket_dir(data_dir), user="postgres", database="postgres")
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def query(data_dir: Path, sql: str) -> Any:
    return asyncio.run(_query(data_dir, sql))


def test_a_killed_embedded_server_delivers_everything_after_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def keep_pushing() -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for i in range(200):
                if stop.is_set():
                    return
                name = f"killed-{i}"
                try:
                    answer = client.post("/api/mlmd_push", json=push_body(name, 20, seed=i))
                except httpx.TransportError:
                    return  # the server died mid-request: this push was never acknowledged
                if answer.status_code == 200 and answer.json()["status"] == "success":
                    acknowledged.append(name)

    pusher = threading.Thread(target=keep_pushing)
    pusher.start()
    eventually(lambda: _at_least(acknowledged, 5), timeout=60)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    stop.set()
    pusher.join(timeout=60)
    assert acknowledged, "some pushes were acknowledged before the kill"

    with start_server(tmp_path, port) as again:

        def all_delivered() -> None:
            left = query(
                again.data_dir, "SELECT count(*) FROM metadata.outbox WHERE processed_at IS NULL"
            )
            assert left == 0, f"{left} outbox rows still to deliver"

        eventually(all_delivered, timeout=120, interval=0.5)
        projected = query(
            again.data_dir, "SELECT json_agg(DISTINCT pipeline) FROM lineage.executions"
        )
        assert set(acknowledged) <= set(json.loads(projected))
        stored = query(again.data_dir, "SELECT count(*) FROM metadata.executions")
        assert query(again.data_dir, "SELECT count(*) FROM lineage.executions") == stored
        outbox_rows = query(again.data_dir, "SELECT count(*) FROM metadata.outbox")
        applied = query(again.data_dir, "SELECT count(*) FROM lineage.consumer_inbox")
        assert applied == outbox_rows, "every event applied exactly once"
        errors = query(
            again.data_dir, "SELECT count(*) FROM metadata.outbox WHERE delivery_error IS NOT NULL"
        )
        assert errors == 0


def _at_least(items: list[str], count: int) -> None:
    assert len(items) >= count, f"{len(items)} acknowledged so far"


def embedded_gateway(database_url: str) -> Gateway:
    """The embedded server's composition, in this process (as ``cmf-server up`` without Kafka)."""
    url = SecretStr(database_url)
    return embedded_server(
        GatewaySettings(kafka_bootstrap_servers=None),
        MetadataSettings(database_url=url),
        LineageSettings(database_url=url, neo4j_uri=None, redis_url=None),
    )


async def test_the_embedded_server_is_not_live_while_a_bug_fails_its_delivery(
    make_database_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise TypeError("mark_processed() takes 2 positional arguments but 3 were given")

    monkeypatch.setattr(outbox, "mark_processed", broken)
    database_url = make_database_url()
    gateway = embedded_gateway(database_url)
    transport = httpx.ASGITransport(app=gateway)
    async with (
        gateway.own.router.lifespan_context(gateway.own),
        httpx.AsyncClient(transport=transport, base_url="http://cmf") as client,
    ):
        assert (await client.get("/health/loops")).json()["status"] == "ok"
        pushed = await client.post("/api/mlmd_push", json=push_body("faulty-delivery", 3))
        assert pushed.json()["status"] == "success"

        async def not_live() -> None:
            live = await client.get("/livez")
            assert live.status_code == 503 and "TypeError" in live.json()["detail"]

        await eventually_async(not_live, timeout=30)
        health = await client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert health.json()["checks"]["loops"]["status"] == "down"
        monkeypatch.undo()

        async def live_and_delivered() -> None:
            assert (await client.get("/livez")).status_code == 200
            conn = await asyncpg.connect(database_url)
            try:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM metadata.outbox WHERE processed_at IS NULL"
                )
            finally:
                await conn.close()
            assert waiting == 0

        # The delivery backs off 0.5 s, doubling, between the failed rounds.
        await eventually_async(live_and_delivered, timeout=60)
