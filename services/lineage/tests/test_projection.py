"""The projector on real PostgreSQL, fed with events of real pushes: complete, idempotent,
order-tolerant, and faithful to pipeline membership."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from typing import Any

import pytest
from lineage_support import GraphUnderTest, Pusher, as_pipeline

from cmf_common.dispatch import PermanentError
from cmf_lineage.graph import GraphStore
from cmf_lineage.projector import Projector
from cmf_lineage.store import neo4j as neo4j_store
from cmf_testing.events import envelope

CONSUMER = "cmf-lineage"


def _executions(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for s in payload["Pipeline"][0]["stages"] for e in s["executions"]]


async def test_projection_holds_every_execution_artifact_and_edge(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    await Projector(store).apply(await push_events(payload))
    graph = await store.snapshot()
    executions = _executions(payload)
    assert set(graph.nodes["executions"]) == {
        f"Test-env/{e['properties']['Execution_uuid']}" for e in executions
    }
    uris = {ev["artifact"]["uri"] for e in executions for ev in e["events"]}
    assert set(graph.nodes["artifacts"]) == uris
    assert {(x, a, k) for _, x, a, k in graph.edges} == {
        (e["properties"]["Execution_uuid"], ev["artifact"]["uri"], ev["type"])
        for e in executions
        for ev in e["events"]
    }


async def test_applied_sequence_is_recorded_per_pipeline(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    events = await push_events(payload)
    await Projector(store).apply(events)
    assert await store.applied_seq(CONSUMER, "Test-env") == events[-1].seq
    assert await store.applied_seq(CONSUMER, "Other") == 0


async def test_redelivered_events_are_skipped(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    events = await push_events(payload)
    assert await store.apply(CONSUMER, events) is not None
    before = await store.snapshot()
    assert await store.apply(CONSUMER, events) is None
    assert await store.snapshot() == before


async def test_any_order_and_any_replay_gives_the_same_graph(
    graph: GraphUnderTest, push_events: Pusher, payload: dict[str, Any]
) -> None:
    store = graph.store
    events = await push_events(payload)
    events += await push_events(as_pipeline(payload, "Other-env"), "Other-env")
    await Projector(store).apply(events)
    in_order = await store.snapshot()
    await graph.reset()
    shuffled = events[:]
    random.Random(5).shuffle(shuffled)
    for half in (shuffled[: len(shuffled) // 2], shuffled, events):
        await Projector(store, consumer="replayer").apply(half)
    assert (await store.snapshot()).differences(in_order) == []


async def test_an_older_update_never_overwrites_a_newer_one(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    events = await push_events(payload)
    await store.apply(CONSUMER, events)
    artifact_event = next(e for e in events if e.type.startswith("cmf.metadata.artifact."))
    stale = copy.deepcopy(artifact_event.data)
    for artifact in stale["artifacts"]:
        artifact["last_update_time_since_epoch"] -= 1000
        artifact["custom_properties"] = {"stale": True}
    late = dataclasses.replace(
        artifact_event, id="00000000-0000-7000-8000-000000000001", data=stale
    )
    before = await store.snapshot()
    await store.apply(CONSUMER, [late])
    assert (await store.snapshot()).nodes["artifacts"] == before.nodes["artifacts"]


async def test_a_shared_artifact_belongs_to_both_pipelines_and_edges_stay_apart(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    events = await push_events(payload)
    events += await push_events(as_pipeline(payload, "Other-env"), "Other-env")
    await Projector(store).apply(events)
    graph = await store.snapshot()
    shared_uri = _executions(payload)[0]["events"][1]["artifact"]["uri"]
    assert '"Other-env", "Test-env"]' in graph.nodes["artifacts"][shared_uri]
    for pipeline in ("Test-env", "Other-env"):
        edges = {(x, a, k) for p, x, a, k in graph.edges if p == pipeline}
        assert edges == {
            (e["properties"]["Execution_uuid"], ev["artifact"]["uri"], ev["type"])
            for e in _executions(payload)
            for ev in e["events"]
        }


async def test_a_malformed_event_is_refused_as_permanent(store: GraphStore) -> None:
    broken = envelope(
        1,
        "cmf.metadata.execution.merged.v1",
        data={"executions": "nope"},
        id="00000000-0000-7000-8000-0000000000aa",
    )
    with pytest.raises(PermanentError):
        await store.apply(CONSUMER, [broken])


async def test_a_batch_split_into_small_transactions_gives_the_same_graph(
    graph: GraphUnderTest,
    push_events: Pusher,
    payload: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = await push_events(payload)
    await Projector(graph.store).apply(events)
    whole = await graph.store.snapshot()
    await graph.reset()
    monkeypatch.setattr(neo4j_store, "MAX_TRANSACTION_ENTITIES", 2)
    await Projector(graph.store).apply(events)
    assert (await graph.store.snapshot()).differences(whole) == []


async def test_a_push_applied_event_by_event_counts_each_membership_once(
    store: GraphStore, push_events: Pusher, payload: dict[str, Any]
) -> None:
    """The worker commits one transaction per event; the artifacts event and the executions
    event both carry an artifact's membership, which is one write."""
    written = 0
    for event in await push_events(payload):
        batch = await store.apply(CONSUMER, [event])
        written += batch.writes() if batch is not None else 0
    graph = await store.snapshot()
    memberships = sum(len(json.loads(a)[-1]) for a in graph.nodes["artifacts"].values())
    nodes = sum(len(kind) for kind in graph.nodes.values())
    assert written == nodes + len(graph.edges) + memberships


@pytest.mark.parametrize("graph", ["neo4j"], indirect=True)
async def test_a_progress_without_a_sequence_reads_as_nothing_applied(
    graph: GraphUnderTest,
) -> None:
    store = graph.store
    assert isinstance(store, neo4j_store.Neo4jGraphStore)
    async with store.driver.session() as session:
        await (
            await session.run(
                "MERGE (p:Progress {consumer: $c, subject: 'Half-wiped'}) REMOVE p.seq", c=CONSUMER
            )
        ).consume()
    assert await store.applied_seq(CONSUMER, "Half-wiped") == 0
