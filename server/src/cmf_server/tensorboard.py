"""TensorBoard over the uploaded logs: ``cmf-server up`` runs it (when the optional extra
``cmf-server[tensorboard]`` is installed) on a loopback port of its own, over the folder the
client's ``cmf metadata push -t`` uploads land in (``<data-dir>/files/tensorboard-logs``, one
run per ``<pipeline>/<folder>``), and serves it under ``/tensorboard/`` through
:class:`TensorBoardMount`, a small streaming proxy in front of the gateway. The web UI's
TensorBoard page shows it (``TENSORBOARD_URL`` defaults to ``/tensorboard/`` then).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmf_common.tracing import with_current_trace

log = structlog.get_logger(__name__)

PREFIX = "/tensorboard"
# How often TensorBoard looks for new logs (its --reload_interval), seconds.
RELOAD_S = 5
STOP_S = 10.0
# Meaningful for one connection only (RFC 9110 §7.6.1): never forwarded either way.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)


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


class TensorBoardMount:
    """``/tensorboard/`` and below go to the TensorBoard at ``upstream`` (request and answer
    streamed, hop-by-hop headers dropped, the trace context handed on); everything else to
    ``app``. A TensorBoard that does not answer is a 503."""

    def __init__(
        self,
        app: ASGIApp,
        upstream: str,
        *,
        guard: Callable[[ASGIApp], ASGIApp] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        """``guard`` wraps the proxy in the edge checks the gateway's own routes have (the
        allowed ``Host`` names and origins)."""
        self.app = app
        self.upstream = upstream
        self.client = httpx.AsyncClient(base_url=upstream, timeout=timeout_s)
        self.proxied: ASGIApp = guard(self._proxy) if guard is not None else self._proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _mounted(scope["path"]):
            await self.app(scope, receive, send)
            return
        await self.proxied(scope, receive, send)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def body() -> AsyncIterator[bytes]:
            while True:
                message: Message = await receive()
                if message["type"] != "http.request":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in with_current_trace(scope.get("headers") or [])
            if k.lower() not in HOP_BY_HOP
        ]
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = target.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
        method = scope["method"]
        request = self.client.build_request(
            method,
            url,
            headers=headers,
            content=body() if method not in ("GET", "HEAD") else None,
        )
        try:
            answer = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            log.warning("tensorboard.unreachable", error=type(exc).__name__)
            await _unavailable(send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": [
                        (k, v) for k, v in answer.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()


async def _unavailable(send: Send) -> None:
    text = b"TensorBoard is not answering; it may still be starting. Try again shortly.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"retry-after", b"5"),
                (b"content-length", str(len(text)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})
