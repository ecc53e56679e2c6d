"""How every ``cmf-server`` process serves HTTP: uvicorn, with the limits of the HTTP edge.

``cmf-server up``, ``serve`` and ``worker`` all run their app through :func:`serve`, so one
place says how a process listens. The limits come from the process's settings
(``cmf_common.settings.ServiceSettings``; docs/architecture.md, "Limits and timeouts").

uvicorn's own knobs fall short of them, so :class:`EdgeProtocol`, a subclass of its
httptools protocol (the one ``uvicorn[standard]`` runs, and the fastest), adds what it lacks:

- **Idle connections.** uvicorn arms its keep-alive timer only after a response: a
  connection that never sends a byte stays open for ever. Here the same timer runs from
  the moment a connection is made.
- **Header time.** uvicorn has no timer between a request's first byte and the end of its
  headers (a client sending a header byte now and then holds the connection for ever): 408
  after ``http_header_timeout_s``.
- **Header size.** httptools has no limit on the request line and headers (it gathers a
  header in memory until it ends: 20 unfinished 50 MB headers took a server to 1 GB), and
  uvicorn's ``h11_max_incomplete_event_size`` bounds only its h11 protocol, where it answers
  400. Here the bytes of a request head are counted before they reach the parser: 431 past
  ``http_max_header_bytes``, so an unfinished head pins at most that much.
- **The connection cap.** uvicorn's ``limit_concurrency`` counts idle connections too and
  answers 503 to every new request once it is reached, so 1,000 idle connections shut everyone
  out, pushes included. Here, at ``http_max_connections`` a new connection closes the one idle
  the longest (no request in flight: between requests, or still sending its head); only when
  every connection is busy does the new one get 503 with ``Retry-After``.
- **Closing properly.** uvicorn closes the socket as soon as a ``Connection: close`` answer is
  written. If the client is still sending (a body the answer did not read, a head refused
  with 431), the kernel then resets the connection, and the client may never read the answer.
  Here such a close sends the answer and a FIN, then reads and drops what still arrives for
  up to ``LINGER_S`` (and ``DRAIN_BYTES``) before closing (the "lingering close" of Apache
  and nginx). An answer given before its body was read keeps the connection alive while the
  rest of that body is small enough to drain (``DRAIN_BYTES``, within the header timeout), and
  closes it past that.
- **One write an answer.** uvicorn writes an answer's head and each part of its body with a
  write each; a small answer goes out here in one (``_Transport``, ``CORK_BYTES``), which on
  loopback (the gateway and its services) spares a ``send`` a request on either side.

The body-read timeout needs to know whether the app is reading, so it is ASGI middleware
(``cmf_common.edge.BodyReadDeadline``), as are the cross-origin guard and the 500 that keeps
the connection usable.
"""

from __future__ import annotations

import asyncio
import itertools
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cmf_common.dialects import DEFAULT_DIALECT, Dialect
from cmf_common.edge import RequestTimeout
from cmf_common.errors import DomainError
from cmf_common.settings import ServiceSettings

log = structlog.get_logger("cmf.http")

DialectOf = Callable[[str], Dialect]

# How long a closing connection still reads (and drops) what the client sends.
LINGER_S = 2.0
# How much of a body an answer did not read is read and dropped to keep the connection alive,
# and how much a closing connection drops at most before it closes.
DRAIN_BYTES = 1 << 20
# What a client is told to wait before it tries again when every connection is busy.
RETRY_AFTER_S = 1
# Writes smaller than this are held to go out with the next (``_Transport``).
CORK_BYTES = 64 << 10
GRACEFUL_SHUTDOWN_S = 30
_IDLE_ORDER = itertools.count()


class HeaderFieldsTooLarge(DomainError):
    status = 431
    code = "header_fields_too_large"
    title = "Request header fields too large"


class OverCapacity(DomainError):
    status = 503
    code = "over_capacity"
    title = "Too many connections"


class _Transport:
    """The connection's transport as uvicorn's request cycles see it: ``close`` ends the
    connection as :meth:`EdgeProtocol.close_connection` does; all else is the transport's.

    Small writes are held and sent together (module docstring, "One write an answer"): uvicorn
    writes an answer's head and each part of its body apart, each a ``send`` of its own, and
    on loopback a ``send`` costs the sender the receiver's side of TCP too. What is held goes
    out when the answer is complete (:meth:`EdgeProtocol.on_response_complete`), when it
    passes ``CORK_BYTES``, before the connection closes, and at the latest once the loop has
    run the task that wrote it (so a streamed answer's head never waits for its body)."""

    def __init__(
        self,
        transport: asyncio.Transport,
        close: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._transport = transport
        self._close = close
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._held:
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes >= CORK_BYTES:
                self.flush()
            return
        if len(data) >= CORK_BYTES:
            self._transport.write(data)
            return
        self._held.append(data)
        self._held_bytes = len(data)
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what is held, in one write."""
        held = self._held
        if not held:
            return
        self._held = []
        self._held_bytes = 0
        if self._transport.is_closing():
            return
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.writelines(held)

    def close(self) -> None:
        self.flush()
        self._close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass(frozen=True)
class Edge:
    """What a process's connections are held to, and the dialect of a path they refuse."""

    settings: ServiceSettings
    dialect_of: DialectOf


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module's docstring."""

    edge: ClassVar[Edge]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.edge.settings.http_keep_alive_timeout_s  # type: ignore[assignment]
        self._raw: asyncio.Transport | None = None
        self._out: _Transport | None = None  # what uvicorn writes to: ``_raw``, writes held
        self._in_message = False  # between the end of a request's head and the end of its body
        self._head_bytes = 0  # bytes of the request head being read
        self._drained = 0  # body bytes dropped after the request was answered
        self._timer: TimerHandle | None = None  # the head's deadline, or the drain's
        self._lingering = False
        self._over_capacity = False
        self.idle_since = self._now()

    def _now(self) -> tuple[float, int]:
        """When this connection went idle, ordered: uvloop's clock advances once per loop
        iteration, so connections accepted together would tie (and shed in set order)."""
        return self.loop.time(), next(_IDLE_ORDER)

    # The connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._make_room()
        super().connection_made(transport)
        self._raw = transport
        self._out = _Transport(transport, self.close_connection, self.loop)
        self.transport = self._out  # type: ignore[assignment]
        self._arm_keep_alive()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        if self._lingering and self._raw is not None:
            self._raw.close()

    def is_idle(self) -> bool:
        """No request in flight: between requests, or its head still arriving."""
        return (
            not self._in_message
            and (self.cycle is None or self.cycle.response_complete)
            and not self._lingering
            and self._raw is not None
            and not self._raw.is_closing()
        )

    def _make_room(self) -> None:
        if len(self.connections) < self.edge.settings.http_max_connections:
            return
        idle = [c for c in self.connections if isinstance(c, EdgeProtocol) and c.is_idle()]
        if not idle:
            self._over_capacity = True
            return
        oldest = min(idle, key=lambda c: c.idle_since)
        log.info("http.connection_shed", connections=len(self.connections))
        assert oldest._raw is not None
        oldest._flush()
        oldest._raw.close()

    def close_connection(self) -> None:
        """Close, lingering when the client may still be sending (module docstring)."""
        raw = self._raw
        if raw is None or raw.is_closing() or self._lingering:
            return
        self._flush()
        self._cancel_timer()
        self._unset_keepalive_if_required()
        if not self._in_message and self._head_bytes == 0:
            raw.close()
            return
        self._lingering = True
        self._drained = 0
        if raw.can_write_eof():
            raw.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(LINGER_S, raw.close)

    def _flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    def _arm_keep_alive(self) -> None:
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(seconds, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # Bytes in

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drained += len(data)
            if self._drained > DRAIN_BYTES and self._raw is not None:
                self._raw.close()
            return
        if self._in_message:
            if self.cycle is not None and self.cycle.response_complete:
                # Answered before its body was read: uvicorn drops the rest; up to a bound.
                self._drained += len(data)
                if self._drained > DRAIN_BYTES:
                    self.close_connection()
                    return
            super().data_received(data)
            return
        if self._timer is None:
            self._arm(self.edge.settings.http_header_timeout_s, self._head_expired)
        room = self.edge.settings.http_max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed only what the limit allows: if the head ends within it, the rest is its body.
        self._head_bytes += room
        super().data_received(data[:room])
        if self._raw is None or self._raw.is_closing() or self._lingering:
            return
        if self._in_message:
            self.data_received(data[room:])
            return
        limit = self.edge.settings.http_max_header_bytes
        self._refuse(HeaderFieldsTooLarge(f"the request line and headers exceed {limit} bytes"))

    def on_headers_complete(self) -> None:
        self._in_message = True
        self._head_bytes = 0
        self._drained = 0
        self._cancel_timer()
        self.idle_since = self._now()
        if not self._over_capacity:
            super().on_headers_complete()
            return
        app, self.app = self.app, _over_capacity(self.edge.dialect_of)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._in_message = False
        self._cancel_timer()
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # The rest of a body answered early is in: the connection idles from now.
            self._arm_keep_alive()

    def on_response_complete(self) -> None:
        self._flush()  # the answer is whole: out now, not after the app's own epilogue
        super().on_response_complete()
        self.idle_since = self._now()
        if self._in_message and not self._lingering:
            # The rest of an unread body must come within the header timeout, or we close.
            self._arm(self.edge.settings.http_header_timeout_s, self.close_connection)

    def _head_expired(self) -> None:
        self._timer = None
        if self._raw is None or self._raw.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head during a long answer: its time starts when the answer is out.
            self._arm(self.edge.settings.http_header_timeout_s, self._head_expired)
            return
        self._refuse(
            RequestTimeout(
                f"the request headers did not arrive within "
                f"{self.edge.settings.http_header_timeout_s:g} s"
            )
        )

    def _refuse(self, error: DomainError) -> None:
        """Answer ``error`` before the request reaches the app, in its path's dialect (as
        much of the path as has arrived), and close the connection."""
        assert self._raw is not None
        url = bytes(getattr(self, "url", b"") or b"")
        path = url.split(b"?", 1)[0].decode("latin-1")
        log.info("http.refused", reason=error.code, path=path[:200])
        answer = self.edge.dialect_of(path).domain_error(error)
        head = [b"HTTP/1.1 %d %s\r\n" % (error.status, error.title.encode())]
        head += [b"%s: %s\r\n" % (k, v) for k, v in answer.raw_headers]
        head.append(b"connection: close\r\n\r\n")
        self._flush()
        self._raw.write(b"".join(head) + bytes(answer.body))
        self.close_connection()


def _over_capacity(dialect_of: DialectOf) -> ASGIApp:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        error = OverCapacity("the server has too many connections open; try again shortly")
        response = dialect_of(scope.get("path", "")).domain_error(error)
        response.headers["retry-after"] = str(RETRY_AFTER_S)
        response.headers["connection"] = "close"
        log.warning("http.over_capacity")
        await response(scope, receive, send)

    return answer


def edge_protocol(
    settings: ServiceSettings, dialect_of: DialectOf | None = None
) -> type[EdgeProtocol]:
    """The protocol class of a process with ``settings``; refusals answer in ``dialect_of``
    (default the reference dialect, as a path without a route does)."""
    edge = Edge(settings, dialect_of or _default_dialect)
    return type("EdgeProtocol", (EdgeProtocol,), {"edge": edge})


def _default_dialect(_: str) -> Dialect:
    return DEFAULT_DIALECT


def serve(
    app: ASGIApp,
    settings: ServiceSettings,
    *,
    host: str,
    port: int,
    dialect_of: DialectOf | None = None,
    graceful_shutdown_s: int = GRACEFUL_SHUTDOWN_S,
) -> None:
    """Serve ``app`` on ``host:port`` until a stop signal, with ``settings``' HTTP limits;
    over TLS when ``TLS_CERT_PATH`` and ``TLS_KEY_PATH`` are set."""
    tls: dict[str, Any] = {}
    if settings.tls_cert_path is not None and settings.tls_key_path is not None:
        tls = {
            "ssl_certfile": str(settings.tls_cert_path),
            "ssl_keyfile": str(settings.tls_key_path),
        }
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=edge_protocol(settings, dialect_of),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
        # Connections are capped (and shed) by EdgeProtocol; uvicorn's cap would 503 instead.
        limit_concurrency=None,
        **tls,
    )
