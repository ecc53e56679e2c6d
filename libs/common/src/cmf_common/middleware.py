"""Pure ASGI middleware: request ids, access logs, spans and HTTP metrics in one pass."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmf_common.dialects import full_route_path
from cmf_common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from cmf_common.tracing import incoming_context, with_current_trace

log = structlog.get_logger("cmf.http")
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


class ObservabilityMiddleware:
    """Binds ``request_id`` to the logs, opens a server span and records the request's metrics.

    The span continues the request's ``traceparent`` when it carries one (a gateway or another
    service called over HTTP), else the current context (an in-process call). It is named by
    the route template once routing found it, never by the raw path. :meth:`observe` does the
    same for another app (an answer the gateway gives before any route runs)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self.tracer = trace.get_tracer("cmf.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.observe(self.app, scope, receive, send)

    async def observe(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        method = scope["method"]
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        started = time.perf_counter()
        with (
            structlog.contextvars.bound_contextvars(request_id=request_id),
            self.tracer.start_as_current_span(
                method, context=incoming_context(scope.get("headers") or ()), kind=SpanKind.SERVER
            ) as span,
        ):
            try:
                await app(scope, receive, send_with_request_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope) or "unmatched"
                status = int(status_holder["status"])
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()
                HTTP_LATENCY.labels(self.service, route, method).observe(elapsed)
                log.info(
                    "http.request",
                    method=method,
                    path=scope.get("path"),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )


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
