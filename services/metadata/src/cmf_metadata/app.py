"""The metadata service: the MLMD-shaped store, the CMF push/pull, and the outbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from cmf_common.access import SignedPrincipal
from cmf_common.committed import (
    CommittedBoard,
    CommittedKeys,
    CommittedPublisher,
    RedisCommitted,
)
from cmf_common.db import ping, service_pool
from cmf_common.outbox import OUTBOX_MIGRATIONS, committed_seqs
from cmf_common.prefixes import NATIVE_V1, UPSTREAM_V1
from cmf_common.service import Checks, Service, build_service
from cmf_metadata import files
from cmf_metadata.api import cmf as cmf_routes
from cmf_metadata.api import files as file_routes
from cmf_metadata.api import listings as listing_routes
from cmf_metadata.api import metahub as metahub_routes
from cmf_metadata.api import native as native_routes
from cmf_metadata.api import seed as seed_routes
from cmf_metadata.api import upstream
from cmf_metadata.api import views as view_routes
from cmf_metadata.api.deps import MetadataState, peer_client
from cmf_metadata.settings import MetadataSettings
from cmf_metadata.stored import ArtifactService, NothingStored, StoredBlobs

MIGRATIONS = [OUTBOX_MIGRATIONS, "cmf_metadata.migrations"]


def create_service(
    settings: MetadataSettings | None = None,
    *,
    committed: CommittedBoard | None = None,
    artifacts: httpx.AsyncClient | None = None,
) -> Service[MetadataState]:
    """The metadata app and its typed handle (see :class:`cmf_common.service.Service`).

    Pushes post their pipeline's committed sequence on ``committed`` when one is given (the
    embedded server's in-process board), else on Redis's when ``REDIS_URL`` is set, else nowhere
    (lineage reads then ask ``GET /api/native/v1/pipelines/{p}/sequence``; see
    cmf_common.committed).

    Which artifacts have their bytes stored is asked of the artifact service through
    ``artifacts`` (the embedded server's in-process client) or at ``ARTIFACTS_URL``.
    """
    settings = settings or MetadataSettings()

    @asynccontextmanager
    async def start() -> AsyncIterator[MetadataState]:
        async with (
            service_pool(settings, MIGRATIONS, application_name="cmf-metadata") as pool,
            _stored_blobs(settings, artifacts) as stored,
            _file_store(settings, artifacts) as file_store,
            peer_client(settings) as peers,
        ):
            own = (
                RedisCommitted(settings.redis_url, CommittedKeys.of(settings.events_topic))
                if committed is None and settings.redis_url
                else None
            )
            board = committed if committed is not None else own
            if board is None:
                state = MetadataState.on(
                    settings, pool, stored=stored, peers=peers, file_store=file_store
                )
                await _clean_interrupted(state)
                async with _schedules_running(state, settings):
                    yield state
                return

            async def seed() -> dict[str, int]:
                async with pool.acquire() as conn:
                    return await committed_seqs(conn)

            try:
                async with CommittedPublisher(board).running(seed) as publisher:
                    state = MetadataState.on(
                        settings, pool, publisher, stored, peers, file_store=file_store
                    )
                    await _clean_interrupted(state)
                    async with _schedules_running(state, settings):
                        yield state
            finally:
                if own is not None:
                    await own.close()

    def checks(state: MetadataState | None) -> Checks:
        return {"database": (lambda: ping(state.pool)) if state is not None else None}

    service = build_service(
        settings=settings,
        title="CMF Server — metadata",
        kind=MetadataState,
        start=start,
        checks=checks,
        max_body_bytes=settings.max_body_bytes,
    )
    app = service.app
    # Every CMF route answers at /x and /api/x, as the reference server does.
    for cmf_router in (
        cmf_routes.router,
        file_routes.router,
        listing_routes.router,
        seed_routes.router,
        metahub_routes.router,
    ):
        app.include_router(cmf_router)
        app.include_router(cmf_router, prefix="/api")
    # Our own API, then upstream's v1 generation at both its prefixes (docs/api.md).
    app.include_router(native_routes.router, prefix=NATIVE_V1)
    app.include_router(view_routes.router, prefix=NATIVE_V1)
    upstream.include_upstream_v1(app, prefixes=UPSTREAM_V1)
    return service


async def _clean_interrupted(state: MetadataState) -> None:
    """What a ``kill -9`` left behind: partial uploads and big pushes' spool files."""
    await state.file_store.clean_interrupted_uploads()
    assert state.big_pushes is not None
    await state.big_pushes.clean_interrupted_spools()


@asynccontextmanager
async def _schedules_running(
    state: MetadataState, settings: MetadataSettings
) -> AsyncIterator[None]:
    """Metahub's schedule runner as a background task while the app runs (docs/metahub.md)."""
    assert state.metahub is not None
    task = asyncio.create_task(
        state.metahub.run_schedules(settings.metahub_scheduler_interval_s),
        name="metahub-schedules",
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def _stored_blobs(
    settings: MetadataSettings, artifacts: httpx.AsyncClient | None
) -> AsyncIterator[StoredBlobs]:
    auth = SignedPrincipal.of(settings)
    if artifacts is not None:
        yield ArtifactService(artifacts, auth)
    elif settings.artifacts_url:
        async with httpx.AsyncClient(base_url=settings.artifacts_url, timeout=5.0) as client:
            yield ArtifactService(client, auth)
    else:
        yield NothingStored()


@asynccontextmanager
async def _file_store(
    settings: MetadataSettings, artifacts: httpx.AsyncClient | None
) -> AsyncIterator[files.FileStore | None]:
    """The artifact service's store for uploaded files when ``FILES_STORAGE`` says so (None:
    the local folder), with a client whose timeouts suit uploads."""
    if not settings.files_in_artifact_store:
        yield None
    elif artifacts is not None:
        yield files.ArtifactFileStore(artifacts)
    elif settings.artifacts_url:
        timeout = httpx.Timeout(120.0, connect=5.0)
        async with httpx.AsyncClient(base_url=settings.artifacts_url, timeout=timeout) as client:
            yield files.ArtifactFileStore(client)
    else:
        raise RuntimeError("FILES_STORAGE=artifacts needs ARTIFACTS_URL")


def create_app(settings: MetadataSettings | None = None) -> FastAPI:
    return create_service(settings).app
