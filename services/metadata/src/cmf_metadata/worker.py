"""``cmf-server worker relay``: the metadata service's outbox relay as a process of its own,
with /livez (its loop's liveness: failing on a fault or a stale heartbeat, see
:mod:`cmf_common.workers`), /readyz (PostgreSQL, Kafka and the loop) and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import asyncpg
from fastapi import FastAPI

from cmf_common.db import close_pool, create_pool, ping
from cmf_common.kafka import KafkaPublisher
from cmf_common.relay import OutboxRelay
from cmf_common.service import Checks, Service, build_service
from cmf_metadata.settings import MetadataSettings


@dataclass(frozen=True)
class RelayState:
    pool: asyncpg.Pool
    publisher: KafkaPublisher
    relay: OutboxRelay


def create_relay_service(settings: MetadataSettings | None = None) -> Service[RelayState]:
    settings = settings or MetadataSettings()
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
            application_name="cmf-relay",
            connect_timeout_s=settings.database_connect_timeout_s,
            acquire_timeout_s=settings.database_acquire_timeout_s,
        )
        publisher = KafkaPublisher(bootstrap)
        stop = asyncio.Event()
        try:
            await publisher.start()
            relay = OutboxRelay(
                pool,
                publisher,
                topic=settings.events_topic,
                retention=settings.outbox_retention,
                batch_rows=settings.relay_batch_rows,
                subjects_per_round=settings.relay_subjects_per_round,
                stall_after_s=settings.loop_stall_s,
            )
            task = asyncio.create_task(relay.run(stop), name="outbox-relay")
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
            "kafka": lambda: _kafka_ready(state.publisher, settings.events_topic),
            "loop": state.relay.loop.check,
        }

    return build_service(
        settings=settings,
        title="CMF Server — outbox relay",
        kind=RelayState,
        start=start,
        checks=checks,
        liveness=lambda state: state.relay.loop.check,
    )


def create_relay_app(settings: MetadataSettings | None = None) -> FastAPI:
    return create_relay_service(settings).app


async def _kafka_ready(publisher: KafkaPublisher, topic: str) -> None:
    await publisher.producer.partitions_for(topic)
