from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from cmf_common.settings import ServiceSettings
from cmf_gateway.auth.settings import AccessSettings


class GatewaySettings(AccessSettings):
    """The gateway's own: what every service has (logs, tracing, readiness timeout, the
    origins and hosts it allows), who may call what (``AccessSettings``), the UI it serves,
    and in distributed mode where each service answers and how long it may take. Where it
    listens and where the embedded server keeps its data are the process's
    (``cmf_server.settings.ServerSettings``)."""

    service_name: ClassVar[str] = "gateway"

    # ``UI_DIR``: the built web UI served under /ui/ (docs/ui.md); unset, the checkout's
    # services/ui/dist.
    ui_dir: Path | None = None

    # Distributed mode (``cmf-server serve gateway``, docs/distributed.md): the base URL of
    # each process (``cmf_server.topology``). The UI's unset: the gateway serves ``UI_DIR``
    # itself; the workers' unset: /health reports their parts as not configured.
    metadata_url: str | None = None
    lineage_url: str | None = None
    artifacts_url: str | None = None
    ui_url: str | None = None
    relay_url: str | None = None
    projector_url: str | None = None
    artifacts_relay_url: str | None = None
    # How long the gateway waits for a service's answer (its next bytes) before a 504: reads,
    # and the routes that move bodies (pushes, pulls, uploads, downloads, the export).
    gateway_timeout_s: float = Field(default=30.0, gt=0)
    gateway_transfer_timeout_s: float = Field(default=600.0, gt=0)
    # Connecting to a service; one that refuses or does not connect in time is down (503).
    gateway_connect_timeout_s: float = Field(default=3.0, gt=0)
    # Open connections the gateway keeps to each service (HTTP/1.1 keep-alive).
    gateway_upstream_connections: int = Field(default=100, ge=1)


class UiSettings(ServiceSettings):
    """``cmf-server serve ui``: the web UI's static files in a process of their own."""

    service_name: ClassVar[str] = "ui"

    ui_dir: Path | None = None
