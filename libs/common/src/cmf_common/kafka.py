"""The Kafka adapters: the relay's Publisher and the consumer runner every consumer uses.

The runner consumes in a group with manual commits: a partition's offset is committed only
after the dispatcher returned for its batch, i.e. after the handlers' effects committed. A
message its handler keeps refusing (or that is not an envelope at all) goes to the dead-letter
topic ``<topic>.dlq`` with the original key and value and the error, attempts and origin in its
headers; then the partition moves on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from prometheus_client import Counter, Gauge

from cmf_common.dispatch import Dispatcher, Failure
from cmf_common.events import Envelope
from cmf_common.metrics import DLQ_DEPTH
from cmf_common.ports import Message
from cmf_common.workers import GaugeReading, Housekeeping, LoopSupervisor

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
_PARTITIONER = DefaultPartitioner()

CONSUMER_LAG = Gauge(
    "cmf_consumer_lag", "Messages not yet consumed, per partition.", ["group", "topic", "partition"]
)
CONSUMER_LAG_SECONDS = Gauge(
    "cmf_consumer_lag_seconds",
    "How far behind the log a partition's consumer is, in time: the age of the last record it"
    " handled while records wait (0 when caught up).",
    ["group", "topic", "partition"],
)
CONSUMED = Counter(
    "cmf_consumer_messages_total", "Messages consumed and committed.", ["group", "topic"]
)
DLQ_PUBLISHED = Counter(
    "cmf_consumer_dlq_total", "Messages sent to the dead-letter topic.", ["group", "topic"]
)


# How often the dead-letter topic's depth is read (two offset requests).
DLQ_GAUGE_EVERY_S = 15.0


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class KafkaPublisher:
    """An idempotent, ``acks=all`` producer: ``publish`` returns once every message is in the
    log of all in-sync replicas; per-key order holds across retries."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "cmf-relay") -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, messages: list[Message]) -> None:
        """Group the messages by partition, in order, and hand each group to the producer as
        whole record batches: one ``send`` per record spent most of the relay's CPU in the
        producer's per-record path (partitioning, accumulator lookups, a future each)."""
        groups: dict[tuple[str, int], list[Message]] = {}
        # Each key's partition, as the producer's own partitioner would pick it, once per key
        # and publish (keys are pipelines: few, and each repeats across the messages).
        partitions: dict[str, list[int]] = {}
        partition_of: dict[tuple[str, bytes], int] = {}
        for message in messages:
            route = (message.topic, message.key)
            partition = partition_of.get(route)
            if partition is None:
                if message.topic not in partitions:
                    found = await self.producer.partitions_for(message.topic)
                    partitions[message.topic] = sorted(found)
                topic_partitions = partitions[message.topic]
                partition = partition_of[route] = _PARTITIONER(
                    message.key, topic_partitions, topic_partitions
                )
            groups.setdefault((message.topic, partition), []).append(message)
        acks = await asyncio.gather(
            *(self._send_partition(topic, p, group) for (topic, p), group in groups.items())
        )
        await asyncio.gather(*(ack for partition_acks in acks for ack in partition_acks))

    async def _send_partition(
        self, topic: str, partition: int, messages: list[Message]
    ) -> list[asyncio.Future[Any]]:
        """Queue ``messages`` for one partition as consecutive batches; returns their acks. The
        producer queues one batch per partition at a time, so order within it is kept."""
        acks: list[asyncio.Future[Any]] = []
        batch = self.producer.create_batch()
        for message in messages:
            if self._append(batch, message):
                continue
            acks.append(await self.producer.send_batch(batch, topic, partition=partition))
            batch = self.producer.create_batch()
            # An empty batch always takes its first record, however large; one over the
            # broker's limit is refused there and fails this publish, as ``send`` would.
            if not self._append(batch, message):
                raise RuntimeError("an empty record batch refused a record")
        acks.append(await self.producer.send_batch(batch, topic, partition=partition))
        return acks

    @staticmethod
    def _append(batch: BatchBuilder, message: Message) -> bool:
        return (
            batch.append(
                timestamp=None, key=message.key, value=message.value, headers=message.headers
            )
            is not None
        )


class KafkaConsumerRunner:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        dispatcher: Dispatcher,
        also_topics: Sequence[str] = (),
        dead_letters: KafkaPublisher,
        max_records: int = 500,
        poll_timeout_ms: int = 500,
        housekeeping: Callable[[], Awaitable[object]] | None = None,
        housekeeping_every_s: float = 300.0,
        stall_after_s: float = 60.0,
    ) -> None:
        """``housekeeping`` is the consumer's own (its inbox's retention), run after a round at
        most every ``housekeeping_every_s``. ``also_topics`` are consumed in the same group
        (another service's events for the same handlers); a record's dead letter goes to its
        own topic's ``.dlq``."""
        self.topic = topic
        self.topics = (topic, *also_topics)
        self.group_id = group_id
        self.dispatcher = dispatcher
        self.dead_letters = dead_letters
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.loop = LoopSupervisor(f"consumer:{group_id}", stall_after_s=stall_after_s)
        self.housekeeping = (
            Housekeeping(self.loop, housekeeping, housekeeping_every_s)
            if housekeeping is not None
            else None
        )
        self.positions: dict[TopicPartition, int] = {}
        # The producer time (ms) of the last record handled, per partition.
        self.handled_at: dict[TopicPartition, int] = {}
        self.gauges = GaugeReading(self.loop, "dlq depth", self.record_dlq_depth, DLQ_GAUGE_EVERY_S)
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished and committed first.
        Rounds run under the loops' failure policy (``workers``)."""
        async with self.loop.running():
            while not stop.is_set():
                await self.loop.round(self.consume_once, stop)
                if self.housekeeping is not None:
                    await self.housekeeping.run_if_due()
                await self.gauges.run_if_due()

    async def consume_once(self) -> int:
        """Fetch, handle and commit one batch per partition. When a round fails, each partition
        it had not committed is rewound to its batch's first record, so the next round fetches
        those records again instead of moving past them (handlers skip what they applied)."""
        batches = await self.consumer.getmany(
            timeout_ms=self.poll_timeout_ms, max_records=self.max_records
        )
        committed: set[TopicPartition] = set()
        try:
            for partition, records in batches.items():
                await self.handle_batch(partition, records)
                committed.add(partition)
        except Exception:
            for partition, records in batches.items():
                if partition not in committed:
                    # A partition revoked meanwhile resumes at its committed offset elsewhere.
                    with suppress(IllegalStateError):
                        self.consumer.seek(partition, records[0].offset)
            raise
        self._record_lag(batches.keys() or self.consumer.assignment())
        return sum(len(records) for records in batches.values())

    async def handle_batch(
        self, partition: TopicPartition, records: list[ConsumerRecord[Any, Any]]
    ) -> None:
        envelopes: list[tuple[Envelope, ConsumerRecord[Any, Any]]] = []
        failures: list[tuple[ConsumerRecord[Any, Any], str, int]] = []
        for record in records:
            try:
                envelope = Envelope.from_json(record.value)
            except Exception as exc:  # not an envelope: nothing could ever handle it
                failures.append((record, f"undecodable: {type(exc).__name__}: {exc}", 1))
                continue
            # The record's header carries the publish span's context, a child of the one the
            # envelope was written with: the consumer's span continues from the publish.
            traceparent = _header(record, "traceparent")
            if traceparent and traceparent != envelope.traceparent:
                envelope = replace(envelope, traceparent=traceparent)
            envelopes.append((envelope, record))
        by_id = {e.id: r for e, r in envelopes}
        dead: list[Failure] = await self.dispatcher.dispatch(
            [e for e, _ in envelopes], alive=self.loop.beat
        )
        failures.extend((by_id[f.envelope.id], f.error, f.attempts) for f in dead)
        if failures:
            await self.dead_letters.publish(
                [self._dead_letter(r, error, attempts) for r, error, attempts in failures]
            )
            DLQ_PUBLISHED.labels(self.group_id, partition.topic).inc(len(failures))
        await self.consumer.commit({partition: records[-1].offset + 1})
        self.positions[partition] = records[-1].offset + 1
        self.handled_at[partition] = records[-1].timestamp
        CONSUMED.labels(self.group_id, partition.topic).inc(len(records))

    def _dead_letter(self, record: ConsumerRecord[Any, Any], error: str, attempts: int) -> Message:
        headers = [(k, bytes(v)) for k, v in record.headers or ()]
        headers += [
            ("dlq_error", error.encode()[:4096]),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_origin", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ("dlq_group", self.group_id.encode()),
            ("dlq_time", str(time.time()).encode()),
        ]
        return Message(dlq_topic(record.topic), record.key or b"", record.value or b"", headers)

    def _record_lag(self, partitions: Iterable[TopicPartition]) -> None:
        for partition in partitions:
            highwater = self.consumer.highwater(partition)
            position = self.positions.get(partition)
            if highwater is not None and position is not None:
                labels = (self.group_id, partition.topic, str(partition.partition))
                behind = max(0, highwater - position)
                CONSUMER_LAG.labels(*labels).set(behind)
                handled_at = self.handled_at.get(partition)
                age = time.time() - handled_at / 1000 if behind and handled_at else 0.0
                CONSUMER_LAG_SECONDS.labels(*labels).set(max(0.0, age))

    async def record_dlq_depth(self) -> None:
        """``cmf_dlq_depth`` of each consumed topic's ``<topic>.dlq``: the messages its
        partitions keep."""
        for consumed in self.topics:
            topic = dlq_topic(consumed)
            found = await self.dead_letters.producer.partitions_for(topic)
            partitions = [TopicPartition(topic, p) for p in sorted(found or ())]
            if not partitions:
                DLQ_DEPTH.labels(topic).set(0)
                continue
            ends = await self.consumer.end_offsets(partitions)
            starts = await self.consumer.beginning_offsets(partitions)
            DLQ_DEPTH.labels(topic).set(sum(ends[p] - starts[p] for p in partitions))
