"""Prometheus metrics: the process-wide registry, the ``/metrics`` route, and the metrics more
than one module records (HTTP, the outbox's backlog, the dead letters). Each module defines the
metrics of its own work beside it; docs/operations.md lists every one."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

HTTP_REQUESTS = Counter(
    "cmf_http_requests_total",
    "HTTP requests answered, by service, route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "cmf_http_request_duration_seconds",
    "Time to answer an HTTP request, by service and route template.",
    ["service", "route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)

# The outbox's rows waiting to be handed on, per outbox (its schema): ``unpublished`` (the
# relay's, to Kafka) or ``undelivered`` (the embedded delivery's, in-process); and how old the
# oldest of them is (0 when none waits). Set by the loop that hands them on.
OUTBOX_BACKLOG = Gauge(
    "cmf_outbox_backlog", "Outbox rows not yet handed on, by outbox and state.", ["outbox", "state"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "cmf_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet handed on (0: none waits), by outbox and state.",
    ["outbox", "state"],
)
# Events set aside after bounded retries, still kept: the messages of a dead-letter topic
# (``<topic>.dlq``), or the embedded delivery's failed outbox rows (``outbox.<schema>``).
DLQ_DEPTH = Gauge("cmf_dlq_depth", "Dead letters kept, by queue.", ["queue"])


def record_backlog(outbox: str, state: str, waiting: int, oldest_age_s: float | None) -> None:
    OUTBOX_BACKLOG.labels(outbox, state).set(waiting)
    OUTBOX_OLDEST_AGE.labels(outbox, state).set(max(0.0, oldest_age_s or 0.0))


def metrics_router() -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
