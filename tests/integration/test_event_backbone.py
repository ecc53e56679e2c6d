"""The event backbone on the real broker: the relay publishes every committed push once, in
order per pipeline; the consumer runner commits only what it handled and dead-letters poison;
stopping Kafka or killing a relay loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from fastapi import FastAPI
from pydantic import SecretStr
from support import free_port, own_kafka

from cmf_common import outbox
from cmf_common.db import create_pool
from cmf_common.dispatch import Dispatcher, Failure, Handler, PermanentError
from cmf_common.events import Envelope
from cmf_common.kafka import KafkaConsumerRunner, KafkaPublisher, dlq_topic
from cmf_common.migrations import migrate
from cmf_common.ports import Message
from cmf_common.relay import OutboxRelay
from cmf_common.relay_worker import RelayState
from cmf_common.service import state_of
from cmf_common.workers import LoopSupervisor
from cmf_lineage.settings import LineageSettings
from cmf_lineage.worker import ProjectorState, create_projector_app
from cmf_metadata.app import MIGRATIONS
from cmf_metadata.push import push
from cmf_metadata.settings import MetadataSettings
from cmf_metadata.worker import create_relay_app
from cmf_testing.databases import run_blocking
from cmf_testing.events import envelope
from cmf_testing.generator import push_body
from cmf_testing.kafka import KAFKA_BOOTSTRAP as BOOTSTRAP
from cmf_testing.kafka import create_topic
from cmf_testing.waiting import Deadline, eventually_async


async def _new_topic(partitions: int = 3) -> str:
    return await create_topic(partitions)


async def read_topic(
    topic: str, expected: int, timeout_s: float = 60, bootstrap: str = BOOTSTRAP
) -> list[Any]:
    """Every record of ``topic`` from the beginning, until ``expected`` arrived or time ran out."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"reader-{uuid.uuid4().hex}",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = Deadline(timeout_s)
        while len(records) < expected and not deadline.passed():
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def metadata_url(make_database_url: Callable[[], str]) -> str:
    return make_database_url()


@pytest.fixture
async def metadata_pool(metadata_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(metadata_url, "metadata", max_size=6)
    await migrate(pool, "metadata", MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
async def publisher() -> AsyncIterator[KafkaPublisher]:
    kafka = KafkaPublisher(BOOTSTRAP)
    try:
        await kafka.start()
    except Exception as exc:
        pytest.fail(f"Kafka is not reachable at {BOOTSTRAP} ({exc}); run `make services-up`")
    yield kafka
    await kafka.stop()


async def push_pipelines(pool: asyncpg.Pool, names: list[str], executions: int = 5) -> None:
    for i, name in enumerate(names):
        body = push_body(name, executions, seed=i)
        await push(pool, pipeline_name=name, json_payload=body["json_payload"], exec_uuid=None)


async def outbox_ids(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return [str(r["id"]) for r in await conn.fetch("SELECT id FROM outbox ORDER BY position")]


def by_pipeline(records: list[Any]) -> dict[str, list[Envelope]]:
    grouped: dict[str, list[Envelope]] = {}
    for record in records:
        event = Envelope.from_json(record.value)
        assert record.key == event.subject.encode()
        grouped.setdefault(event.subject, []).append(event)
    return grouped


async def test_every_committed_push_is_published_once_in_order_per_pipeline(
    metadata_pool: asyncpg.Pool, publisher: KafkaPublisher
) -> None:
    topic = await _new_topic()
    names = [f"relay-{i}" for i in range(6)]
    await push_pipelines(metadata_pool, names)
    with pytest.raises(RuntimeError):  # a push that fails after writing its events
        async with metadata_pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO outbox_sequences VALUES ('ghost', 0)")
            raise RuntimeError("rolled back")
    relay = OutboxRelay(metadata_pool, publisher, topic=topic, batch_rows=7)
    while await relay.relay_once():
        pass
    ids = await outbox_ids(metadata_pool)
    records = await read_topic(topic, len(ids))
    assert sorted(json.loads(r.value)["id"] for r in records) == sorted(ids)
    for name, envelopes in by_pipeline(records).items():
        assert name in names
        assert [e.seq for e in envelopes] == list(range(1, len(envelopes) + 1))
        assert envelopes[0].type == "cmf.metadata.pipeline.upserted.v1"
        assert all(e.source == "cmf-server/metadata" and e.id and e.time for e in envelopes)
    headers = dict(records[0].headers)
    assert headers["ce_id"].decode() == json.loads(records[0].value)["id"]


async def test_the_publisher_keeps_each_key_in_order_across_batches_on_its_partition(
    publisher: KafkaPublisher,
) -> None:
    topic = await _new_topic(partitions=3)
    keys = [f"pipeline-{k}".encode() for k in range(7)]
    # Enough 1 KB records that each partition takes several 1 MB batches, and one record
    # larger than a batch in the middle of a key's run.
    messages = [
        Message(
            topic,
            keys[i % len(keys)],
            json.dumps({"i": i, "pad": "x" * (2_000_000 if i == 1500 else 1000)}).encode(),
            [("ce_seq", str(i).encode())],
        )
        for i in range(4000)
    ]
    await publisher.publish(messages)
    records = await read_topic(topic, len(messages))
    assert len(records) == len(messages)
    partitions = sorted(await publisher.producer.partitions_for(topic))
    seen: dict[bytes, list[int]] = {}
    for record in records:
        # The partition the producer's own partitioner picks for the key, as ``send`` would.
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
        assert dict(record.headers)["ce_seq"] == str(json.loads(record.value)["i"]).encode()
        seen.setdefault(record.key, []).append(json.loads(record.value)["i"])
    for k, key in enumerate(keys):
        assert seen[key] == list(range(k, len(messages), len(keys)))


async def test_pushes_succeed_while_kafka_is_down_and_the_backlog_drains_after(
    metadata_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # A broker of its own: the tests running beside this one use the shared broker.
    with own_kafka(tmp_path) as kafka:
        topic = await create_topic(3, bootstrap=kafka.bootstrap)
        kafka.stop()
        await push_pipelines(metadata_pool, [f"down-{i}" for i in range(4)])
        dead = KafkaPublisher(kafka.bootstrap)
        try:
            with pytest.raises(Exception):  # noqa: B017 - any connection error will do
                await asyncio.wait_for(dead.start(), timeout=5)
        finally:
            await dead.stop()
        kafka.start()
        publisher = KafkaPublisher(kafka.bootstrap)
        await publisher.start()
        try:
            relay = OutboxRelay(metadata_pool, publisher, topic=topic)
            while await relay.relay_once():
                pass
        finally:
            await publisher.stop()
        ids = await outbox_ids(metadata_pool)
        records = await read_topic(topic, len(ids), bootstrap=kafka.bootstrap)
    assert sorted(json.loads(r.value)["id"] for r in records) == sorted(ids)


async def test_a_relay_killed_mid_batch_loses_nothing(
    metadata_pool: asyncpg.Pool, metadata_url: str, tmp_path: Path
) -> None:
    topic = await _new_topic()
    url = metadata_url
    await push_pipelines(metadata_pool, [f"kill-{i}" for i in range(40)], executions=20)
    ids = await outbox_ids(metadata_pool)
    env = {
        **os.environ,
        "METADATA_DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "EVENTS_TOPIC": topic,
        "RELAY_BATCH_ROWS": "5",
    }
    command = [str(Path(sys.executable).parent / "cmf-server"), "worker", "relay"]
    first = subprocess.Popen(
        [*command, "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _wait_until(lambda: _published(metadata_pool_url=url) > 0, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert _published(metadata_pool_url=url) < len(ids), "the kill landed mid-stream"
    log_path = tmp_path / "relay.log"
    with log_path.open("wb") as log:
        second = subprocess.Popen(
            [*command, "--port", str(free_port())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        await _wait_until(lambda: _published(metadata_pool_url=url) == len(ids), 120)
        await _wait_until(lambda: b"startup complete" in log_path.read_bytes(), 60)
    finally:
        second.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once its graceful shutdown is done
        assert second.wait(timeout=60) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log_path.read_text()
    records = await read_topic(topic, len(ids))
    assert set(json.loads(r.value)["id"] for r in records) == set(ids)  # at least once
    for envelopes in by_pipeline(records).values():
        seqs = [e.seq for e in envelopes]
        assert sorted(set(seqs)) == list(range(1, max(seqs) + 1))
        first_seen = list(dict.fromkeys(seqs))
        assert first_seen == sorted(first_seen)


@asynccontextmanager
async def consuming(
    topic: str, group: str, handle: Handler, dead_letters: KafkaPublisher, **options: Any
) -> AsyncIterator[KafkaConsumerRunner]:
    """A consumer runner of ``group`` handing ``t.v1`` events to ``handle``, running while open;
    on exit it finishes and commits the batch in hand, then stops."""
    runner = KafkaConsumerRunner(
        bootstrap_servers=BOOTSTRAP,
        topic=topic,
        group_id=group,
        dispatcher=Dispatcher("test", {"t.v1": handle}),
        dead_letters=dead_letters,
        **options,
    )
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await task
        await runner.stop()


async def test_poison_goes_to_the_dead_letter_topic_and_later_events_are_handled(
    publisher: KafkaPublisher,
) -> None:
    topic = await _new_topic(partitions=1)
    good = [envelope(i, data={"ok": i != 2}, id=str(uuid.uuid4())) for i in range(1, 5)]
    await publisher.publish(
        [Message(topic, b"p", e.to_json()) for e in good[:2]]
        + [Message(topic, b"p", b"{not an envelope")]
        + [Message(topic, b"p", e.to_json()) for e in good[2:]]
    )
    handled: list[int] = []

    async def handle(events: list[Envelope]) -> None:
        if any(not e.data["ok"] for e in events):
            raise PermanentError("refused")
        handled.extend(e.seq for e in events)

    async with consuming(topic, f"g-{uuid.uuid4().hex}", handle, publisher):
        await _wait_until(lambda: handled == [1, 3, 4], 60)
    dead = await read_topic(dlq_topic(topic), 2)
    assert len(dead) == 2
    errors = sorted(dict(r.headers)["dlq_error"].decode() for r in dead)
    assert errors[0].startswith("PermanentError") and errors[1].startswith("undecodable")
    assert all(dict(r.headers)["dlq_origin"].decode().startswith(f"{topic}/0/") for r in dead)


async def test_a_restarted_consumer_resumes_after_its_committed_offset(
    publisher: KafkaPublisher,
) -> None:
    topic = await _new_topic(partitions=1)
    group = f"g-{uuid.uuid4().hex}"
    seen: list[int] = []

    async def handle(events: list[Envelope]) -> None:
        seen.extend(e.seq for e in events)

    async def consume_until(count: int) -> None:
        async with consuming(topic, group, handle, publisher):
            await _wait_until(lambda: len(seen) >= count, 60)

    def batch(seqs: range) -> list[Message]:
        return [Message(topic, b"p", envelope(s, id=str(uuid.uuid4())).to_json()) for s in seqs]

    await publisher.publish(batch(range(1, 4)))
    await consume_until(3)
    await publisher.publish(batch(range(4, 6)))
    await consume_until(5)
    assert seen == [1, 2, 3, 4, 5]


async def test_the_consumer_runner_runs_its_housekeeping(
    publisher: KafkaPublisher,
) -> None:
    topic = await _new_topic(partitions=1)
    order: list[str] = []

    async def handle(events: list[Envelope]) -> None:
        order.extend("handled" for _ in events)

    async def forget_applied() -> None:
        order.append("pruned")

    group = f"g-{uuid.uuid4().hex}"
    async with consuming(topic, group, handle, publisher, housekeeping=forget_applied):
        await _wait_until(lambda: order == ["pruned"], 60)  # once, on its first round


def _published(*, metadata_pool_url: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(metadata_pool_url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT coalesce(sum(published_seq), 0) FROM metadata.outbox_published"
                )
            )
        finally:
            await conn.close()

    return run_blocking(count())


async def _wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    async def check() -> None:
        assert condition(), f"condition not met within {timeout_s} s"

    await eventually_async(check, timeout=timeout_s, interval=0.1)


# ---- the workers' liveness under the loops' failure policy --------------------------------------


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` started (its lifespan running) with a client on its routes."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client,
    ):
        yield client


async def assert_faulted(client: httpx.AsyncClient, loop: LoopSupervisor, timeout_s: float) -> None:
    """Once ``loop`` (retrying quickly) has faulted, its worker's /livez and /readyz say so."""
    loop.backoff_s = loop.backoff_max_s = 0.05
    await _wait_until(lambda: bool(loop.faults), timeout_s)
    live = await client.get("/livez")
    assert live.status_code == 503 and "TypeError" in live.json()["detail"]
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["loop"]["status"] == "down"


def relay_app(metadata_url: str, topic: str) -> FastAPI:
    return create_relay_app(
        MetadataSettings(
            database_url=SecretStr(metadata_url),
            kafka_bootstrap_servers=BOOTSTRAP,
            events_topic=topic,
        )
    )


async def test_the_relay_worker_is_not_live_while_a_bug_fails_its_rounds(
    metadata_url: str, metadata_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = await _new_topic()
    await push_pipelines(metadata_pool, ["faulty-relay"])

    async def broken(*_: object, **__: object) -> None:
        raise TypeError("claim_unpublished() got an unexpected keyword argument 'rows'")

    monkeypatch.setattr(outbox, "claim_unpublished", broken)
    app = relay_app(metadata_url, topic)
    async with running(app) as client:
        relay = state_of(app, RelayState).relay
        await assert_faulted(client, relay.loop, 30)
        monkeypatch.undo()
        await _wait_until(lambda: not relay.loop.faults, 30)
        assert (await client.get("/livez")).status_code == 200
        ids = await outbox_ids(metadata_pool)
        assert len(await read_topic(topic, len(ids))) == len(ids)


async def test_the_relay_worker_stays_live_while_it_retries_a_lost_database(
    metadata_url: str, metadata_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = await _new_topic()
    await push_pipelines(metadata_pool, ["flaky-relay"])
    real_claim = outbox.claim_unpublished
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(outbox, "claim_unpublished", flaky)
    app = relay_app(metadata_url, topic)
    async with running(app) as client:
        relay = state_of(app, RelayState).relay
        relay.loop.backoff_s = relay.loop.backoff_max_s = 0.05
        await _wait_until(lambda: calls > 2, 30)
        assert (await client.get("/livez")).status_code == 200
        ids = await outbox_ids(metadata_pool)
        assert len(await read_topic(topic, len(ids))) == len(ids)
        assert not relay.loop.faults


async def test_the_lineage_worker_is_not_live_while_a_bug_fails_its_rounds(
    metadata_url: str,
    metadata_pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    make_database_url: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = await _new_topic(partitions=1)
    await push_pipelines(metadata_pool, ["faulty-projector"])
    relay = OutboxRelay(metadata_pool, publisher, topic=topic)
    while await relay.relay_once():
        pass
    async with metadata_pool.acquire() as conn:
        last_seq = await conn.fetchval("SELECT max(seq) FROM outbox")

    async def broken(*_: object, **__: object) -> list[Failure]:
        raise TypeError("dispatch() missing 1 required positional argument")

    monkeypatch.setattr(Dispatcher, "dispatch", broken)
    group = f"g-{uuid.uuid4().hex}"
    app = create_projector_app(
        LineageSettings(
            database_url=SecretStr(make_database_url()),
            kafka_bootstrap_servers=BOOTSTRAP,
            events_topic=topic,
            lineage_consumer_group=group,
            neo4j_uri=None,
            redis_url=None,
        )
    )
    async with running(app) as client:
        projector = state_of(app, ProjectorState)
        runner = projector.runner
        await assert_faulted(client, runner.loop, 60)
        monkeypatch.undo()
        await _wait_until(lambda: not runner.loop.faults, 60)
        assert (await client.get("/livez")).status_code == 200
        # The records of the failed rounds were fetched again, not skipped.
        store = projector.graph.store

        async def caught_up() -> None:
            assert await store.applied_seq(group, "faulty-projector") == last_seq

        await eventually_async(caught_up, timeout=60)
