"""What only the embedded server does: the lineage projector fed straight from the metadata
outbox, in-process, instead of through Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from cmf_common.delivery import OutboxDelivery
from cmf_common.dispatch import Dispatcher
from cmf_lineage.projector import Projector


@asynccontextmanager
async def embedded_delivery(metadata: FastAPI, lineage: FastAPI) -> AsyncIterator[None]:
    """Runs while the server runs; both apps' lifespans must have started."""
    projector: Projector = lineage.state.projector
    delivery = OutboxDelivery(
        metadata.state.pool, Dispatcher(projector.consumer, projector.handlers())
    )
    lineage.state.delivery = delivery
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop), name="embedded-delivery")
    try:
        yield
    finally:
        stop.set()
        with suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=30)
