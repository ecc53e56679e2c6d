"""The projector's memory of applied event ids is kept for a retention, then forgotten, on
both real stores; an event applied again after that leaves the graph as it was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lineage_support import Pusher, as_pipeline

from cmf_lineage.graph import GraphStore
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.store.postgres import PostgresGraphStore

CONSUMER = "cmf-lineage"
RETENTION = timedelta(days=7)


async def age_applied(store: GraphStore, consumer: str, by: timedelta) -> None:
    """Make every id ``consumer`` applied look applied ``by`` earlier."""
    if isinstance(store, PostgresGraphStore):
        async with store.pool.acquire() as conn:
            await conn.execute(
                "UPDATE consumer_inbox SET applied_at = applied_at - $2::interval"
                " WHERE consumer = $1",
                consumer,
                by,
            )
        return
    assert isinstance(store, Neo4jGraphStore)
    async with store.driver.session() as session:
        await (
            await session.run(
                "MATCH (n:AppliedEvent {consumer: $consumer})"
                " SET n.applied_at = n.applied_at - $by_ms",
                consumer=consumer,
                by_ms=int(by.total_seconds() * 1000),
            )
        ).consume()


async def test_applied_ids_past_the_retention_are_forgotten_and_newer_ones_kept(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    old = await push_events(payload)
    await store.apply(CONSUMER, old)
    await store.apply("another-projection", old)
    await age_applied(store, CONSUMER, timedelta(days=8))
    new = await push_events(as_pipeline(payload, "Other-env"), "Other-env")
    await store.apply(CONSUMER, new)

    assert await store.forget_applied(CONSUMER, RETENTION) == len(old)
    assert await store.forget_applied(CONSUMER, RETENTION) == 0
    # Within the retention a redelivery is still skipped; another consumer's memory is its own.
    assert await store.apply(CONSUMER, new) is None
    assert await store.apply("another-projection", old) is None
    assert await store.applied_seq(CONSUMER, "Test-env") == old[-1].seq


async def test_an_event_applied_again_after_its_id_was_forgotten_changes_nothing(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    events = await push_events(payload)
    await store.apply(CONSUMER, events)
    before = await store.snapshot()
    await age_applied(store, CONSUMER, timedelta(days=8))
    assert await store.forget_applied(CONSUMER, RETENTION) == len(events)

    assert await store.apply(CONSUMER, events) is not None  # forgotten: applied once more
    assert await store.snapshot() == before
