"""The distributed stack end to end: the real cmf client pushes to `cmf-server up`, the relay
carries events through Kafka, and two lineage projectors build the graph in Neo4j and in
PostgreSQL. Faults (a projector killed mid-push, Neo4j stopped, a replay of the whole topic, a
malformed event) each end with `cmf-server lineage verify` clean: nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from cmf_client import make_cmf_client
from support import (
    KAFKA_BOOTSTRAP,
    ServerProcess,
    drop_database,
    free_port,
    neo4j_env,
    new_database,
    new_topic,
    services_up,
    start_server,
    start_worker,
)

from cmf_common.kafka import KafkaPublisher
from cmf_common.ports import Message
from cmf_testing import neo4j as shared_neo4j
from cmf_testing.databases import run_blocking
from cmf_testing.generator import push_body
from cmf_testing.waiting import eventually

pytestmark = pytest.mark.neo4j

CMF_SERVER = Path(sys.executable).parent / "cmf-server"


@dataclass
class Stack:
    tmp: Path
    topic: str
    metadata_db: str
    lineage_db: str
    server: ServerProcess
    common: dict[str, str]
    neo4j_env: dict[str, str]
    postgres_env: dict[str, str]
    workers: dict[str, ServerProcess] = field(default_factory=dict)

    def start(self, name: str, kind: str, env: dict[str, str]) -> None:
        folder = self.tmp / name
        folder.mkdir(exist_ok=True)
        self.workers[name] = start_worker(kind, folder, {**self.common, **env})

    def verify(self, store_env: dict[str, str]) -> None:
        done = subprocess.run(
            [str(CMF_SERVER), "lineage", "verify", "--metadata-url", self.server.base_url],
            env={**_without_database_urls(), **self.common, **store_env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"lineage verify:\n{done.stdout}\n{done.stderr}"

    def verify_both(self, timeout: float = 120) -> None:
        eventually(lambda: self.verify(self.neo4j_env), timeout=timeout, interval=1.0)
        eventually(lambda: self.verify(self.postgres_env), timeout=timeout, interval=1.0)

    def push(self, name: str, executions: int, seed: int = 0) -> None:
        answer = httpx.post(
            f"{self.server.base_url}/api/mlmd_push",
            json=push_body(name, executions, seed=seed),
            timeout=300,
        )
        assert answer.json() == {"status": "success"}, answer.text


def _without_database_urls() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k != "DATABASE_URL" and not k.endswith("_DATABASE_URL")
    }


def _clear_neo4j() -> None:
    from neo4j import AsyncGraphDatabase

    from cmf_lineage.store.neo4j import Neo4jGraphStore

    async def clear() -> None:
        driver = AsyncGraphDatabase.driver(shared_neo4j.claim(), auth=shared_neo4j.NEO4J_AUTH)
        try:
            await Neo4jGraphStore(driver).delete_everything()
        except Exception as exc:
            raise AssertionError(f"Neo4j is not reachable ({exc}); run `make services-up`") from exc
        finally:
            await driver.close()

    run_blocking(clear())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    topic = new_topic(partitions=6)
    metadata_db, lineage_db = new_database(), new_database()
    _clear_neo4j()
    common = {"KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP, "EVENTS_TOPIC": topic}
    group = uuid.uuid4().hex[:8]
    server = start_server(tmp, free_port(), {**common, "DATABASE_URL": metadata_db})
    stack = Stack(
        tmp,
        topic,
        metadata_db,
        lineage_db,
        server,
        common,
        neo4j_env={**neo4j_env(), "LINEAGE_CONSUMER_GROUP": f"neo4j-{group}"},
        postgres_env={
            "LINEAGE_DATABASE_URL": lineage_db,
            "LINEAGE_CONSUMER_GROUP": f"postgres-{group}",
        },
    )
    try:
        stack.start("relay", "relay", {"METADATA_DATABASE_URL": metadata_db})
        stack.start("neo4j", "lineage", stack.neo4j_env)
        stack.start("postgres", "lineage", stack.postgres_env)
        yield stack
    finally:
        for worker in stack.workers.values():
            worker.stop()
        server.stop()
        drop_database(metadata_db)
        drop_database(lineage_db)


def test_the_real_clients_push_reaches_both_graphs(stack: Stack) -> None:
    client = make_cmf_client(stack.tmp / "client")
    folder = stack.tmp / "client" / "workspace"
    client.init(folder, stack.server.base_url)
    logged = client.script("pipeline.py", "--pipeline", "Stack-Client", cwd=folder)
    output = client.cmf("metadata", "push", "-p", "Stack-Client", cwd=folder)
    assert "successfully pushed" in output, output
    stack.verify_both()
    graph = _postgres_graph(stack.lineage_db)
    assert set(logged["executions"].values()) <= graph["executions"]


def test_a_projector_killed_in_the_middle_of_a_large_push_recovers(stack: Stack) -> None:
    stack.push("Stack-Large", 3000)
    postgres = stack.workers["postgres"]
    eventually(lambda: _projected_some(stack.lineage_db, "Stack-Large"), timeout=60, interval=0.05)
    os.kill(postgres.process.pid, signal.SIGKILL)
    postgres.process.wait(timeout=30)
    stack.start("postgres", "lineage", stack.postgres_env)
    stack.verify_both()


def test_neo4j_stopped_while_events_flow_catches_up_when_it_returns(stack: Stack) -> None:
    neo4j_pid = _pid_of("cmf-server-services/neo4j") or pytest.fail(
        "Neo4j is not running; make services-up"
    )
    os.kill(neo4j_pid, signal.SIGTERM)
    try:
        psutil.Process(neo4j_pid).wait(timeout=90)
        for i in range(5):
            stack.push(f"Stack-Outage-{i}", 20, seed=i)
    finally:
        services_up()
    stack.verify_both(timeout=180)


def test_replaying_the_whole_topic_changes_nothing(stack: Stack) -> None:
    replay_env = {**stack.postgres_env, "LINEAGE_CONSUMER_GROUP": f"replay-{uuid.uuid4().hex[:6]}"}
    stack.start("replay", "lineage", replay_env)
    try:
        eventually(
            lambda: _consumer_done(
                stack.lineage_db,
                replay_env["LINEAGE_CONSUMER_GROUP"],
                stack.postgres_env["LINEAGE_CONSUMER_GROUP"],
            ),
            timeout=180,
            interval=1.0,
        )
    finally:
        stack.workers.pop("replay").stop()
    stack.verify_both()


def test_a_malformed_event_is_dead_lettered_and_later_ones_still_apply(stack: Stack) -> None:
    async def publish() -> None:
        kafka = KafkaPublisher(KAFKA_BOOTSTRAP)
        await kafka.start()
        try:
            bad = {
                "id": str(uuid.uuid4()),
                "type": "cmf.metadata.execution.merged.v1",
                "source": "test",
                "subject": "Stack-Poison",
                "time": "2026-11-26T00:00:00",
                "seq": 1,
                "data": {"executions": "not a list"},
            }
            await kafka.publish(
                [
                    Message(stack.topic, b"Stack-Poison", json.dumps(bad).encode()),
                    Message(stack.topic, b"Stack-Poison", b"{garbage"),
                ]
            )
        finally:
            await kafka.stop()

    run_blocking(publish())
    stack.push("Stack-After-Poison", 10)
    stack.verify_both()
    dead = _dead_letters(stack.topic)
    groups = {dict(r.headers)["dlq_group"].decode() for r in dead}
    assert {
        stack.neo4j_env["LINEAGE_CONSUMER_GROUP"],
        stack.postgres_env["LINEAGE_CONSUMER_GROUP"],
    } <= groups


# ---- looking into the stores --------------------------------------------------------------------


def _query(url: str, sql: str, *args: Any) -> Any:
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return run_blocking(run())


def _postgres_graph(url: str) -> dict[str, set[str]]:
    rows = _query(url, "SELECT uuid FROM lineage.executions")
    return {"executions": {r["uuid"] for r in rows}}


def _projected_some(url: str, pipeline: str) -> None:
    rows = _query(url, "SELECT count(*) AS n FROM lineage.executions WHERE pipeline = $1", pipeline)
    assert rows[0]["n"] > 0


def _consumer_done(url: str, replay: str, live: str) -> None:
    rows = _query(url, "SELECT consumer, subject, seq FROM lineage.consumer_progress")
    progress: dict[str, dict[str, int]] = {}
    for row in rows:
        progress.setdefault(row["consumer"], {})[row["subject"]] = row["seq"]
    assert progress.get(replay) == progress.get(live), "the replay has not caught up yet"


def _pid_of(marker: str) -> int | None:
    for proc in psutil.process_iter(attrs=["cmdline"]):
        if (
            marker in " ".join(proc.info["cmdline"] or [])
            and "java" in (proc.info["cmdline"] or [""])[0]
        ):
            return int(proc.pid)
    return None


def _dead_letters(topic: str) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            f"{topic}.dlq",
            bootstrap_servers=KAFKA_BOOTSTRAP,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=f"reader-{uuid.uuid4().hex}",
        )
        await consumer.start()
        try:
            records: list[Any] = []
            for _ in range(20):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
                if len(records) >= 4:
                    break
            return records
        finally:
            await consumer.stop()

    return run_blocking(read())
