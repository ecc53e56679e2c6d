"""The embedded server: every service behind the gateway in one process.

The composition is explicit: the process builds what the services share before they start
(without Redis, the in-process board the lineage projector posts its graph version on, handed
to the lineage factory), starts each service and takes the typed state its ``started()``
yields, and wires the in-process event delivery from those states (the metadata pool, the
lineage projector). It never reads another app's state.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import timedelta

import asyncpg
import httpx
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_artifacts.app import create_service as create_artifacts
from cmf_artifacts.settings import ArtifactSettings
from cmf_common.committed import LocalCommitted
from cmf_common.delivery import OutboxDelivery
from cmf_common.dispatch import Dispatcher
from cmf_common.health import Check
from cmf_common.settings import IN_PROCESS_URLS
from cmf_gateway.app import Gateway, create_gateway
from cmf_gateway.routing import ARTIFACTS, LINEAGE, METADATA
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.app import create_service as create_lineage
from cmf_lineage.board import LocalBoard
from cmf_lineage.projector import Projector
from cmf_lineage.settings import LineageSettings
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings

DELIVERY_STOP_S = 10.0


def embedded_server(
    settings: GatewaySettings,
    metadata_settings: MetadataSettings,
    lineage_settings: LineageSettings,
    artifact_settings: ArtifactSettings | None = None,
    *,
    database_shared: bool = False,
) -> Gateway:
    """The gateway with the metadata, lineage and artifact services mounted (the artifacts by
    default in ``artifacts/`` beside the metadata service's files, on its database). With a
    Kafka configured, events travel through it (``cmf-server worker relay`` and ``worker
    lineage``); without one, this process hands them from the metadata outbox to the lineage
    projector. ``database_shared``: the database is one other processes may push to too (a
    ``DATABASE_URL``, not the data dir's private PostgreSQL)."""
    in_process_events = not settings.kafka_bootstrap_servers
    # With auth on, the gateway signs each request's principal and the apps verify it: with
    # the secret configured, else with one of this process's own.
    shared: dict[str, object] = {}
    secret = settings.principal_secret_bytes()
    if secret is not None:
        shared["principal_secret"] = SecretStr(secret.decode())
    elif settings.auth_enabled(distributed=False):
        shared["principal_secret"] = SecretStr(secrets.token_urlsafe(32))
        settings = settings.model_copy(update=shared)
    # Every app behind this process allows the origins and hosts the process does.
    metadata_settings = metadata_settings.with_edge_of(settings).model_copy(update=shared)
    lineage_settings = lineage_settings.with_edge_of(settings).model_copy(update=shared)
    # The projector is ours, so it posts every commit on this board; the lineage app's sync
    # loop covers commits of another server's projector sharing the database. With Redis the
    # lineage app uses Redis's board.
    board = LocalBoard() if in_process_events and not lineage_settings.redis_url else None
    # Each push posts its pipeline's committed sequence before it answers, for the lineage reads
    # to wait on (cmf_lineage.consistency): on Redis when set, else on a board in this process.
    # A board in this process sees only this process's pushes: on a database other processes
    # push to as well (replicas) and no Redis, there is none, and the lineage app asks the
    # metadata app (in-process here), which reads the committed sequences in the database.
    # The lineage app also asks it when the board fails.
    committed = (
        LocalCommitted() if not metadata_settings.redis_url and not database_shared else None
    )
    # The metadata app asks the artifact app which artifacts are stored, and the artifact app
    # asks the metadata app which artifact a name is: both in-process, the first bound late.
    artifacts_app = _Later()
    artifacts_client = _in_process(artifacts_app, ARTIFACTS, timeout=30.0)
    metadata = create_metadata(metadata_settings, committed=committed, artifacts=artifacts_client)
    metadata_client = _in_process(metadata.app, METADATA, timeout=2.0)
    lineage = create_lineage(
        lineage_settings, board=board, committed=committed, metadata=metadata_client
    )
    if artifact_settings is None:
        artifact_settings = ArtifactSettings(
            database_url=metadata_settings.database_url,
            artifacts_dir=metadata_settings.files_dir.parent / "artifacts",
        )
    artifact_settings = artifact_settings.with_edge_of(settings).model_copy(update=shared)
    # The artifact service resolves artifacts through the metadata app, in-process.
    catalog_client = _in_process(metadata.app, METADATA, timeout=30.0)
    artifacts = create_artifacts(artifact_settings, metadata=catalog_client)
    artifacts_app.app = artifacts.app

    @asynccontextmanager
    async def run() -> AsyncIterator[list[Check]]:
        async with AsyncExitStack() as stack:
            metadata_state = await stack.enter_async_context(metadata.started())
            lineage_state = await stack.enter_async_context(lineage.started())
            artifacts_state = await stack.enter_async_context(artifacts.started())
            stack.push_async_callback(metadata_client.aclose)
            stack.push_async_callback(catalog_client.aclose)
            stack.push_async_callback(artifacts_client.aclose)
            if not in_process_events:
                yield []
                return
            assert lineage_state.projector is not None  # the lifespan made one
            delivered = await stack.enter_async_context(
                embedded_delivery(
                    metadata_state.pool,
                    lineage_state.projector,
                    retention=metadata_settings.outbox_retention,
                    inbox_retention=lineage_settings.inbox_retention,
                    stall_after_s=metadata_settings.loop_stall_s,
                )
            )
            # The artifact service's outbox (cmf.artifacts.blob.stored.v1) goes to the same
            # consumers; an event no handler takes is marked processed, then pruned.
            blobs_delivered = await stack.enter_async_context(
                embedded_delivery(
                    artifacts_state.blobs.pool,
                    lineage_state.projector,
                    retention=artifact_settings.outbox_retention,
                    inbox_retention=lineage_settings.inbox_retention,
                    stall_after_s=metadata_settings.loop_stall_s,
                    name="embedded-delivery-artifacts",
                )
            )
            yield [delivered, blobs_delivered]

    return create_gateway(
        settings, {METADATA: metadata, LINEAGE: lineage, ARTIFACTS: artifacts}, run=run
    )


def _in_process(app: ASGIApp, service: str, *, timeout: float) -> httpx.AsyncClient:
    """A client that calls ``app`` in this process, at its service's in-process URL."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS_URLS[service], timeout=timeout
    )


class _Later:
    """An ASGI app that is given its app after it is handed out."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the artifact app is bound before the server starts"
        await self.app(scope, receive, send)


@asynccontextmanager
async def embedded_delivery(
    pool: asyncpg.Pool,
    projector: Projector,
    *,
    retention: timedelta,
    inbox_retention: timedelta,
    stall_after_s: float = 60.0,
    name: str = "embedded-delivery",
) -> AsyncIterator[Check]:
    """The lineage projector fed straight from the metadata outbox, in-process, instead of
    through Kafka, while the server runs. Yields the delivery loop's liveness check, for the
    server's ``/livez``. It prunes the outbox after ``retention`` and the projector's applied
    ids after ``inbox_retention``."""
    delivery = OutboxDelivery(
        pool,
        Dispatcher(projector.consumer, projector.handlers()),
        retention=retention,
        consumer_housekeeping=lambda: projector.store.forget_applied(
            projector.consumer, inbox_retention
        ),
        stall_after_s=stall_after_s,
        name=name,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop), name=name)
    try:
        yield delivery.loop.check
    finally:
        # The round in hand may finish (a round is rolled back as a whole otherwise); one that
        # waits out an outage is cancelled, its rows are delivered after the next start.
        stop.set()
        with suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=DELIVERY_STOP_S)
