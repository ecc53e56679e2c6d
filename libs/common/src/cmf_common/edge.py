"""The HTTP edge of every app: pure ASGI middleware that judges a request before any route
works on it, and answers in the dialect of the path (``cmf_common.dialects``).

- :class:`CrossOriginGuard`: a browser page of an origin this process does not allow may not
  write (``POST``/``PUT``/``PATCH``/``DELETE``): 403, before its body is read. ``Host`` is checked
  against the allowed hosts when they are configured (a defence against DNS rebinding).
- :class:`BodyReadDeadline`: a request body that arrives slower than a minimum rate is cut off
  with 408.
- :class:`UnexpectedErrors`: an unexpected exception becomes the dialect's 500, sent as a
  complete response, so the keep-alive connection stays usable.

What the HTTP server itself bounds (header size and time, idle connections, the connection
cap) is ``cmf_server.serving``'s; docs/architecture.md, "Limits and timeouts", lists both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import structlog
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmf_common.dialects import Dialect, DialectRoute
from cmf_common.errors import DomainError, PayloadTooLarge, Unavailable

log = structlog.get_logger("cmf.http")

DialectOf = Callable[[str], Dialect]

# Requests that change state. A browser sends the others (GET, HEAD, OPTIONS) cross-origin
# freely too, but their answers are only readable by pages CORS allows.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# ``Sec-Fetch-Site`` values a browser sends for a request another site's page started.
CROSS_SITE = frozenset({b"cross-site", b"same-site"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class RequestTimeout(DomainError):
    status = 408
    code = "request_timeout"
    title = "Request timeout"


class MisdirectedRequest(DomainError):
    status = 421
    code = "misdirected_request"
    title = "Misdirected request"


class BadHost(DomainError):
    status = 400
    code = "bad_host"
    title = "Bad Host header"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


class ShuttingDown(Unavailable):
    code = "shutting_down"
    title = "Shutting down"


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body has passed its limit. The app it is raised in
    does not catch it (``cmf_common.edge.UnexpectedErrors`` answers it as the 413 it is when
    an app between lets it through)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"request body exceeds the limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


def has_body(scope: Scope) -> bool:
    """Whether the request says a body follows (a ``Transfer-Encoding``, or a
    ``Content-Length`` other than 0)."""
    length = None
    for key, value in scope.get("headers") or ():
        if key == b"transfer-encoding":
            return True
        if key == b"content-length":
            length = value
    return length is not None and length.strip() not in (b"", b"0")


def declared_over(scope: Scope, max_bytes: int) -> bool:
    """Whether the request's ``Content-Length`` is over ``max_bytes``."""
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            return value.isdigit() and int(value) > max_bytes
    return False


def too_large(error: BodyTooLarge, dialect: Dialect) -> JSONResponse:
    """The 413 in ``dialect``; the connection closes, as the body is left unread."""
    answer = dialect.domain_error(PayloadTooLarge(str(error)))
    answer.headers["connection"] = "close"
    return answer


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    dialect_of: DialectOf,
    error: DomainError,
    *,
    close: bool,
) -> None:
    answer = dialect_of(scope.get("path", "")).domain_error(error)
    if close:
        # The body is left unread: the server closes the connection after the answer rather
        # than read (and throw away) what may be a big upload.
        answer.headers["connection"] = "close"
    await answer(scope, receive, send)


def _split_host(authority: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (an IPv6 host in brackets) as (lower-case host without brackets, port or
    ``None``); ``None`` when it is not a valid authority."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0 or (authority[end + 1 :] and authority[end + 1] != ":"):
            return None
        host, port = authority[1:end], authority[end + 2 :]
    else:
        host, _, port = authority.partition(":")
        if ":" in port:
            return None
    if not host or any(c in host for c in "/?#@ \t\\[]"):
        return None
    if port and not port.isdigit():
        return None
    return host.lower(), int(port) if port else None


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        name = entry.lower().strip("[]")
        if name == "*" or host == name:
            return True
        if name.startswith(".") and (host == name[1:] or host.endswith(name)):
            return True
    return False


class CrossOriginGuard:
    """Refuses writes that a browser page of another origin started, and requests for a host
    this process does not serve.

    A browser marks what a page sends: ``Origin`` on every cross-origin request and on every
    non-GET one, and ``Sec-Fetch-Site`` (where it knows it, which a page cannot forge). A
    ``text/plain`` or multipart POST needs no CORS preflight, so without this a page the
    operator opens could push or upload to a server on their machine. A write is refused
    (403) when its ``Origin`` is neither one of ``allowed_origins`` (``*``: any) nor this
    server's own (the request's ``Host``), unless the browser says it is same-origin; and,
    with no ``Origin``, when ``Sec-Fetch-Site`` says another site. Clients that are not
    browsers (the cmf client, curl) send neither and pass.

    Same-origin pages pass, which a DNS-rebinding page also is (its origin is the attacker's
    name, resolved to this server): ``allowed_hosts`` stops that by the ``Host`` it sends. A
    ``Host`` that is not one of them is answered 421 Misdirected Request (RFC 9110 §15.5.20:
    the server will not answer for that authority, though the request is well formed); a
    missing or malformed ``Host`` 400, as RFC 9112 §3.2 asks.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Sequence[str],
        allowed_hosts: Sequence[str] | None,
        dialect_of: DialectOf,
    ) -> None:
        self.app = app
        self.any_origin = "*" in allowed_origins
        self.allowed_origins = frozenset(o.lower() for o in allowed_origins)
        self.allowed_hosts = tuple(allowed_hosts) if allowed_hosts is not None else None
        self.dialect_of = dialect_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.info("http.refused", reason=refusal.code, path=scope.get("path"))
        await _answer(scope, receive, send, self.dialect_of, refusal, close=has_body(scope))

    def refusal(self, scope: Scope) -> DomainError | None:
        """Why this request is refused, or ``None``."""
        safe = scope["method"] in SAFE_METHODS
        if safe and self.allowed_hosts is None:
            return None  # nothing to judge: the Host is read only to judge it
        raw_host = _header(scope, b"host")
        host = _split_host(raw_host.decode("latin-1")) if raw_host is not None else None
        if self.allowed_hosts is not None:
            if host is None:
                return BadHost("the request has no valid Host header")
            if not _host_allowed(host[0], self.allowed_hosts):
                return MisdirectedRequest(f"this server does not answer for host {host[0]!r}")
        if safe:
            return None
        origin = _header(scope, b"origin")
        site = _header(scope, b"sec-fetch-site")
        if origin is None:
            if site is not None and site.lower() in CROSS_SITE:
                return Forbidden("writes from another site's page are not allowed")
            return None
        text = origin.decode("latin-1").strip().rstrip("/").lower()
        if self.any_origin or text in self.allowed_origins:
            return None
        if site is not None and site.lower() == b"same-origin":
            return None
        if host is not None and _same_origin(text, host):
            return None
        return Forbidden(f"writes from pages of origin {text!r} are not allowed (see CORS_ORIGINS)")


def _same_origin(origin: str, host: tuple[str, int | None]) -> bool:
    """Whether ``origin`` names the server the request reached (its ``Host``). Behind a proxy
    that ends TLS the scheme the server sees may differ from the page's, so a ``Host`` without
    a port is compared by name; with one, by name and port."""
    parts = urlsplit(origin)
    if not parts.hostname:  # "null" (a sandboxed page, a file) among others
        return False
    try:
        origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    name, port = host
    return name == parts.hostname and (port is None or port == origin_port)


class WatchedSend:
    """``send``, noting whether the response has ``started``: from then on a failure can no
    longer be answered (the status and headers are gone)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class BodyReadDeadline:
    """Cuts off a request body that arrives too slowly: 408, and the connection closes.

    uvicorn has no body-read timeout, and an idle-time one would not do: a client sending a
    byte a second is never idle. So a body gets ``timeout_s``, plus a second for each
    ``min_rate`` bytes it has delivered (Apache's ``mod_reqtimeout`` rule): a large upload on a
    slow but honest link keeps going, a trickle is cut off after ``timeout_s``. Only time the
    app spends waiting for the client in ``receive`` counts, so a busy server that reads late
    never blames the client. Once cut off, the app sees the client as gone
    (``http.disconnect``) and what it then sends is dropped.
    """

    def __init__(
        self, app: ASGIApp, *, timeout_s: float, min_rate: int, dialect_of: DialectOf
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.min_rate = min_rate
        self.dialect_of = dialect_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        waited = 0.0
        received = 0
        complete = False
        cut_off = False
        watched = WatchedSend(send)

        async def timed_receive() -> Message:
            nonlocal waited, received, complete, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            if complete:
                return await receive()  # the body is in; what follows is the disconnect
            allowed = self.timeout_s + received / self.min_rate - waited
            before = time.monotonic()
            try:
                async with asyncio.timeout(max(allowed, 0.0)):
                    message = await receive()
            except TimeoutError:
                cut_off = True
                log.info("http.body_timeout", path=scope.get("path"), received=received)
                if not watched.started:
                    detail = (
                        f"the request body arrived too slowly ({received} bytes); it must come "
                        f"within {self.timeout_s:g} s plus 1 s per {self.min_rate} bytes"
                    )
                    await _answer(
                        scope, receive, send, self.dialect_of, RequestTimeout(detail), close=True
                    )
                return {"type": "http.disconnect"}
            finally:
                waited += time.monotonic() - before
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            if not cut_off:
                await watched(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not cut_off:
                raise
            # The app failed on the body it lost; the client already has its 408.


class UnexpectedErrors:
    """Answers an unexpected exception with the dialect's 500 as a whole response.

    Starlette's outermost ``ServerErrorMiddleware`` sends the 500 of an ``Exception`` handler
    and then re-raises; uvicorn, seeing the exception after a response has gone out, closes
    the connection without ``Connection: close``, so a client's next request on it fails. This
    middleware, inside it, answers and returns. An exception after the response started (a
    stream that fails midway) still propagates: that response cannot be completed, and the
    server closing the connection is the only honest end.
    """

    def __init__(self, app: ASGIApp, *, dialect_of: DialectOf) -> None:
        self.app = app
        self.dialect_of = dialect_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except ClientDisconnect:
            if watched.started:
                raise
            # The client went away while the app read its body: no one to answer.
        except BodyTooLarge as exc:
            if watched.started:
                raise
            # A limit outside this app (the gateway's, around a service in-process or its
            # proxy) stopped the body midway: the 413 it is, not a 500.
            await too_large(exc, self._dialect(scope))(scope, receive, send)
        except Exception as exc:
            if watched.started:
                raise
            log.exception("request.failed", error=type(exc).__name__)
            await self._dialect(scope).internal_error()(scope, receive, send)
        except asyncio.CancelledError:
            if watched.started:
                raise
            # The server is stopping and gave up waiting for this request (uvicorn cancels
            # what outlives its graceful shutdown, and would answer 500): what it began is
            # rolled back with its task, and the client is told to try again.
            log.warning("request.cut_off", path=scope.get("path", "")[:200])
            answer = self._dialect(scope).domain_error(
                ShuttingDown("the server stopped before this request was answered; retry")
            )
            answer.headers["Retry-After"] = "1"
            answer.headers["connection"] = "close"
            await answer(scope, receive, send)
            raise

    def _dialect(self, scope: Scope) -> Dialect:
        route = scope.get("route")
        if isinstance(route, DialectRoute):
            return route.dialect
        return self.dialect_of(scope.get("path", ""))
