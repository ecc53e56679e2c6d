"""The embedded server's event delivery: the consumers' handlers fed straight from the outbox,
in-process, with no broker.

It reads rows not yet processed (on start too), hands them to the same dispatcher a Kafka
consumer uses, and marks them processed only after the handlers returned, i.e. after their
effects committed. A crash or a kill -9 between the two re-delivers those rows on the next
start, exactly as an uncommitted Kafka offset would; handlers skip event ids they applied.
A row whose handler keeps failing is marked processed with its error: the embedded dead letter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import structlog
from prometheus_client import Counter

from cmf_common import outbox
from cmf_common.dispatch import Dispatcher
from cmf_common.metrics import DLQ_DEPTH, record_backlog
from cmf_common.workers import (
    WAITING,
    GaugeReading,
    Housekeeping,
    LoopSupervisor,
    notifications,
    wait_for,
)

log = structlog.get_logger(__name__)

DELIVERED = Counter("cmf_embedded_delivered_total", "Outbox rows delivered in-process.")
# How often the backlog gauges are read (two partial-index counts).
GAUGES_EVERY_S = 5.0


class OutboxDelivery:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dispatcher: Dispatcher,
        *,
        batch_rows: int = 1000,
        batch_bytes: int = 512 * 1024,
        idle_poll_s: float = 5.0,
        retention: timedelta = timedelta(days=7),
        maintenance_every_s: float = 60.0,
        consumer_housekeeping: Callable[[], Awaitable[object]] | None = None,
        stall_after_s: float = 60.0,
        name: str = "embedded-delivery",
    ) -> None:
        """``consumer_housekeeping`` is the handlers' own (their inbox's retention), run with
        the outbox's pruning. ``name`` is the loop's, in logs, metrics and ``/livez``: one per
        outbox a process delivers."""
        self.pool = pool
        self.dispatcher = dispatcher
        self.batch_rows = batch_rows
        # A round's stored event data at most (outbox.claim_undelivered): it is decoded and
        # projected in the server's event loop.
        self.batch_bytes = batch_bytes
        self.idle_poll_s = idle_poll_s
        self.retention = retention
        self.maintenance_every_s = maintenance_every_s
        self.consumer_housekeeping = consumer_housekeeping
        self.loop = LoopSupervisor(name, stall_after_s=stall_after_s)

    async def deliver_once(self) -> int:
        """Deliver one batch; how many rows (0: none waited; ``WAITING``: rows wait but another
        server sharing the database has the delivery's turn)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await outbox.claim_undelivered(
                conn, rows=self.batch_rows, data_bytes=self.batch_bytes
            )
            if rows is None:
                return WAITING if await outbox.undelivered_waiting(conn) else 0
            if not rows:
                return 0
            by_id = {str(r["id"]): r["position"] for r in rows}
            failures = await self.dispatcher.dispatch(
                [outbox.envelope_of(r) for r in rows], alive=self.loop.beat
            )
            await outbox.mark_processed(
                conn,
                [r["position"] for r in rows],
                {by_id[f.envelope.id]: f.error for f in failures},
            )
        DELIVERED.inc(len(rows))
        return len(rows)

    async def maintain(self) -> None:
        await self.forget_old()
        if self.consumer_housekeeping is not None:
            await self.consumer_housekeeping()

    async def forget_old(self) -> int:
        """Delete processed rows older than the retention, as the relay does published ones."""
        async with self.pool.acquire() as conn:
            deleted = await outbox.delete_older_than(conn, self.retention)
        if deleted:
            log.info("outbox.pruned", deleted=deleted)
        return deleted

    async def record_backlog(self) -> None:
        """``cmf_outbox_backlog``, ``cmf_outbox_oldest_age_seconds`` and ``cmf_dlq_depth`` of
        this outbox (the embedded server's consumer lag and dead letters)."""
        async with self.pool.acquire() as conn:
            backlog = await outbox.undelivered_backlog(conn)
        age = time.time() - backlog.oldest.timestamp() if backlog.oldest else None
        record_backlog(backlog.outbox, "undelivered", backlog.waiting, age)
        DLQ_DEPTH.labels(f"outbox.{backlog.outbox}").set(backlog.dead)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, under the loops' failure policy (``workers``): a
        failed round is rolled back, so its rows are delivered again on a later one."""
        housekeeping = Housekeeping(self.loop, self.maintain, self.maintenance_every_s)
        gauges = GaugeReading(self.loop, "outbox backlog", self.record_backlog, GAUGES_EVERY_S)
        async with self.loop.running(), notifications(self.pool, outbox.NOTIFY_CHANNEL) as listen:
            while not stop.is_set():
                await listen.ensure()
                delivered = await self.loop.round(self.deliver_once, stop)
                # After the round: a delivery restarting after a long stop first hands on
                # (and the handlers skip) what it had in hand, then forgets.
                await housekeeping.run_if_due()
                await gauges.run_if_due()
                if delivered is not None and delivered <= 0:
                    await wait_for(listen.wake, stop, self.idle_poll_s)

    async def drain(self) -> None:
        """Deliver until nothing is left (tests and shutdown use it)."""
        while await self.deliver_once() > 0:
            pass
