"""A service's outbox relay as a process of its own (``cmf-server worker relay`` for the
metadata service's outbox, ``worker artifacts-relay`` for the artifact service's), with /livez
(its loop's liveness: failing on a fault or a stale heartbeat, see :mod:`cmf_common.workers`),
/readyz (PostgreSQL, Kafka and the loop) and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from cmf_common.db import close_pool, create_pool, ping
from cmf_common.kafka import KafkaPublisher
from cmf_common.relay import OutboxRelay
from cmf_common.service import Checks, Service, build_service
from cmf_common.settings import ServiceSettings


@dataclass(frozen=True)
class RelayState:
    pool: asyncpg.Pool
    publisher: KafkaPublisher
    relay: OutboxRelay


def create_relay_service(
    settings: ServiceSettings,
    *,
    topic: str,
    retention: timedelta,
    batch_rows: int = 5000,
    subjects_per_round: int = 500,
    name: str = "cmf-relay",
) -> Service[RelayState]:
    """The relay of the outbox in ``settings``' database schema to ``topic``."""
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError("the relay needs KAFKA_BOOTSTRAP_SERVERS")
    bootstrap = settings.kafka_bootstrap_servers

    @asynccontextmanager
    async def start() -> AsyncIterator[RelayState]:
        pool = await create_pool(
            settings.require_database_url(),
            settings.db_schema,
            min_size=2,
            max_size=4,
            application_name=name,
            connect_timeout_s=settings.database_connect_timeout_s,
            acquire_timeout_s=settings.database_acquire_timeout_s,
        )
        publisher = KafkaPublisher(bootstrap, client_id=name)
        stop = asyncio.Event()
        try:
            await publisher.start()
            relay = OutboxRelay(
                pool,
                publisher,
                topic=topic,
                retention=retention,
                batch_rows=batch_rows,
                subjects_per_round=subjects_per_round,
                stall_after_s=settings.loop_stall_s,
            )
            task = asyncio.create_task(relay.run(stop), name=f"{name}-outbox")
            try:
                yield RelayState(pool, publisher, relay)
            finally:
                # SIGTERM: take no new round, let the one in flight publish and commit.
                stop.set()
                with suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=30)
        finally:
            await publisher.stop()
            await close_pool(pool)

    def checks(state: RelayState | None) -> Checks:
        if state is None:
            return {"database": None, "kafka": None, "loop": None}
        return {
            "database": lambda: ping(state.pool),
            "kafka": lambda: _kafka_ready(state.publisher, topic),
            "loop": state.relay.loop.check,
        }

    return build_service(
        settings=settings,
        title=f"CMF Server — outbox relay ({settings.service_name})",
        kind=RelayState,
        start=start,
        checks=checks,
        liveness=lambda state: state.relay.loop.check,
    )


async def _kafka_ready(publisher: KafkaPublisher, topic: str) -> None:
    await publisher.producer.partitions_for(topic)
