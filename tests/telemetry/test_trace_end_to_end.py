"""One trace from the gateway to the Neo4j write, over the real PostgreSQL, Kafka and Neo4j
(`make services-up`; run under /tmp/cmf-shared-services.lock): the gateway's span, the metadata
service's request span, the push, the outbox write (its context stored in the row), the relay's
publish (its context in the Kafka record's header), the projector's consumer span and the graph
write, each the child of the one before. Spans go to an in-memory exporter."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from pydantic import SecretStr

from cmf_common.dispatch import Dispatcher
from cmf_common.kafka import KafkaConsumerRunner, KafkaPublisher
from cmf_common.relay import OutboxRelay
from cmf_common.tracing import configure_tracing
from cmf_gateway.app import create_gateway
from cmf_gateway.routing import METADATA
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.projector import Projector
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import open_graph_store
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_metadata.app import create_service
from cmf_metadata.settings import MetadataSettings
from cmf_testing import neo4j as shared_neo4j
from cmf_testing.generator import push_body
from cmf_testing.kafka import KAFKA_BOOTSTRAP as BOOTSTRAP
from cmf_testing.kafka import create_topic
from cmf_testing.waiting import Deadline

pytestmark = pytest.mark.neo4j


def _shared_neo4j() -> LineageSettings:
    return LineageSettings(
        neo4j_uri=shared_neo4j.claim(),
        neo4j_user=shared_neo4j.NEO4J_USER,
        neo4j_password=SecretStr(shared_neo4j.NEO4J_PASSWORD),
    )


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process ends while the test runs (the SDK's provider, as the services
    configure it)."""
    configure_tracing("cmf-test")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "the SDK's tracer provider is configured"
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays on the provider: it exports nothing after this


def _one(
    found: list[ReadableSpan], what: str, match: Callable[[ReadableSpan], bool]
) -> ReadableSpan:
    chosen = [s for s in found if match(s)]
    assert len(chosen) == 1, f"{what}: {[s.name for s in chosen]} among {[s.name for s in found]}"
    return chosen[0]


async def test_a_push_is_one_trace_from_the_gateway_to_the_neo4j_write(
    spans: InMemorySpanExporter, make_database_url: Callable[[], str]
) -> None:
    topic = await create_topic(1, prefix="test.trace")
    group = f"trace-{uuid.uuid4().hex[:8]}"
    settings = MetadataSettings(
        database_url=SecretStr(make_database_url()),
        kafka_bootstrap_servers=BOOTSTRAP,
        events_topic=topic,
    )
    metadata = create_service(settings)
    gateway = create_gateway(GatewaySettings(), {METADATA: metadata})
    publisher, dead_letters = KafkaPublisher(BOOTSTRAP), KafkaPublisher(BOOTSTRAP)
    async with metadata.started() as state, open_graph_store(_shared_neo4j()) as opened:
        store = opened.store
        assert isinstance(store, Neo4jGraphStore)
        await store.delete_everything()
        projector = Projector(store, consumer=group)
        runner = KafkaConsumerRunner(
            bootstrap_servers=BOOTSTRAP,
            topic=topic,
            group_id=group,
            dispatcher=Dispatcher(group, projector.handlers()),
            dead_letters=dead_letters,
        )
        await publisher.start()
        await dead_letters.start()
        await runner.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=gateway), base_url="http://127.0.0.1"
            ) as client:
                answer = await client.post("/api/mlmd_push", json=push_body("Traced", 3))
            assert answer.json() == {"status": "success"}, answer.text
            relay = OutboxRelay(state.pool, publisher, topic=topic)
            assert await relay.relay_once() > 0
            deadline = Deadline(60)
            while await store.applied_seq(group, "Traced") == 0:
                assert not deadline.passed(), "the projector never applied the push"
                await runner.consume_once()
        finally:
            await runner.stop()
            await dead_letters.stop()
            await publisher.stop()
            await store.delete_everything()

    found = list(spans.get_finished_spans())
    hop = _one(found, "the gateway's span", lambda s: s.name.startswith("gateway POST"))
    trace_id = _context(hop).trace_id
    in_trace = [s for s in found if s.context is not None and s.context.trace_id == trace_id]
    push = _one(in_trace, "the push", lambda s: s.name == "metadata.push")
    written = _one(in_trace, "the outbox write", lambda s: s.name == "outbox.write")
    published = _one(in_trace, "the relay's publish", lambda s: s.name == f"publish {topic}")
    consumed = _one(in_trace, "the projector's span", lambda s: s.name == f"process {group}")
    graph = _one(in_trace, "the Neo4j write", lambda s: s.name == "neo4j write")

    # Between the hop and the push: the service's request span (its app's, and a mounted
    # sub-app's) and FastAPI's own endpoint span.
    by_id = {_context(s).span_id: s for s in in_trace}
    ancestors, at = [], push
    while at.parent is not None and at.parent.span_id != _context(hop).span_id:
        at = by_id[at.parent.span_id]
        ancestors.append(at)
    assert at.parent is not None, "the push is in the gateway hop's subtree"
    assert all(a.kind is SpanKind.SERVER or a.name.startswith("fastapi.") for a in ancestors)
    request = next(a for a in ancestors if a.kind is SpanKind.SERVER)

    chain = [hop, request, push, written, published, consumed, graph]
    for parent, child in itertools.pairwise(chain[2:]):
        assert child.parent is not None and child.parent.span_id == _context(parent).span_id, (
            f"{child.name} is not a child of {parent.name}"
        )
    assert [s.kind for s in chain] == [
        SpanKind.SERVER,
        SpanKind.SERVER,
        SpanKind.INTERNAL,
        SpanKind.INTERNAL,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.CLIENT,
    ]
    assert str((request.attributes or {}).get("http.route", "")).endswith("/mlmd_push")
    assert (graph.attributes or {}).get("db.system") == "neo4j"
    assert [link.context.trace_id for link in consumed.links] == [trace_id]


def _context(span: ReadableSpan) -> SpanContext:
    context: SpanContext | None = span.context
    assert context is not None
    return context
