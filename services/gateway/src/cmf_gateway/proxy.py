"""The gateway's HTTP transport: each service reached at a URL (distributed mode).

The gateway's route table says which service answers a path (``cmf_gateway.routing``); in the
embedded server that service is an app in the same process, here it is an :class:`Upstream`,
an ASGI app that forwards the request to the service's URL and streams the answer back. One
table, two transports.

- **Connections.** One pool per service (``cmf_gateway.upstream``), opened in the gateway's
  lifespan (:meth:`Upstream.opened`): HTTP/1.1 with kept-alive connections
  (``GATEWAY_UPSTREAM_CONNECTIONS``), so a request rarely pays a TCP handshake; a kept-alive
  connection the service had just closed is retried once on a new one (a request without a
  body, before any byte of an answer).
- **Bodies.** Streamed both ways, one chunk in hand at a time: the request body is read from
  the client as the service reads it (``Content-Length`` kept, so the service's body limit
  refuses an oversized one before it is sent), the answer is sent to the client as it arrives
  (encodings untouched). A 1 GiB upload or download never sits in memory.
- **Expect: 100-continue** (curl sends it for bodies over 1 KiB) goes to the service, and the
  body is read from the client only once the service asks for it: the client gets the
  service's ``100 Continue``, or its final answer first (a 401, 413, 409...), and then sends
  no body (RFC 9110 §10.1.1). A service that says nothing for ``CONTINUE_WAIT_S`` gets the
  body anyway. An answer that comes before the body is all sent closes the client's
  connection (``Connection: close``): the rest of its body is not read.
- **Headers.** Hop-by-hop headers (RFC 9110 §7.6.1, and those ``Connection`` names) are not
  forwarded either way. ``Host`` is the client's, so the service's redirects and links name
  the gateway; ``X-Forwarded-For``/``-Proto``/``-Host`` say who asked. ``X-Request-ID`` (made
  at the gateway's edge when the client sent none) and the trace context
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

import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import structlog
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from opentelemetry import trace
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from cmf_common.dialects import Dialect, Entry
from cmf_common.edge import has_body
from cmf_common.errors import DomainError, Unavailable
from cmf_common.tracing import current_trace_headers
from cmf_gateway.routing import ROUTE_ENTRY
from cmf_gateway.upstream import (
    Connection,
    NoAnswer,
    Pool,
    Unreachable,
    UpstreamError,
    pooled,
)

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
# Not copied as they came: the forwarding headers are made anew.
NOT_FORWARDED = (
    HOP_BY_HOP | JUDGED | {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
)
# The gateway's own answer carries these, once: its request id, and (as nginx does) the
# ``Date`` and ``Server`` of the HTTP server it runs in, which adds them to every answer.
OWN_ANSWER = frozenset({b"x-request-id", b"date", b"server"})
NOT_ANSWERED = HOP_BY_HOP | OWN_ANSWER
REQUEST_ID = b"x-request-id"
RETRY_AFTER_S = 1
# How long a request that said ``Expect: 100-continue`` waits for the service's verdict before
# its body is sent anyway (RFC 9110 §10.1.1 lets a client stop waiting; curl waits 1 s).
CONTINUE_WAIT_S = 1.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# An answer whose body is all in, up to this size, is sent on in one message.
WHOLE_BYTES = 256 << 10


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
    problem = _path_problem(raw.split(b"?", 1)[0], scope["path"])
    return BadPath(problem) if problem is not None else None


@lru_cache(maxsize=4096)
def _path_problem(raw: bytes, path: str) -> str | None:
    """What is wrong with a path (``raw`` as sent, ``path`` decoded), judged once a path."""
    lowered = raw.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"\\" in raw:
        return "the path holds an encoded slash or a backslash"
    segments = path.split("/")[1:]
    if any(s in (".", "..") for s in segments) or any(
        s == "" for s in segments[:-1]
    ):  # a trailing slash is the one empty segment allowed
        return "the path holds a '.', '..' or empty segment"
    if any(s in (b".", b"..") for s in raw.split(b"/")[1:]):
        return "the path holds a '.' or '..' segment"
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
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    dropped = NOT_FORWARDED
    if any(k == b"connection" for k, _ in headers):
        dropped = dropped | _connection_named(headers)
    out: list[tuple[bytes, bytes]] = []
    chain: list[bytes] = []
    host: bytes | None = None
    for key, value in headers:
        if key in dropped:
            if key == b"x-forwarded-for":
                chain.append(value)
            continue
        if key == b"host" and host is None:
            host = value
        out.append((key, value))
    client = scope.get("client")
    if client:
        chain.append(str(client[0]).encode("latin-1"))
    if chain:
        out.append((b"x-forwarded-for", b", ".join(chain)))
    out.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
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
    if sent is not None and sent[3:35] != b"%032x" % span.trace_id:
        return headers
    kept = [(k, v) for k, v in headers if k not in (b"traceparent", b"tracestate")]
    return kept + current_trace_headers()


def _answer_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    dropped = NOT_ANSWERED
    if any(k == b"connection" for k, _ in headers):
        dropped = dropped | _connection_named(headers)
    return [(k, v) for k, v in headers if k not in dropped]


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
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the {name} service's URL is not http(s)://host[:port]: {base_url}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = parts.scheme == "https"
        self._netloc = parts.netloc.rpartition("@")[2].encode("latin-1")
        self._pool: Pool | None = None
        self._long: dict[tuple[int, str], bool] = {}  # moves_bytes, by route and method

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Pool]:
        """The service's pool of kept-alive connections (``cmf_gateway.upstream``), closed on
        exit. Nothing is added to a forwarded request but the forwarding headers: no default
        ``User-Agent`` or ``Accept-Encoding``, no cookie jar shared by every user."""
        tls = ssl.create_default_context() if self._tls else None
        async with pooled(self._host, self._port, size=self.connections, tls=tls) as pool:
            self._pool = pool
            try:
                yield pool
            finally:
                self._pool = None

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError(f"the {self.name} upstream is not open (the gateway's lifespan)")
        return self._pool

    def _timeout(self, scope: Scope) -> float:
        """The route's timeout: the one its table entry (``ROUTE_ENTRY``, as the gateway
        matched it) or ``route_of`` names, judged once a route and method."""
        entry = scope.get(ROUTE_ENTRY)
        route = entry.route if isinstance(entry, Entry) else self.route_of(scope["path"])
        if route is None:
            return self.timeouts.read
        key = (id(route), scope["method"])
        long = self._long.get(key)
        if long is None:
            long = self._long[key] = moves_bytes(route, scope["method"])
        return self.timeouts.transfer if long else self.timeouts.read

    def _head(self, scope: Scope, body: bool) -> tuple[bytes, bool]:
        """The request's head as sent to the service, and whether its body goes chunked (the
        client's did: a request without ``Content-Length``)."""
        headers = _forwarded(scope)
        names = {k for k, _ in headers}
        chunked = body and b"content-length" not in names
        if chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        elif not body and scope["method"] in BODY_METHODS and b"content-length" not in names:
            headers.append((b"content-length", b"0"))
        if b"host" not in names:
            headers.append((b"host", self._netloc))
        raw = scope.get("raw_path") or scope["path"].encode("latin-1")
        query = scope.get("query_string") or b""
        target = raw + (b"?" + query if query else b"")
        lines = [scope["method"].encode("latin-1"), b" ", target, b" HTTP/1.1\r\n"]
        for key, value in headers:
            lines += (key, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        return b"".join(lines), chunked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        pool = self.pool
        with_body = has_body(scope)
        head, chunked = self._head(scope, with_body)
        expects = with_body and _expects_continue(scope)
        timeout = self._timeout(scope)
        started = False
        for attempt in range(2):
            try:
                connection = await pool.acquire(self.timeouts.connect)
            except UpstreamError as exc:
                await self._refuse(scope, receive, send, exc)
                return
            reused = connection.requests > 0
            try:
                connection.begin(head, head_only=scope["method"] == "HEAD")
                sent_all = not with_body
                if with_body and (
                    not expects or await connection.wait_continue(min(timeout, CONTINUE_WAIT_S))
                ):
                    sent_all = await _send_body(connection, receive, chunked, timeout)
                await connection.answer(timeout)
                headers = _answer_headers(connection.headers)
                if not sent_all:
                    # Answered before the body was all sent (a refusal): the rest of the
                    # client's body is not read, and the service's connection is not reused.
                    headers.append((b"connection", b"close"))
                    connection.spoiled = True
                await send(
                    {"type": "http.response.start", "status": connection.status, "headers": headers}
                )
                started = True
                whole = connection.whole_body(WHOLE_BYTES)
                if whole is not None:
                    # All of it is in (most answers): one message, not a chunk and an end.
                    await send({"type": "http.response.body", "body": whole, "more_body": False})
                    return
                async for chunk in connection.body(timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            except _ClientGone:
                connection.abort()
                log.info("proxy.client_gone", service=self.name, path=scope["path"])
                return
            except BaseException as exc:
                connection.abort()
                if not isinstance(exc, UpstreamError):
                    raise  # the body's own refusal (its limit), a cancellation, a bug
                if started:
                    # Too late for a status: the connection closes before the answer's end.
                    log.warning(
                        "proxy.upstream_broke",
                        service=self.name,
                        path=scope["path"],
                        error=f"{type(exc).__name__}: {exc}"[:300],
                    )
                    return
                if attempt == 0 and reused and not with_body and connection.fresh:
                    continue  # a kept-alive connection the service had just closed: once more
                await self._refuse(scope, receive, send, exc)
                return
            finally:
                pool.release(connection)

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
        if has_body(scope):
            answer.headers["connection"] = "close"  # the rest of the body is not read
        await answer(scope, receive, send)


async def _send_body(
    connection: Connection, receive: Receive, chunked: bool, wait_s: float
) -> bool:
    """Forward the client's body as it arrives; ``True`` once all of it is sent, ``False``
    when the service answered (or closed) first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if chunk:
            connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drain(wait_s)
        if connection.answered or connection.closed:
            return False
        if not more:
            if chunked:
                connection.write(b"0\r\n\r\n")
            return True


def _expects_continue(scope: Scope) -> bool:
    return any(k == b"expect" and v.strip().lower() == b"100-continue" for k, v in scope["headers"])


def _error_for(service: str, exc: Exception) -> DomainError:
    if isinstance(exc, Unreachable):
        return ServiceDown(
            f"the {service} service is not reachable for now; retry shortly",
            retry_after_s=RETRY_AFTER_S,
        )
    if isinstance(exc, NoAnswer):
        return GatewayTimeout(f"the {service} service did not answer in time")
    return BadGateway(f"the {service} service gave no valid answer")
