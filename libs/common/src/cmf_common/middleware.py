"""Pure ASGI middleware: request ids, access logs, spans and HTTP metrics in one pass."""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmf_common.dialects import full_route_path
from cmf_common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from cmf_common.tracing import incoming_context, with_current_trace

log = structlog.get_logger("cmf.http")
REQUEST_ID = b"x-request-id"
# A proxy to the provider set later (``cmf_common.tracing.configure_tracing``): one lookup, not
# one a request.
_HOP_TRACER = trace.get_tracer("cmf.http")


# Where a proxy that forwards a request without routing it itself (the gateway of distributed
# mode) names the route template its table matched: the metrics, logs and spans read it first.
ROUTE_TEMPLATE = "cmf.route_template"


def route_template(scope: Scope) -> str | None:
    """The template of the route that answers the request: the one a proxy named
    (``ROUTE_TEMPLATE``), else the one routing found; ``None`` before either."""
    named = scope.get(ROUTE_TEMPLATE)
    if named:
        return str(named)
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:
        return None
    app = scope.get("app")
    if isinstance(app, FastAPI) and isinstance(route, BaseRoute):
        # The route's path is its router's; where that router is mounted is the app's.
        return full_route_path(app, route, scope["path"]) or str(path)
    return str(path)


def _request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == REQUEST_ID:
            return value.decode("latin-1")[:128] or None
    return None


# Each (service, route, method, status)'s children of the HTTP metrics: ``labels()`` checks and
# locks on every call. Bounded: routes are templates ("unmatched" for the rest).
_Children = tuple[Any, Any]
_CHILDREN: dict[tuple[str, str, str, int], _Children] = {}


def _metrics_of(service: str, route: str, method: str, status: int) -> _Children:
    key = (service, route, method, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = (
            HTTP_REQUESTS.labels(service, route, method, str(status)),
            HTTP_LATENCY.labels(service, route, method),
        )
        _CHILDREN[key] = found
    return found


class ObservabilityMiddleware:
    """Binds ``request_id`` to the logs, opens a server span and records the request's metrics.

    The span continues the request's ``traceparent`` when it carries one (a gateway or another
    service called over HTTP), else the current context (an in-process call). It is named by
    the route template once routing found it, never by the raw path. :meth:`observe` does the
    same for another app (an answer the gateway gives before any route runs).

    ``assign_ids`` (a proxy's edge): a request without ``X-Request-ID`` gets the one made here
    in its scope too, so the app behind (and the service it forwards to) sees the same id.

    This runs on every request of every process, so it avoids the conveniences that cost
    there: the span is started and made current by hand (as ``start_as_current_span`` does,
    exceptions recorded the same way), and the metrics' children are looked up once."""

    def __init__(self, app: ASGIApp, *, service: str, assign_ids: bool = False) -> None:
        self.app = app
        self.service = service
        self.assign_ids = assign_ids
        self.tracer = trace.get_tracer("cmf.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.observe(self.app, scope, receive, send)

    async def observe(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        request_id = _request_id(headers)
        if request_id is None:
            request_id = os.urandom(16).hex()  # the size of a uuid4, for a quarter of its cost
            if self.assign_ids:
                scope = {**scope, "headers": [*headers, (REQUEST_ID, request_id.encode())]}
        own_id = (REQUEST_ID, request_id.encode("latin-1"))
        method = scope["method"]
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), own_id]
            await send(message)

        started = time.perf_counter()
        ids = structlog.contextvars.bind_contextvars(request_id=request_id)
        span = self.tracer.start_span(
            method, context=incoming_context(headers), kind=SpanKind.SERVER
        )
        current = otel_context.attach(trace.set_span_in_context(span))
        try:
            try:
                await app(scope, receive, send_with_request_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope) or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status,
                    }
                )
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                requests, latency = _metrics_of(self.service, route, method, status)
                requests.inc()
                latency.observe(elapsed)
                log.info(
                    "http.request",
                    method=method,
                    path=scope.get("path"),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
        except Exception as exc:  # recorded as start_as_current_span records it
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            otel_context.detach(current)
            span.end()
            structlog.contextvars.reset_contextvars(**ids)


async def traced_hop(app: ASGIApp, scope: Scope, receive: Receive, send: Send, hop: str) -> None:
    """Hand an HTTP request to ``app`` (a service, in-process or behind a proxy) inside a
    server span of this hop (the gateway), which continues the request's ``traceparent``; the
    request goes on carrying the hop's own context, so the service's span is its child."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    method = scope["method"]
    with _HOP_TRACER.start_as_current_span(
        f"{hop} {method}",
        context=incoming_context(scope.get("headers") or ()),
        kind=SpanKind.SERVER,
    ) as span:
        span.set_attribute("http.request.method", method)
        forwarded = {**scope, "headers": with_current_trace(scope.get("headers") or [])}
        try:
            await app(forwarded, receive, send)
        finally:
            # In-process the service's router names the route in the scope it was handed; a
            # proxy names it before it forwards.
            template = route_template(forwarded)
            if template:
                span.update_name(f"{hop} {method} {template}")
                span.set_attribute("http.route", template)
