"""The outbox relay: publishes committed outbox rows to the event bus, at least once, in order
per subject (pipeline), and raises the subject's published mark only after the bus
acknowledged every row up to it (one small row per subject, not a write per event).

Several relays may run against one database: a relay holds each subject it is sending with a
transaction-scoped advisory lock, so rows of one pipeline are never in flight twice at once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter, Histogram

from cmf_common import outbox
from cmf_common.metrics import record_backlog
from cmf_common.ports import Message, Publisher
from cmf_common.tracing import publish_spans
from cmf_common.workers import (
    GaugeReading,
    Housekeeping,
    LoopSupervisor,
    notifications,
    wait_for,
)

log = structlog.get_logger(__name__)

PUBLISHED = Counter("cmf_relay_published_total", "Outbox rows published to the bus.")
PUBLISH_FAILURES = Counter(
    "cmf_relay_publish_failures_total", "Relay rounds that failed and were rolled back."
)
COMMIT_TO_PUBLISH = Histogram(
    "cmf_relay_commit_to_publish_seconds",
    "From an event's outbox time to its publication.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
# How often the backlog gauges are read (each a few index lookups).
GAUGES_EVERY_S = 5.0


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        topic: str,
        batch_rows: int = 5000,
        subjects_per_round: int = 500,
        retention: timedelta = timedelta(days=7),
        idle_poll_s: float = 5.0,
        maintenance_every_s: float = 30.0,
        stall_after_s: float = 60.0,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.topic = topic
        self.batch_rows = batch_rows
        self.subjects_per_round = subjects_per_round
        self.retention = retention
        self.idle_poll_s = idle_poll_s
        self.maintenance_every_s = maintenance_every_s
        self.loop = LoopSupervisor("relay", stall_after_s=stall_after_s)

    async def relay_once(self) -> int:
        """Publish one round of rows. Returns how many sequence numbers the round moved past:
        the rows published, and any a pipeline lost to retention before a relay ever saw them
        (0: nothing waits). A failure leaves every row of the round unpublished."""
        async with self.pool.acquire() as conn, conn.transaction():
            claim = await outbox.claim_unpublished(
                conn, subjects=self.subjects_per_round, rows=self.batch_rows
            )
            if not claim.upto:
                return 0
            if claim.rows:
                with publish_spans(self.topic, [r["traceparent"] for r in claim.rows]) as carried:
                    await self.publisher.publish(
                        [
                            Message(
                                self.topic,
                                r["subject"].encode(),
                                outbox.envelope_json(r),
                                _headers(r, carried),
                            )
                            for r in claim.rows
                        ]
                    )
            await outbox.mark_published(conn, claim.upto)
        now = time.time()
        for row in claim.rows:
            COMMIT_TO_PUBLISH.observe(max(0.0, now - row["time"].timestamp()))
        PUBLISHED.inc(len(claim.rows))
        return claim.moved

    async def maintain(self) -> None:
        async with self.pool.acquire() as conn:
            deleted = await outbox.delete_older_than(conn, self.retention)
        if deleted:
            log.info("outbox.pruned", deleted=deleted)

    async def record_backlog(self) -> None:
        """``cmf_outbox_backlog`` and ``cmf_outbox_oldest_age_seconds`` of what waits."""
        async with self.pool.acquire() as conn:
            backlog = await outbox.unpublished_backlog(conn)
        age = time.time() - backlog.oldest.timestamp() if backlog.oldest else None
        record_backlog(backlog.outbox, "unpublished", backlog.waiting, age)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, under the loops' failure policy (``workers``): a failed
        round is rolled back, so retrying it later publishes its rows then."""
        housekeeping = Housekeeping(self.loop, self.maintain, self.maintenance_every_s)
        gauges = GaugeReading(self.loop, "outbox backlog", self.record_backlog, GAUGES_EVERY_S)
        async with self.loop.running(), notifications(self.pool, outbox.NOTIFY_CHANNEL) as listen:
            while not stop.is_set():
                self.loop.beat()
                await listen.ensure()
                await housekeeping.run_if_due()
                await gauges.run_if_due()
                sent = await self.loop.round(self._counted_round, stop)
                if sent == 0:
                    await wait_for(listen.wake, stop, self.idle_poll_s)

    async def _counted_round(self) -> int:
        try:
            return await self.relay_once()
        except Exception:
            PUBLISH_FAILURES.inc()
            raise


def _headers(row: Any, carried: dict[str, str]) -> list[tuple[str, bytes]]:
    """The envelope's routing fields as record headers, so a consumer can filter or dead-letter
    without parsing the value, and the trace context: the publish span's (``carried``, by the
    row's own ``traceparent``), which continues the trace of the change that wrote the row."""
    headers = [
        ("ce_id", str(row["id"]).encode()),
        ("ce_type", row["type"].encode()),
        ("ce_seq", str(row["seq"]).encode()),
    ]
    if row["traceparent"]:
        traceparent = carried.get(row["traceparent"], row["traceparent"])
        headers.append(("traceparent", traceparent.encode()))
    return headers
