"""The Python clients against the real servers of ``make services-up``.

Proof, before anything is built on them, that aiokafka holds against the pinned Kafka 4 broker
(idempotent ``acks=all`` produce, a consumer group with manual commits that a restarted member
resumes from), that the neo4j async driver speaks to the pinned Neo4j 5.26, and that redis-py's
asyncio client works against Redis. A server that is not there fails its test (never skips),
naming the server. Every run uses its own topic, group, label and keys.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import neo4j
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cmf_testing import neo4j as shared_neo4j
from cmf_testing.kafka import KAFKA_BOOTSTRAP
from cmf_testing.waiting import Deadline, eventually_async

REDIS_URL = os.environ.get("CMF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

DEADLINE_S = 30.0
PARTITIONS = 3
KEYS = [f"pipeline-{i}" for i in range(8)]
PER_KEY = 25
NODES = 200


def require_tcp(name: str, host: str, port: int) -> None:
    """Fails the test, naming the server, when nothing listens at host:port."""
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"{name} is not reachable at {host}:{port} ({exc}); run `make services-up`")


def _host_port(netloc: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(f"//{netloc}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


# ---------------------------------------------------------------- Kafka


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    """A fresh topic of its own with several partitions, deleted afterwards."""
    require_tcp("Kafka", *_host_port(KAFKA_BOOTSTRAP.split(",")[0], 9092))
    name = f"cmf-test-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


def messages() -> list[tuple[str, str]]:
    """(key, value) pairs, interleaved across keys; a value names its key and its rank."""
    return [(key, f"{key}#{i}") for i in range(PER_KEY) for key in KEYS]


async def produce(topic: str, pairs: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=10_000,
    )
    await producer.start()
    try:
        # Every send is queued before any is awaited, so several batches are in flight at once.
        futures = [await producer.send(topic, key=k.encode(), value=v.encode()) for k, v in pairs]
        for metadata in await asyncio.gather(*futures):
            assert metadata.offset >= 0
    finally:
        await producer.stop()


def group_consumer(topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[Any, Any]]:
    """The next ``count`` records, in each partition's order; fails after the deadline."""
    records: list[ConsumerRecord[Any, Any]] = []
    deadline = Deadline(DEADLINE_S)
    while len(records) < count:
        if deadline.passed():
            pytest.fail(f"Kafka gave {len(records)} of {count} records within {DEADLINE_S:.0f}s")
        batches = await consumer.getmany(timeout_ms=200)
        for partition in sorted(batches, key=lambda tp: tp.partition):
            records.extend(batches[partition])
    return records


def values_by_key(records: list[ConsumerRecord[Any, Any]]) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_key[record.key.decode()].append(record.value.decode())
    return dict(by_key)


def tp_of(topic: str, record: ConsumerRecord[Any, Any]) -> TopicPartition:
    return TopicPartition(topic, record.partition)


async def test_idempotent_acks_all_producer_keeps_per_key_order_for_a_consumer_group(
    topic: str,
) -> None:
    pairs = messages()
    await produce(topic, pairs)

    consumer = group_consumer(topic, f"cmf-test-{uuid.uuid4().hex[:12]}")
    await consumer.start()
    try:
        records = await consume(consumer, len(pairs))
        await consumer.commit()
    finally:
        await consumer.stop()

    assert len(records) == len(pairs), "every message exactly once"
    expected = {key: [f"{key}#{i}" for i in range(PER_KEY)] for key in KEYS}
    assert values_by_key(records) == expected
    assert len({r.partition for r in records}) > 1, "the keys spread over several partitions"


async def test_restarted_group_member_resumes_after_its_committed_offsets(topic: str) -> None:
    group = f"cmf-test-{uuid.uuid4().hex[:12]}"
    pairs = messages()
    await produce(topic, pairs)

    # The first member handles everything but commits only the first half of each partition,
    # as a consumer does that stops before its later handlers' effects were durable.
    first = group_consumer(topic, group)
    await first.start()
    try:
        records = await consume(first, len(pairs))
        by_partition: dict[int, list[ConsumerRecord[Any, Any]]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        committed = {
            TopicPartition(topic, p): rs[len(rs) // 2].offset for p, rs in by_partition.items()
        }
        await first.commit(committed)
        for tp, offset in committed.items():
            assert await first.committed(tp) == offset
    finally:
        await first.stop()
    handled = {(r.partition, r.offset) for r in records if r.offset < committed[tp_of(topic, r)]}
    rest = [r for r in records if (r.partition, r.offset) not in handled]

    # A new member of the same group (after a restart) starts at the committed offsets.
    second = group_consumer(topic, group)
    await second.start()
    try:
        resumed = await consume(second, len(rest))
        extra = await second.getmany(timeout_ms=1_000)
    finally:
        await second.stop()

    assert {(r.partition, r.offset) for r in resumed} == {(r.partition, r.offset) for r in rest}
    assert not handled & {(r.partition, r.offset) for r in resumed}, "nothing committed twice"
    assert not any(extra.values()), "nothing beyond the uncommitted messages"
    assert values_by_key(resumed) == values_by_key(rest), "per-key order holds on resume"


# ---------------------------------------------------------------- Neo4j


@pytest.fixture
async def neo4j_driver() -> AsyncIterator[neo4j.AsyncDriver]:
    parts = urlsplit(shared_neo4j.claim())
    require_tcp("Neo4j", parts.hostname or "127.0.0.1", parts.port or 7687)
    driver = neo4j.AsyncGraphDatabase.driver(shared_neo4j.NEO4J_URI, auth=shared_neo4j.NEO4J_AUTH)
    try:
        await driver.verify_connectivity()
    except neo4j.exceptions.Neo4jError as exc:
        await driver.close()
        pytest.fail(
            f"Neo4j at {shared_neo4j.NEO4J_URI} refused the driver ({exc}); run `make services-up`"
        )
    yield driver
    await driver.close()


@pytest.mark.neo4j
async def test_neo4j_merges_an_unwind_batch_under_a_uniqueness_constraint(
    neo4j_driver: neo4j.AsyncDriver,
) -> None:
    server = await neo4j_driver.get_server_info()
    assert server.agent.startswith("Neo4j/5.26."), server.agent
    # Labels cannot be parameters: this one is built from a uuid, so it is safe to splice in.
    label = f"CmfProbe_{uuid.uuid4().hex[:12]}"
    constraint = f"{label.lower()}_key"
    rows: list[dict[str, Any]] = [{"key": f"k{i}", "value": i} for i in range(NODES)]
    merge = f"UNWIND $rows AS row MERGE (n:{label} {{key: row.key}}) SET n.value = row.value"
    try:
        await neo4j_driver.execute_query(
            f"CREATE CONSTRAINT {constraint} IF NOT EXISTS FOR (n:{label}) REQUIRE n.key IS UNIQUE"
        )
        summary = (await neo4j_driver.execute_query(merge, rows=rows)).summary
        assert summary.counters.nodes_created == len(rows)
        # The same batch again changes values only: MERGE on the unique key is idempotent.
        again = [{**row, "value": row["value"] + 1} for row in rows]
        summary = (await neo4j_driver.execute_query(merge, rows=again)).summary
        assert summary.counters.nodes_created == 0

        records, _, _ = await neo4j_driver.execute_query(
            f"MATCH (n:{label}) RETURN n.key AS key, n.value AS value ORDER BY n.value",
            routing_=neo4j.RoutingControl.READ,
        )
        assert [(r["key"], r["value"]) for r in records] == [(f"k{i}", i + 1) for i in range(NODES)]
        with pytest.raises(neo4j.exceptions.ConstraintError):
            await neo4j_driver.execute_query(f"CREATE (:{label} {{key: 'k0'}})")
    finally:
        await neo4j_driver.execute_query(f"MATCH (n:{label}) DETACH DELETE n")
        await neo4j_driver.execute_query(f"DROP CONSTRAINT {constraint} IF EXISTS")


# ---------------------------------------------------------------- Redis


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    parts = urlsplit(REDIS_URL)
    require_tcp("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    client = aioredis.from_url(REDIS_URL, socket_timeout=5)
    yield client
    await client.aclose()


async def test_redis_sets_gets_and_expires_a_key(redis_client: aioredis.Redis) -> None:
    key = f"cmf-test:{uuid.uuid4().hex}"
    lasting = f"{key}:lasting"
    try:
        assert await redis_client.set(lasting, b"kept", ex=60)
        assert await redis_client.get(lasting) == b"kept"
        assert await redis_client.set(key, b"value", px=300)
        assert await redis_client.get(key) == b"value"
        assert 0 < await redis_client.pttl(key) <= 300

        async def expired() -> None:
            assert await redis_client.get(key) is None, f"Redis did not expire {key}"

        await eventually_async(expired, timeout=DEADLINE_S, interval=0.05)
        assert await redis_client.get(lasting) == b"kept"
    finally:
        await redis_client.delete(key, lasting)
