"""What only the embedded server does: the lineage projector fed straight from the metadata
outbox, in-process, instead of through Kafka; and, without Redis, the graph version posted on a
board in this process, where the projector posts it after each commit and the reads take it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress

from fastapi import FastAPI

from cmf_common.delivery import OutboxDelivery
from cmf_common.dispatch import Dispatcher
from cmf_common.health import Check
from cmf_lineage.board import LocalBoard
from cmf_lineage.projector import Projector
from cmf_lineage.versions import GraphVersions


@asynccontextmanager
async def embedded_delivery(metadata: FastAPI, lineage: FastAPI) -> AsyncIterator[Check]:
    """Runs while the server runs; both apps' lifespans must have started. Yields the
    delivery loop's liveness check, for the server's ``/livez``."""
    projector: Projector = lineage.state.projector
    delivery = OutboxDelivery(
        metadata.state.pool,
        Dispatcher(projector.consumer, projector.handlers()),
        retention=metadata.state.settings.outbox_retention,
    )
    stop = asyncio.Event()
    versions: GraphVersions = lineage.state.versions
    synced: AbstractAsyncContextManager[None] = nullcontext()  # Redis's: the lineage app's
    if versions.board is None:
        # The projector is ours, so it posts every commit here. The sync loop covers commits
        # of another server's projector sharing this database (and heals like Redis's does).
        versions.board = LocalBoard()
        synced = versions.kept_synced()
    task = asyncio.create_task(delivery.run(stop), name="embedded-delivery")
    try:
        async with synced:
            yield delivery.loop.check
    finally:
        stop.set()
        with suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=30)
