from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from cmf_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """The gateway's own: what every service has (logs, tracing, readiness timeout, the
    origins and hosts it allows) and the UI it serves. Where it listens and where the embedded
    server keeps its data are the process's (``cmf_server.settings.ServerSettings``)."""

    service_name: ClassVar[str] = "gateway"

    # ``UI_DIR``: the built web UI served under /ui/ (docs/ui.md); unset, the checkout's
    # services/ui/dist.
    ui_dir: Path | None = None
