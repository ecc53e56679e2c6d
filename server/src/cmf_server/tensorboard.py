"""TensorBoard over the uploaded logs: ``cmf-server up`` runs it (when the optional extra
``cmf-server[tensorboard]`` is installed) on a loopback port of its own, over the folder the
client's ``cmf metadata push -t`` uploads land in (``<data-dir>/files/tensorboard-logs``, one
run per ``<pipeline>/<folder>``), and serves it under ``/tensorboard/`` through
:class:`TensorBoardMount`, the gateway's HTTP transport in front of the gateway. The web UI's
TensorBoard page shows it (``TENSORBOARD_URL`` defaults to ``/tensorboard/`` then).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.edge import CrossOriginGuard
from cmf_gateway.app import Gateway
from cmf_gateway.proxy import DialectOf, Upstream
from cmf_gateway.settings import GatewaySettings

log = structlog.get_logger(__name__)

PREFIX = "/tensorboard"
# How often TensorBoard looks for new logs (its --reload_interval), seconds.
RELOAD_S = 5
STOP_S = 10.0


def installed() -> bool:
    """Whether the ``tensorboard`` extra is installed (its package imports lazily: cheap)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class TensorBoardProcess:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_S)


def start(logdir: Path, log_path: Path) -> TensorBoardProcess | None:
    """TensorBoard on a free loopback port over ``logdir`` (its output to ``log_path``), or
    ``None`` when it is not installed."""
    if not installed():
        log.info("tensorboard.not_installed", hint="pip install 'cmf-server[tensorboard]'")
        return None
    logdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--path_prefix",
                PREFIX,
                "--reload_interval",
                str(RELOAD_S),
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    log.info("tensorboard.started", port=port, logdir=str(logdir))
    return TensorBoardProcess(process, f"http://127.0.0.1:{port}")


def _mounted(path: str) -> bool:
    """Below ``/tensorboard/`` only: ``/tensorboard`` itself is the client's upload route."""
    return path.startswith(PREFIX + "/")


class TensorBoardSettings(BaseSettings):
    """``TENSORBOARD_UPSTREAM_URL``: where a gateway run apart (``cmf-server serve gateway``)
    reaches the TensorBoard it serves under ``/tensorboard/`` (compose's and Kubernetes'
    ``tensorboard`` service, run with ``--path_prefix /tensorboard``); unset, none."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    tensorboard_upstream_url: str | None = None


def gateway_guard(gateway: Gateway, settings: GatewaySettings) -> Callable[[ASGIApp], ASGIApp]:
    """What wraps the proxy in the checks the gateway's own routes pass: the allowed ``Host``
    names and origins, and, with auth on, the access layer (a read token, docs/access.md)."""

    def guard(proxy: ASGIApp) -> ASGIApp:
        guarded = CrossOriginGuard(
            proxy,
            allowed_origins=settings.allowed_origins(),
            allowed_hosts=settings.allowed_host_names(),
            dialect_of=gateway.table.dialect_of,
        )
        return gateway.access.layer(guarded) if gateway.access is not None else guarded

    return guard


def mounted(gateway: Gateway, settings: GatewaySettings) -> ASGIApp:
    """The distributed gateway, with ``/tensorboard/`` proxied to ``TENSORBOARD_UPSTREAM_URL``
    when it is set (behind :func:`gateway_guard`)."""
    upstream = TensorBoardSettings().tensorboard_upstream_url
    if not upstream:
        return gateway
    return TensorBoardMount(
        gateway,
        upstream,
        dialect_of=gateway.table.dialect_of,
        guard=gateway_guard(gateway, settings),
    )


class TensorBoardMount:
    """``/tensorboard/`` and below go to the TensorBoard at ``upstream`` through the gateway's
    own HTTP transport (:class:`cmf_gateway.proxy.Upstream`: bodies streamed both ways,
    hop-by-hop headers dropped, the trace context handed on, a TensorBoard that does not answer
    a 503 with ``Retry-After``); everything else goes to ``app``. The transport's pool lives as
    long as ``app``'s lifespan."""

    def __init__(
        self,
        app: ASGIApp,
        upstream: str,
        *,
        dialect_of: DialectOf,
        guard: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        """``guard`` wraps the proxy in the edge checks the gateway's own routes have (the
        allowed ``Host`` names and origins)."""
        self.app = app
        # What serves the gateway's refusals in the right dialect (cmf_server.cli reads it).
        self.table = getattr(app, "table", None)
        self.upstream = Upstream("tensorboard", upstream, dialect_of=dialect_of)
        self.proxied: ASGIApp = guard(self.upstream) if guard is not None else self.upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with self.upstream.opened():
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http" or not _mounted(scope["path"]):
            await self.app(scope, receive, send)
            return
        await self.proxied(scope, receive, send)
