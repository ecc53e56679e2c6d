"""``current_trace_headers`` writes what ``propagate.inject`` writes (it does so directly for
the default W3C propagators, once a request in the gateway's proxy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from cmf_common.tracing import current_trace_headers, with_current_trace


def injected() -> list[tuple[bytes, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return sorted((k.encode(), v.encode()) for k, v in carrier.items())


@pytest.fixture
def tracer() -> trace.Tracer:
    return TracerProvider().get_tracer("test")


@pytest.fixture
def in_span(tracer: trace.Tracer) -> Iterator[None]:
    with tracer.start_as_current_span("hop"):
        yield


def test_no_span_no_headers() -> None:
    assert current_trace_headers() == injected() == []


@pytest.mark.usefixtures("in_span")
def test_a_span_is_its_traceparent() -> None:
    found = current_trace_headers()
    assert found == injected()
    ((name, value),) = found
    context = trace.get_current_span().get_span_context()
    assert name == b"traceparent"
    flags = int(context.trace_flags)
    assert value == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}".encode()


def test_a_trace_state_and_unsampled_flags_are_carried() -> None:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(0),
        trace_state=TraceState([("vendor", "value")]),
    )
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(context)))
    try:
        found = current_trace_headers()
        assert sorted(found) == injected()
        assert dict(found)[b"traceparent"].endswith(b"-00")
        assert dict(found)[b"tracestate"] == b"vendor=value"
    finally:
        otel_context.detach(token)


@pytest.mark.usefixtures("in_span")
def test_baggage_is_written_by_the_propagators() -> None:
    token = otel_context.attach(baggage.set_baggage("tenant", "a"))
    try:
        found = sorted(current_trace_headers())
        assert found == injected()
        assert b"baggage" in dict(found)
    finally:
        otel_context.detach(token)


@pytest.mark.usefixtures("in_span")
def test_a_hop_replaces_the_trace_headers_it_was_handed() -> None:
    handed = [(b"host", b"h"), (b"traceparent", b"00-old-old-01"), (b"tracestate", b"x=y")]
    assert with_current_trace(handed) == [(b"host", b"h"), *current_trace_headers()]
