from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from cmf_gateway.settings import GatewaySettings


def default_data_dir() -> Path:
    """Root's data lives under /var/lib: the embedded PostgreSQL runs as a system user that
    must be able to open every parent folder, and /root is closed to it."""
    if os.geteuid() == 0:
        return Path("/var/lib/cmf-server")
    return Path.home() / ".local" / "share" / "cmf-server"


# Where a UI under development is usually served (Vite, Create React App).
DEV_SERVER_PORTS = (5173, 3000)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ServerSettings(GatewaySettings):
    """The ``cmf-server`` process: the gateway's settings, where it listens, its data dir."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    # ``TENSORBOARD=false``: do not run TensorBoard over the uploaded logs even when the
    # ``tensorboard`` extra is installed (cmf_server.tensorboard). The tests' servers say so
    # unless a test wants it: each TensorBoard costs seconds of CPU as it starts.
    tensorboard: bool = True

    def allowed_origins(self) -> list[str]:
        """``CORS_ORIGINS`` when set; otherwise the server's own origin (as 127.0.0.1 and as
        localhost) and the localhost dev servers, so a UI run from a checkout works."""
        if self.cors_origins is not None:
            return super().allowed_origins()
        scheme = "https" if self.tls_cert_path is not None else "http"
        hosts = ("127.0.0.1", "localhost")
        own = [f"{scheme}://{h}:{self.port}" for h in hosts]
        if self.host not in ("0.0.0.0", "::", *hosts):
            own.insert(0, f"{scheme}://{self.host}:{self.port}")
        return [*own, *(f"http://{h}:{p}" for p in DEV_SERVER_PORTS for h in hosts)]

    def allowed_host_names(self) -> list[str] | None:
        """``ALLOWED_HOSTS`` when set; otherwise, listening on a loopback address, the loopback
        names (a page of another site that rebinds its name to 127.0.0.1 is refused by the
        ``Host`` it sends); listening elsewhere, any."""
        if self.allowed_hosts is not None or self.host not in LOOPBACK_HOSTS:
            return super().allowed_host_names()
        return list(LOOPBACK_HOSTS)
