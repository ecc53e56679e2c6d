"""``cmf-server worker relay``: the metadata service's outbox relay as a process of its own,
with /livez (its loop's liveness: failing on a fault or a stale heartbeat, see
:mod:`cmf_common.workers`), /readyz (PostgreSQL, Kafka and the loop) and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from cmf_common.db import create_pool, ping
from cmf_common.health import Check
from cmf_common.kafka import KafkaPublisher
from cmf_common.relay import OutboxRelay
from cmf_common.service import service_app
from cmf_metadata.settings import MetadataSettings


def create_relay_app(settings: MetadataSettings | None = None) -> FastAPI:
    settings = settings or MetadataSettings()
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError("the relay needs KAFKA_BOOTSTRAP_SERVERS")
    bootstrap = settings.kafka_bootstrap_servers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(
            settings.require_database_url(),
            settings.db_schema,
            min_size=2,
            max_size=4,
            application_name="cmf-relay",
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
            )
            app.state.pool, app.state.relay = pool, relay
            task = asyncio.create_task(relay.run(stop), name="outbox-relay")
            try:
                yield
            finally:
                # SIGTERM: take no new round, let the one in flight publish and commit.
                stop.set()
                with suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=30)
        finally:
            await publisher.stop()
            await pool.close()

    def checks(app: FastAPI) -> dict[str, Check | None]:
        relay: OutboxRelay | None = getattr(app.state, "relay", None)
        if relay is None:
            return {"database": None, "kafka": None, "loop": None}
        return {
            "database": lambda: ping(app.state.pool),
            "kafka": lambda: _kafka_ready(relay),
            "loop": relay.loop.check,
        }

    def liveness(app: FastAPI) -> Check | None:
        relay: OutboxRelay | None = getattr(app.state, "relay", None)
        return relay.loop.check if relay is not None else None

    return service_app(
        settings=settings,
        title="CMF Server — outbox relay",
        lifespan=lifespan,
        checks=checks,
        liveness=liveness,
    )


async def _kafka_ready(relay: OutboxRelay) -> None:
    publisher = relay.publisher
    assert isinstance(publisher, KafkaPublisher)
    await publisher.producer.partitions_for(relay.topic)
