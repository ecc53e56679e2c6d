"""A process's traces go where the standard OpenTelemetry settings say (cmf_common.tracing):
OTLP over HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` with its headers and service name, and as
``OTEL_TRACES_SAMPLER`` samples. Each case is a process of its own (the tracer provider is set
once per process), its collector an OTLP receiver on loopback in this test."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# One span, ended and flushed, by a process configured as every service configures itself.
TRACED = """
from opentelemetry import trace
from cmf_common.tracing import configure_tracing
configure_tracing("cmf-otlp-test")
provider = trace.get_tracer_provider()
print(provider.sampler.get_description())
with trace.get_tracer("test").start_as_current_span("exported-span"):
    pass
provider.force_flush()
"""


@dataclass
class Collector:
    """What an OTLP/HTTP receiver got: each export's path, headers and decoded request."""

    url: str
    exports: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = field(
        default_factory=list
    )


@pytest.fixture
def collector() -> Iterator[Collector]:
    received = Collector("")

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            headers = {k.lower(): v for k, v in self.headers.items()}
            received.exports.append((self.path, headers, request))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def traced(env: dict[str, str]) -> str:
    """Run :data:`TRACED` with only the given OTEL settings; its sampler's description."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", TRACED],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_spans_are_exported_over_otlp_to_the_configured_endpoint(collector: Collector) -> None:
    sampler = traced(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-token=abc123",
            "OTEL_SERVICE_NAME": "cmf-metadata",
        }
    )
    assert sampler.startswith("ParentBased{root:AlwaysOnSampler"), "every trace by default"
    ((path, headers, request),) = collector.exports
    assert path == "/v1/traces"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-collector-token"] == "abc123"
    (resource_spans,) = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "cmf-metadata"
    assert attributes["service.namespace"] == "cmf-server"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["exported-span"]


def test_the_sampler_is_the_configured_one(collector: Collector) -> None:
    off = traced(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_TRACES_SAMPLER": "always_off"}
    )
    assert off == "AlwaysOffSampler"
    assert collector.exports == [], "a span not sampled is not exported"
    ratio = traced(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }
    )
    assert ratio.startswith("ParentBased{root:TraceIdRatioBased{0.25}"), ratio
