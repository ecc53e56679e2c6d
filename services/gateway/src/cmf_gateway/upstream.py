"""The gateway's HTTP/1.1 client to one service: a pool of kept-alive connections, each an
asyncio protocol over llhttp (``httptools``, the parser uvicorn serves with).

Why not httpx (which the gateway used first): a proxy must relay ``Expect: 100-continue``
(RFC 9110 §10.1.1). The client waits for the service's verdict on the request's head before it
sends a body: a ``100 Continue`` (then the body streams), or a final answer such as a 401, 413 or
409 (then no body is sent at all, and the client is spared uploading a gigabyte for nothing).
httpcore writes a request's body straight after its head and reads nothing until it is all
sent, so it cannot wait for the interim answer; here the connection reads while it writes, so
:meth:`Connection.wait_continue` can. The same design is also cheaper per request and per
chunk (the C parser, no anyio streams), which the gateway's latency and throughput budgets
need (bench/RESULTS.md, "Gateway").

A :class:`Connection` holds one request at a time. Its answer's body is queued as it arrives,
at most ``HIGH_WATER`` bytes (then the socket stops being read until the proxy has sent some
on), so memory stays flat whatever the size. Failures are raised as the exceptions below, which
``cmf_gateway.proxy`` maps to the route's 502, 503 or 504.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import httptools

HIGH_WATER = 1 << 20  # answer bytes queued before the socket is paused
LOW_WATER = 256 << 10  # and resumed once the queue is back under this
INTERIM_CONTINUE = 100


def _now() -> float:
    return asyncio.get_running_loop().time()


class UpstreamError(Exception):
    """The service could not be used for this request."""


class Unreachable(UpstreamError):
    """Connecting failed or timed out, or no pooled connection was free in time."""


class NoAnswer(UpstreamError):
    """No bytes arrived from the service within the timeout."""


class BadAnswer(UpstreamError):
    """The service's answer is not HTTP, or it closed the connection before its end."""


class Connection(asyncio.Protocol):
    """One connection to the service (module docstring)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()  # made by the pool's loop, used on it only
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.failure: str | None = None  # why the answer cannot be read on
        self.requests = 0
        self.idle_since = 0.0
        self._wakeup: asyncio.Future[None] | None = None
        self._writable = True
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        self.head_only = head_only  # a HEAD request: its answer has no body whatever it says
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.interim: int | None = None  # the 1xx answers' status seen since the request
        self.spoiled = False  # its request's body was not all sent: never reused
        self.answered = False  # a final answer's head is in
        self.keep_alive = False  # and it lets the connection be used again
        self.complete = False  # and its body
        self.chunks: deque[bytes] = deque()
        self.queued = 0
        self._paused = False
        self._received = False  # any byte of an answer to this request

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.failure = f"the answer is not valid HTTP ({exc})"[:300]
            self._close()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable = True
        self._wake()

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake()

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes | None) -> None:
        self.headers.append((name.lower(), value or b""))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = status  # a 100 Continue (or a 103): the final answer follows
            self.headers = []
            return
        self.status = status
        self.answered = True
        # Read now: llhttp forgets the message's flags once it is complete.
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only:
            # llhttp cannot be told the request was a HEAD; the connection is not reused.
            self.complete = True

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self.chunks.append(body)
        self.queued += len(body)
        if self.queued > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.answered:
            self.complete = True

    # What the proxy calls

    @property
    def reusable(self) -> bool:
        """Whether another request may be sent on it (its last answer read to its end)."""
        return (
            not self.closed
            and self.failure is None
            and self.complete
            and not self.head_only
            and not self.spoiled
            and self.keep_alive
        )

    def begin(self, head: bytes, *, head_only: bool) -> None:
        """Send a request's head (its body, if any, follows through :meth:`write`)."""
        self._reset(head_only=head_only)
        self.requests += 1
        self.write(head)

    @property
    def fresh(self) -> bool:
        """Whether nothing of an answer to the current request has arrived yet."""
        return not self._received

    def write(self, data: bytes | memoryview) -> None:
        if self.transport is None or self.closed:
            raise BadAnswer("the service closed the connection")
        self.transport.write(data)

    async def drain(self, wait_s: float) -> None:
        """Wait until the socket takes more (the service reads the body), or it closes."""
        deadline = self._loop.time() + wait_s
        while not self._writable and not self.closed and not self.answered:
            await self._wait(deadline)

    async def wait_continue(self, wait_s: float) -> bool:
        """After an ``Expect: 100-continue`` head: ``True`` when the service asked for the
        body (or, as RFC 9110 lets a client, said nothing in ``wait_s``), ``False`` when its
        final answer came first."""
        deadline = self._loop.time() + wait_s
        while self.interim != INTERIM_CONTINUE and not self.answered:
            self._check()
            try:
                await self._wait(deadline)
            except NoAnswer:
                return True
        return not self.answered

    async def answer(self, wait_s: float) -> None:
        """Wait for the final answer's head (``status``, ``headers``)."""
        deadline = self._loop.time() + wait_s
        while not self.answered:
            self._check()
            await self._wait(deadline)

    async def body(self, wait_s: float) -> AsyncIterator[bytes]:
        """The answer's body as it arrives, each wait for more at most ``wait_s``."""
        while True:
            while self.chunks:
                chunk = self.chunks.popleft()
                self.queued -= len(chunk)
                if self._paused and self.queued < LOW_WATER and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
            if self.complete:
                return
            self._check()
            await self._wait(self._loop.time() + wait_s)

    def whole_body(self, limit: int) -> bytes | None:
        """The answer's whole body when all of it is in (and at most ``limit`` bytes), taken
        off the queue; else ``None`` (then :meth:`body` streams it)."""
        if not self.complete or self._paused or self.queued > limit:
            return None
        chunks = self.chunks
        whole = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.queued = 0
        return whole

    def abort(self) -> None:
        """Drop the connection at once (a request abandoned midway: the service sees its body
        end early)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _check(self) -> None:
        if self.failure is not None:
            raise BadAnswer(self.failure)
        if self.closed:
            raise BadAnswer("the service closed the connection before its answer's end")

    async def _wait(self, deadline: float) -> None:
        """Until the next event on the connection (bytes in, room to write, closed), or
        ``NoAnswer`` at ``deadline`` (the loop's clock). A timer on the loop rather than
        ``asyncio.wait_for``: this runs once per chunk of a body."""
        loop = self._loop
        if deadline <= loop.time():
            raise NoAnswer("the service sent nothing in time")
        waker = loop.create_future()
        self._wakeup = waker
        timer = loop.call_at(deadline, _expire, waker)
        try:
            await waker
        finally:
            timer.cancel()
            self._wakeup = None

    def _wake(self) -> None:
        waker = self._wakeup
        if waker is not None and not waker.done():
            waker.set_result(None)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expire(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_exception(NoAnswer("the service sent nothing in time"))


class Pool:
    """At most ``size`` connections to ``host:port``; an idle one is reused (the most recent
    first) until it has idled ``keepalive_s``, below the service's own keep-alive timeout, so
    the service never closes one as a request is sent on it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int,
        keepalive_s: float = 4.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.size = size
        self.keepalive_s = keepalive_s
        self.idle: list[Connection] = []
        self.count = 0  # open or being opened
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def acquire(self, wait_s: float) -> Connection:
        """A connection for one request: an idle one, or a new one; ``Unreachable`` when
        none is free or connecting fails within ``wait_s``."""
        reused = self._idle()
        if reused is not None:
            return reused
        deadline = _now() + wait_s
        while True:
            reused = self._idle()
            if reused is not None:
                return reused
            if self.count < self.size:
                return await self._open(deadline)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(deadline - _now(), 0))
            except TimeoutError:
                raise Unreachable(f"all {self.size} connections stayed busy") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, connection: Connection) -> None:
        """Hand a connection back after its request: kept when reusable, else closed."""
        if connection.reusable and not self._closed:
            connection.idle_since = _now()
            self.idle.append(connection)
        else:
            if not connection.closed:
                connection.abort()
            self.count -= 1
        self._notify()

    async def close(self) -> None:
        self._closed = True
        for connection in self.idle:
            connection.abort()
        self.count -= len(self.idle)
        self.idle.clear()

    def _idle(self) -> Connection | None:
        now = _now()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive_s:
                return connection
            connection.abort()
            self.count -= 1
        return None

    async def _open(self, deadline: float) -> Connection:
        self.count += 1
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    Connection,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls is not None else None,
                ),
                max(deadline - _now(), 0),
            )
        except TimeoutError:
            self.count -= 1
            self._notify()
            raise Unreachable("connecting took too long") from None
        except OSError as exc:
            self.count -= 1
            self._notify()
            raise Unreachable(f"connecting failed ({exc.strerror or exc})") from None
        return connection

    def _notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


@asynccontextmanager
async def pooled(
    host: str, port: int, *, size: int, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Pool]:
    pool = Pool(host, port, size=size, tls=tls)
    try:
        yield pool
    finally:
        await pool.close()
