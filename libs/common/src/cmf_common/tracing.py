"""OpenTelemetry set-up and the span helpers every service shares (docs/operations.md, "Traces").

One trace follows a push end to end: the gateway's span, the service's request span, the outbox
write (its ``traceparent`` is stored with every outbox row), the relay's publish span (its
context travels in each Kafka record's ``traceparent`` header), the projector's consumer span
(parented on the first event's context, linked to every event's) and the graph write.

The tracer provider is configured once per process from the standard environment:

- ``OTEL_TRACES_EXPORTER``: a comma list of ``otlp``, ``console``, ``none``; unset, ``otlp``
  when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, else
  nothing is exported.
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or ``..._TRACES_PROTOCOL``): ``http/protobuf`` (default) or
  ``grpc``; the endpoint, headers, timeout and certificate come from the exporter's own
  ``OTEL_EXPORTER_OTLP_*`` variables.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: the SDK's samplers
  (``parentbased_traceidratio`` with a ratio, ``always_off``, ...); default: every trace.
- ``OTEL_SERVICE_NAME`` overrides the service name, ``OTEL_RESOURCE_ATTRIBUTES`` adds attributes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, Status, StatusCode
from opentelemetry.trace import SpanKind as SpanKind  # the services name kinds from here
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_configured = False
_W3C = TraceContextTextMapPropagator()


def _exporter_names() -> list[str]:
    raw = os.environ.get("OTEL_TRACES_EXPORTER")
    if raw is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    return [n.strip().lower() for n in raw.split(",") if n.strip() and n.strip() != "none"]


def _otlp_exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use grpc or http/protobuf")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def exporters() -> list[SpanExporter]:
    """The span exporters the environment asks for (see the module's docstring)."""
    found: list[SpanExporter] = []
    for name in _exporter_names():
        if name == "console":
            found.append(ConsoleSpanExporter())
        elif name == "otlp":
            found.append(_otlp_exporter())
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}")
    return found


def configure_tracing(service_name: str, namespace: str = "cmf-server") -> None:
    """The process's tracer provider, once (the first service of a process names it). The
    sampler is the SDK's, from ``OTEL_TRACES_SAMPLER``."""
    global _configured
    if _configured:
        return
    resource = Resource.create(
        {
            SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name,
            "service.namespace": namespace,
        }
    )
    provider = TracerProvider(resource=resource)
    for exporter in exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def traceparent_of(span: Span) -> str | None:
    """A span's W3C ``traceparent``."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, carried in event envelopes."""
    return traceparent_of(trace.get_current_span())


def context_of(traceparent: str | None) -> Context | None:
    """The context a ``traceparent`` continues; ``None`` for none or a malformed one."""
    if not traceparent:
        return None
    context = _W3C.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def continue_trace(traceparent: str | None) -> None:
    """Make the context of ``traceparent`` the current one for the rest of this thread (a
    process started to do one request's work: the big push's)."""
    parent = context_of(traceparent)
    if parent is not None:
        otel_context.attach(parent)


def incoming_context(headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    """The context an HTTP request's ``traceparent`` (and ``tracestate``) header carries, for
    the server span to continue; ``None`` when it carries none (then the current context is
    the parent: a request made in-process)."""
    carrier = {
        k.decode("latin-1").lower(): v.decode("latin-1")
        for k, v in headers
        if k.lower() in (b"traceparent", b"tracestate")
    }
    if "traceparent" not in carrier:
        return None
    context = propagate.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def inject(headers: MutableMapping[str, str]) -> None:
    """Write the current context into outgoing HTTP ``headers`` (a proxy's upstream request)."""
    propagate.inject(headers)


def _w3c_only(textmap: object) -> bool:
    """Whether the global propagator is the SDK's default (``OTEL_PROPAGATORS`` unset or
    ``tracecontext,baggage``): W3C trace context and baggage, nothing else."""
    found = _W3C_ONLY.get(id(textmap))
    if found is None:
        parts = getattr(textmap, "_propagators", None)
        found = isinstance(textmap, CompositePropagator) and all(
            type(p) in (TraceContextTextMapPropagator, W3CBaggagePropagator) for p in parts or ()
        )
        _W3C_ONLY.clear()
        _W3C_ONLY[id(textmap)] = found
    return found


_W3C_ONLY: dict[int, bool] = {}


def current_trace_headers() -> list[tuple[bytes, bytes]]:
    """The current context as outgoing HTTP headers (``traceparent``, ``tracestate``,
    ``baggage``), as ``propagate.inject`` writes them. A proxy does this once a request, so
    the default propagators' answer is written here directly (what
    ``TraceContextTextMapPropagator.inject`` writes, when there is no baggage); any other
    propagator is asked."""
    textmap = propagate.get_global_textmap()
    if _w3c_only(textmap) and not baggage.get_all():
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return []
        found = [
            (
                b"traceparent",
                b"00-%032x-%016x-%02x" % (context.trace_id, context.span_id, context.trace_flags),
            )
        ]
        if context.trace_state:
            found.append((b"tracestate", context.trace_state.to_header().encode("latin-1")))
        return found
    carrier: dict[str, str] = {}
    textmap.inject(carrier)
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in carrier.items()]


def with_current_trace(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """ASGI ``headers`` with any ``traceparent``/``tracestate`` replaced by the current
    context's: what a hop that opened its own span hands on."""
    kept = [(k, v) for k, v in headers if k.lower() not in (b"traceparent", b"tracestate")]
    return kept + current_trace_headers()


def _links(traceparents: Iterable[str | None]) -> list[Link]:
    seen: dict[str, Link] = {}
    for traceparent in traceparents:
        if traceparent and traceparent not in seen:
            context = context_of(traceparent)
            if context is not None:
                seen[traceparent] = Link(trace.get_current_span(context).get_span_context())
    return list(seen.values())


@contextmanager
def batch_span(
    name: str, traceparents: Sequence[str | None], *, kind: SpanKind, **attributes: Any
) -> Iterator[Span]:
    """A span over a batch of events that came from several traces: a child of the first
    event's context (so a batch of one push continues that push's trace), linked to every
    distinct one (so each push's trace reaches it)."""
    links = _links(traceparents)
    parent = next((context_of(t) for t in traceparents if context_of(t) is not None), None)
    with trace.get_tracer("cmf.events").start_as_current_span(
        name, context=parent, kind=kind, links=links
    ) as current:
        _set(current, attributes)
        yield current


@contextmanager
def publish_spans(
    destination: str, traceparents: Sequence[str | None], **attributes: Any
) -> Iterator[dict[str, str]]:
    """One producer span per distinct ``traceparent`` of the records about to be published
    (the rows of one push share one), each a child of that context; yields each
    ``traceparent``'s replacement, the producer span's, for the record headers. A failure
    inside marks every span as failed."""
    counts: dict[str, int] = {}
    for traceparent in traceparents:
        if traceparent:
            counts[traceparent] = counts.get(traceparent, 0) + 1
    carried: dict[str, str] = {}
    tracer_ = trace.get_tracer("cmf.events")
    with ExitStack() as spans:
        opened: list[Span] = []
        for traceparent, count in counts.items():
            context = context_of(traceparent)
            if context is None:
                continue
            span_ = spans.enter_context(
                tracer_.start_as_current_span(
                    f"publish {destination}", context=context, kind=SpanKind.PRODUCER
                )
            )
            _set(
                span_,
                {
                    "messaging.destination.name": destination,
                    "messaging.batch.message_count": count,
                    **attributes,
                },
            )
            opened.append(span_)
            carried[traceparent] = traceparent_of(span_) or traceparent
        try:
            yield carried
        except BaseException as exc:
            for span_ in opened:
                span_.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def failed(current: Span, reason: str) -> None:
    """Mark ``current`` as failed, for ``reason`` (an error's type name)."""
    current.set_status(Status(StatusCode.ERROR, reason))


def _set(current: Span, attributes: Mapping[str, Any]) -> None:
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key, value)


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Iterator[Span]:
    with trace.get_tracer("cmf").start_as_current_span(name, kind=kind) as current:
        _set(current, attributes)
        yield current
