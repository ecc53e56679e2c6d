from __future__ import annotations

from typing import ClassVar

from cmf_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """The gateway's own: what every service has (logs, tracing, readiness timeout). Where it
    listens and where the embedded server keeps its data are the process's
    (``cmf_server.settings.ServerSettings``)."""

    service_name: ClassVar[str] = "gateway"
