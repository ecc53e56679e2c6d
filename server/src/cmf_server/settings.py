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


class ServerSettings(GatewaySettings):
    """The ``cmf-server`` process: the gateway's settings, where it listens, its data dir."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
