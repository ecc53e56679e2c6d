"""The gateway's HTTP transport: each service reached at a URL (distributed mode).

The gateway's route table says which service answers a path (``cmf_gateway.routing``); in the
embedded server that service is an app in the same process, here it is an :class:`Upstream`,
an ASGI app that forwards the request to the service's URL and streams the answer back. One
table, two transports.

- **Connections.** One httpx connection pool per service, opened in the gateway's lifespan
  (:meth:`Upstream.opened`): HTTP/1.1 with kept-alive connections
  (``GATEWAY_UPSTREAM_CONNECTIONS``), so a request rarely pays a TCP handshake.
- **Bodies.** Streamed both ways, one chunk in hand at a time: the request body is read from
  the client as the service reads it (``Content-Length`` kept, so the service's body limit
  refuses an oversized one before it is sent), the answer is sent to the client as it arrives
  (``aiter_raw``: encodings untouched). A 1 GiB upload or download never sits in memory.
- **Headers.** Hop-by-hop headers (RFC 9110 §7.6.1, and those ``Connection`` names) are not
  forwarded either way. ``Host`` is the client's, so the service's redirects and links name
  the gateway; ``X-Forwarded-For``/``-Proto``/``-Host`` say who asked. ``X-Request-ID`` (made
  here when the client sent none, :class:`RequestIds`) and the trace context
  (``traceparent``, ``tracestate``) travel to the service. ``Origin`` and ``Sec-Fetch-Site``
  do not: the gateway has judged them (``cmf_common.edge.CrossOriginGuard``), and a browser
  origin the gateway allows must not be refused again by a service that does not know it.
- **Failures**, in the error dialect of the route (the table's ``dialect_of``): a service that
  refuses the connection, cannot be reached in ``GATEWAY_CONNECT_TIMEOUT_S``, or has every
  pooled connection busy is down for now: 503 with ``Retry-After``. No answer in time: 504
  (``GATEWAY_TIMEOUT_S`` for reads, ``GATEWAY_TRANSFER_TIMEOUT_S`` for the routes that move
  bodies, :func:`moves_bytes`). A broken or malformed answer: 502. A failure once the answer
  has started cannot change its status: the connection is closed before the answer's end, which
  every client sees as an incomplete answer (a short ``Content-Length`` or no last chunk).
  A client that goes away mid-upload aborts the service's request the same way, so the service
  stores nothing of it.
- **Paths.** Only a canonical path is forwarded (:func:`path_refusal`): no ``.`` or ``..``
  segment (``%2e%2e`` included), no empty segment (``//``), no encoded ``/`` or ``\\``. The path
  sent is the client's raw one, so the service routes exactly what the gateway matched.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import structlog
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from opentelemetry import propagate, trace
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.dialects import Dialect
from cmf_common.errors import DomainError, Unavailable

log = structlog.get_logger("cmf.gateway")

DialectOf = Callable[[str], Dialect]

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded. ``host`` is set by the
# proxy itself; ``content-length`` is kept (a streamed body keeps its declared length).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Judged by the gateway, not again by the service (module docstring).
JUDGED = frozenset({b"origin", b"sec-fetch-site"})
# The gateway's own answer carries these (its request id, once).
OWN_ANSWER = frozenset({b"x-request-id"})
REQUEST_ID = b"x-request-id"
RETRY_AFTER_S = 1
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BadGateway(DomainError):
    status = 502
    code = "bad_gateway"
    title = "Bad gateway"


class GatewayTimeout(DomainError):
    status = 504
    code = "gateway_timeout"
    title = "Gateway timeout"


class BadPath(DomainError):
    status = 400
    code = "bad_path"
    title = "Bad path"


class ServiceDown(Unavailable):
    code = "service_unavailable"


class _ClientGone(Exception):
    """The client disconnected while its body was being forwarded."""


@dataclass(frozen=True)
class Timeouts:
    """How long a service may take (each wait for its next bytes): ``read`` for most routes,
    ``transfer`` for those that move bodies; ``connect`` to reach it at all."""

    read: float = 30.0
    transfer: float = 600.0
    connect: float = 3.0


def moves_bytes(route: BaseRoute, method: str) -> bool:
    """Whether a request of ``method`` to ``route`` moves a body worth the long timeout: one
    with a body (pushes, uploads), or a route whose answer is not JSON (pulls, downloads, the
    export's NDJSON, the reference's ``text/html`` pull)."""
    if method in BODY_METHODS:
        return True
    if not isinstance(route, APIRoute):
        return False
    ok = route.responses.get(200) or route.responses.get("200") or {}
    if set(ok.get("content", {})) - {"application/json"}:
        return True
    answer = route.response_class
    if isinstance(answer, DefaultPlaceholder):
        return False
    return not (isinstance(answer, type) and issubclass(answer, JSONResponse))


def path_refusal(scope: Scope) -> BadPath | None:
    """Why the request's path is not forwarded, or ``None`` when it is canonical."""
    raw = scope.get("raw_path") or scope["path"].encode("latin-1")
    raw = raw.split(b"?", 1)[0]
    lowered = raw.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"\\" in raw:
        return BadPath("the path holds an encoded slash or a backslash")
    segments = scope["path"].split("/")[1:]
    if any(s in (".", "..") for s in segments) or any(
        s == "" for s in segments[:-1]
    ):  # a trailing slash is the one empty segment allowed
        return BadPath("the path holds a '.', '..' or empty segment")
    if any(s in (b".", b"..") for s in raw.split(b"/")[1:]):
        return BadPath("the path holds a '.' or '..' segment")
    return None


def _connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The headers a ``Connection`` header names: hop-by-hop too."""
    return frozenset(
        token.strip().lower()
        for key, value in headers
        if key == b"connection"
        for token in value.split(b",")
    )


def _forwarded(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request headers to send on: hop-by-hop and judged ones dropped, the forwarding
    headers added, the trace context carried."""
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or ())
    dropped = HOP_BY_HOP | JUDGED | _connection_named(headers)
    out = [(k, v) for k, v in headers if k not in dropped]
    client = scope.get("client")
    if client:
        previous = [v for k, v in out if k == b"x-forwarded-for"]
        out = [(k, v) for k, v in out if k != b"x-forwarded-for"]
        chain = b", ".join([*previous, str(client[0]).encode("latin-1")])
        out.append((b"x-forwarded-for", chain))
    out = [(k, v) for k, v in out if k not in (b"x-forwarded-proto", b"x-forwarded-host")]
    out.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    host = next((v for k, v in headers if k == b"host"), None)
    if host is not None:
        out.append((b"x-forwarded-host", host))
    return _traced(out)


def _traced(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The trace context the service continues: the gateway's span when it is part of the
    client's trace (or the client sent none), else the client's own, untouched."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return headers
    sent = next((v for k, v in headers if k == b"traceparent"), None)
    if sent is not None and sent[3:35] != f"{span.trace_id:032x}".encode():
        return headers
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    kept = [(k, v) for k, v in headers if k not in (b"traceparent", b"tracestate")]
    return kept + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in carrier.items()]


def _answer_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    pairs = list(headers)
    dropped = HOP_BY_HOP | OWN_ANSWER | _connection_named(pairs)
    return [(k, v) for k, v in pairs if k not in dropped]


def _has_body(scope: Scope) -> bool:
    for key, value in scope.get("headers") or ():
        if key == b"transfer-encoding":
            return True
        if key == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


class Upstream:
    """An ASGI app that forwards every request to the service at ``base_url`` (module
    docstring). Its pool exists while :meth:`opened` is entered (the gateway's lifespan)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        dialect_of: DialectOf,
        timeouts: Timeouts = Timeouts(),
        route_of: Callable[[str], BaseRoute | None] = lambda _: None,
        connections: int = 100,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.dialect_of = dialect_of
        self.timeouts = timeouts
        self.route_of = route_of
        self.connections = connections
        self._base = httpx.URL(self.base_url)
        self._timeouts = {
            long: httpx.Timeout(
                timeouts.transfer if long else timeouts.read,
                connect=timeouts.connect,
                pool=timeouts.connect,
            ).as_dict()
            for long in (False, True)
        }
        self._transport: httpx.AsyncHTTPTransport | None = None

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[httpx.AsyncHTTPTransport]:
        """The service's pool of kept-alive connections, closed on exit.

        The transport is used without an ``httpx.AsyncClient`` around it: a client would add
        its default headers (``Accept-Encoding``, ``User-Agent``) to every forwarded request and
        keep the services' cookies in a jar shared by every user of the gateway."""
        limits = httpx.Limits(
            max_connections=self.connections,
            max_keepalive_connections=self.connections,
            keepalive_expiry=4.0,  # below the services' HTTP_KEEP_ALIVE_TIMEOUT_S (5 s)
        )
        transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
        self._transport = transport
        try:
            yield transport
        finally:
            self._transport = None
            await transport.aclose()

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        if self._transport is None:
            raise RuntimeError(f"the {self.name} upstream is not open (the gateway's lifespan)")
        return self._transport

    def _timeout(self, scope: Scope) -> dict[str, float | None]:
        route = self.route_of(scope["path"])
        return self._timeouts[route is not None and moves_bytes(route, scope["method"])]

    def _url(self, scope: Scope) -> httpx.URL:
        raw = scope.get("raw_path") or scope["path"].encode("latin-1")
        query = scope.get("query_string") or b""
        target = raw + (b"?" + query if query else b"")
        return self._base.copy_with(raw_path=target)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        transport = self.transport
        has_body = _has_body(scope)

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        request = httpx.Request(
            scope["method"],
            self._url(scope),
            headers=_forwarded(scope),
            content=body() if has_body else None,
            extensions={"timeout": self._timeout(scope)},
        )
        try:
            response = await transport.handle_async_request(request)
        except _ClientGone:
            log.info("proxy.client_gone", service=self.name, path=scope["path"])
            return
        except httpx.HTTPError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _answer_headers(response.headers.raw),
                }
            )
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as exc:
            # Too late for a status: the connection closes before the answer's end.
            log.warning(
                "proxy.upstream_broke",
                service=self.name,
                path=scope["path"],
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
        finally:
            await response.aclose()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        error = _error_for(self.name, exc)
        log.warning(
            "proxy.upstream_failed",
            service=self.name,
            path=scope["path"],
            status=error.status,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        answer = self.dialect_of(scope["path"]).domain_error(error)
        if isinstance(error, Unavailable):
            answer.headers["Retry-After"] = str(error.retry_after_s)
        if _has_body(scope):
            answer.headers["connection"] = "close"  # the rest of the body is not read
        await answer(scope, receive, send)


def _error_for(service: str, exc: Exception) -> DomainError:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ConnectError):
        return ServiceDown(
            f"the {service} service is not reachable for now; retry shortly",
            retry_after_s=RETRY_AFTER_S,
        )
    if isinstance(exc, httpx.TimeoutException):
        return GatewayTimeout(f"the {service} service did not answer in time")
    return BadGateway(f"the {service} service gave no valid answer")


class RequestIds:
    """Gives a request without ``X-Request-ID`` one, in its scope, so the gateway's logs, the
    service it reaches and the answer all carry the same id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(k == REQUEST_ID for k, _ in scope["headers"]):
            scope = {
                **scope,
                "headers": [*scope["headers"], (REQUEST_ID, uuid.uuid4().hex.encode())],
            }
        await self.app(scope, receive, send)
