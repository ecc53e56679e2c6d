"""The artifact service: artifact bytes by content hash, on S3 or in a local folder."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from cmf_artifacts.api import files as file_routes
from cmf_artifacts.api import native as native_routes
from cmf_artifacts.api import seed as seed_routes
from cmf_artifacts.api.deps import ArtifactState
from cmf_artifacts.blobs import Blobs
from cmf_artifacts.catalog import MetadataCatalog
from cmf_artifacts.files import NamedFiles
from cmf_artifacts.settings import ArtifactSettings
from cmf_artifacts.storage import STORAGE_UNAVAILABLE, BlobStore, StorageUnavailable
from cmf_artifacts.storage.local import LocalBlobStore
from cmf_artifacts.storage.s3 import CLIENT_ERRORS, is_outage, open_s3
from cmf_common.access import SignedPrincipal
from cmf_common.db import ping, service_pool
from cmf_common.dialects import OutageLog
from cmf_common.errors import DomainError
from cmf_common.outbox import OUTBOX_MIGRATIONS
from cmf_common.prefixes import NATIVE_V1
from cmf_common.service import Checks, Service, build_service

MIGRATIONS = [OUTBOX_MIGRATIONS, "cmf_artifacts.migrations"]
STORAGE_OUTAGES = OutageLog(event="request.storage_unavailable")


async def open_blob_store(settings: ArtifactSettings, stack: AsyncExitStack) -> BlobStore:
    """The store ``ARTIFACT_STORAGE_TYPE`` names; ``stack`` closes its client."""
    if not settings.uses_s3:
        return LocalBlobStore(settings.artifacts_dir)

    def secret(value: object) -> str | None:
        return None if value is None else value.get_secret_value()  # type: ignore[attr-defined]

    return await open_s3(
        stack,
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=secret(settings.s3_access_key_id),
        secret_access_key=secret(settings.s3_secret_access_key),
        region=settings.s3_region,
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        part_bytes=settings.s3_part_bytes,
        parts_in_flight=settings.s3_parts_in_flight,
    )


def create_service(
    settings: ArtifactSettings | None = None, *, metadata: httpx.AsyncClient | None = None
) -> Service[ArtifactState]:
    """The artifact app and its typed handle. Artifacts are resolved through ``metadata`` (a
    client whose base URL is the metadata service: the embedded server's in-process one) or
    ``METADATA_URL``."""
    settings = settings or ArtifactSettings()

    @asynccontextmanager
    async def start() -> AsyncIterator[ArtifactState]:
        async with (
            service_pool(settings, MIGRATIONS, application_name="cmf-artifacts") as pool,
            AsyncExitStack() as stack,
        ):
            blob_store = await open_blob_store(settings, stack)
            client = metadata
            if client is None and settings.metadata_url:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=settings.metadata_url, timeout=10.0)
                )
            blobs = Blobs(pool, blob_store, settings)
            stop = asyncio.Event()
            sweeper = asyncio.create_task(blobs.keep_swept(stop), name="artifact-upload-sweep")
            try:
                yield ArtifactState(
                    blobs=blobs,
                    catalog=(
                        # The caller's principal goes along: the metadata service answers
                        # only what its pipeline prefix lets it see.
                        MetadataCatalog(client, SignedPrincipal.of(settings, forward=True))
                        if client is not None
                        else None
                    ),
                    files=NamedFiles(blob_store, settings),
                )
            finally:
                stop.set()
                with suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(sweeper, timeout=10)

    def checks(state: ArtifactState | None) -> Checks:
        if state is None:
            return {"database": None, "storage": None}
        return {"database": lambda: ping(state.blobs.pool), "storage": state.blobs.store.check}

    service = build_service(
        settings=settings,
        title="CMF Server — artifacts",
        kind=ArtifactState,
        start=start,
        checks=checks,
        max_body_bytes=settings.max_blob_bytes,
    )
    app = service.app
    app.include_router(seed_routes.router)
    app.include_router(seed_routes.router, prefix="/api")
    app.include_router(native_routes.router, prefix=NATIVE_V1)
    app.include_router(file_routes.router, prefix=NATIVE_V1)
    install_storage_outages(app)
    return service


def install_storage_outages(app: FastAPI) -> None:
    """S3 down, throttling or failing for now: a 503 with ``Retry-After`` in the route's
    dialect, as a database outage is; any other failure of the S3 client is still a 500."""
    on_domain_error = app.exception_handlers[DomainError]  # the route's dialect

    async def on_storage_error(request: Request, exc: Exception) -> Response:
        if not is_outage(exc):
            raise exc  # to the 500
        STORAGE_OUTAGES.report(exc)
        answer = on_domain_error(request, StorageUnavailable(STORAGE_UNAVAILABLE))
        return await answer if inspect.isawaitable(answer) else answer

    for error in CLIENT_ERRORS:
        app.add_exception_handler(error, on_storage_error)


def create_app(settings: ArtifactSettings | None = None) -> FastAPI:
    return create_service(settings).app
