"""The apps ``cmf-server serve <service>`` runs: each service as a process of its own, behind
the gateway (distributed mode; ``cmf_server.topology`` lists the processes, docs/distributed.md
says how they fit).

Each service reads its own settings, and reaches the others at their URL settings
(``METADATA_URL``, ``ARTIFACTS_URL``), over HTTP only. A service run this way requires the
gateway's signed principal unless ``REQUIRE_PRINCIPAL`` says otherwise
(``cmf_common.settings.ServiceSettings.standalone``). Each factory imports only its own service,
so a process starts without loading the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp


def metadata_app() -> FastAPI:
    from cmf_metadata.app import create_app
    from cmf_metadata.settings import MetadataSettings

    return create_app(MetadataSettings().standalone())


def lineage_app() -> FastAPI:
    from cmf_lineage.app import create_app
    from cmf_lineage.settings import LineageSettings

    return create_app(LineageSettings().standalone())


def artifacts_app() -> FastAPI:
    from cmf_artifacts.app import create_app
    from cmf_artifacts.settings import ArtifactSettings

    return create_app(ArtifactSettings().standalone())


def service_apps() -> dict[str, FastAPI]:
    """Every service's app, built with default settings and never started: the gateway reads
    their routes (its table) and their OpenAPI documents."""
    from cmf_artifacts.app import create_app as create_artifacts_app
    from cmf_artifacts.settings import ArtifactSettings
    from cmf_gateway.routing import ARTIFACTS, LINEAGE, METADATA
    from cmf_lineage.app import create_app as create_lineage_app
    from cmf_lineage.settings import LineageSettings
    from cmf_metadata.app import create_app as create_metadata_app
    from cmf_metadata.settings import MetadataSettings

    return {
        METADATA: create_metadata_app(MetadataSettings()),
        LINEAGE: create_lineage_app(LineageSettings()),
        ARTIFACTS: create_artifacts_app(ArtifactSettings()),
    }


def gateway_app() -> ASGIApp:
    """The gateway, with ``/tensorboard/`` proxied when ``TENSORBOARD_UPSTREAM_URL`` is set."""
    from cmf_gateway.distributed import create_distributed_gateway
    from cmf_gateway.settings import GatewaySettings
    from cmf_server import tensorboard

    settings = GatewaySettings()
    return tensorboard.mounted(create_distributed_gateway(settings, service_apps()), settings)


def ui_app() -> FastAPI:
    """The built web UI under ``/ui/`` (``UI_DIR``), with the health and metrics routes."""
    from cmf_common.service import service_app
    from cmf_gateway.settings import UiSettings
    from cmf_gateway.ui import DEFAULT_DIST, ui_router

    settings = UiSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = service_app(
        settings=settings, title="CMF Server — UI", lifespan=lifespan, checks=lambda _: {}
    )
    app.include_router(ui_router(settings.ui_dir or DEFAULT_DIST))
    return app
