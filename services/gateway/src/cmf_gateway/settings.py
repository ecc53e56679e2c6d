from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from cmf_common.settings import ServiceSettings


def split_origins(raw: str) -> list[str]:
    """A comma list of origins (``scheme://host[:port]``, or ``*`` for any), blanks dropped."""
    return [o.strip().rstrip("/") for o in raw.split(",") if o.strip()]


class GatewaySettings(ServiceSettings):
    """The gateway's own: what every service has (logs, tracing, readiness timeout) and which
    other origins a browser may call it from. Where it listens and where the embedded server
    keeps its data are the process's (``cmf_server.settings.ServerSettings``)."""

    service_name: ClassVar[str] = "gateway"

    # ``CORS_ORIGINS``: the origins (comma list) whose pages may call this server, e.g. a UI
    # served elsewhere; ``*`` allows any. Unset, the gateway allows none but its own.
    cors_origins: str | None = None
    # ``UI_DIR``: the built web UI served under /ui/ (docs/ui.md); unset, the checkout's
    # services/ui/dist.
    ui_dir: Path | None = None

    def allowed_origins(self) -> list[str]:
        """The origins the gateway answers cross-origin requests and preflights for."""
        return split_origins(self.cors_origins) if self.cors_origins is not None else []
