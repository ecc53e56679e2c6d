"""Every event the metadata push writes round-trips through the projector's parser: the captured
client push, merged into a real database, read back from the outbox, parsed with the contract
the projector uses, holds what was pushed. PostgreSQL only (no graph store)."""

from __future__ import annotations

from typing import Any

from lineage_support import Pusher, executions_of

from cmf_common import artifact_events
from cmf_common.metadata_events import (
    EVENT_TYPES,
    ArtifactUpserted,
    ExecutionMerged,
    MetadataEvent,
    PipelineUpserted,
    StageUpserted,
    parse_envelope,
)
from cmf_lineage.graph import to_batch
from cmf_lineage.projector import Projector
from cmf_lineage.store.memory import MemoryGraphStore


def _of(kind: type[Any], events: list[MetadataEvent]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_every_event_type_the_push_writes_is_one_the_projector_handles(
    push_events: Pusher, payload: dict[str, Any]
) -> None:
    written = {e.type for e in await push_events(payload)}
    handled = set(Projector(MemoryGraphStore()).handlers())
    assert written == set(EVENT_TYPES)
    # ... and the artifact service's blob events (test_blob_stored.py).
    assert handled == set(EVENT_TYPES) | set(artifact_events.EVENT_TYPES)


async def test_pushed_events_parse_back_to_what_was_pushed(
    push_events: Pusher, payload: dict[str, Any]
) -> None:
    envelopes = await push_events(payload)
    events = [parse_envelope(e) for e in envelopes]
    for envelope, event in zip(envelopes, events, strict=True):
        assert envelope.type == event.TYPE
        assert event.to_data() == envelope.data  # nothing lost or added on the way

    pushed = payload["Pipeline"][0]
    (pipeline,) = _of(PipelineUpserted, events)
    assert pipeline.pipeline.name == pushed["name"] == "Test-env"
    assert pipeline.pipeline.properties == pushed["properties"]
    assert pipeline.pipeline.custom_properties == pushed["custom_properties"]

    stages = [s for e in _of(StageUpserted, events) for s in e.stages]
    assert {e.pipeline for e in _of(StageUpserted, events)} == {"Test-env"}
    assert [(s.name, s.properties) for s in stages] == [
        (s["name"], s["properties"]) for s in pushed["stages"]
    ]
    for stage, sent in zip(stages, pushed["stages"], strict=True):
        # The merge adds the client's creation time (original_create_time_since_epoch).
        assert sent["custom_properties"].items() <= stage.custom_properties.items()

    artifacts = [a for e in _of(ArtifactUpserted, events) for a in e.artifacts]
    expected_artifacts = {
        ev["artifact"]["uri"]: ev["artifact"] for x in executions_of(payload) for ev in x["events"]
    }
    assert {a.uri: a.type for a in artifacts} == {
        uri: a["type"] for uri, a in expected_artifacts.items()
    }
    for a in artifacts:
        sent = expected_artifacts[a.uri]["custom_properties"]
        assert sent.items() <= a.custom_properties.items()

    executions = [x for e in _of(ExecutionMerged, events) for x in e.executions]
    assert {e.pipeline for e in _of(ExecutionMerged, events)} == {"Test-env"}
    assert [
        (x.uuids, x.stage, x.type, [(e.artifact_uri, e.type) for e in x.events]) for x in executions
    ] == [
        (
            [x["properties"]["Execution_uuid"]],
            stage["name"],
            x["properties"]["Execution_type_name"],  # the merge types executions by stage
            [(ev["artifact"]["uri"], ev["type"]) for ev in x["events"]],
        )
        for stage in pushed["stages"]
        for x in stage["executions"]
    ]
    for execution, sent in zip(executions, executions_of(payload), strict=True):
        assert sent["custom_properties"].items() <= execution.custom_properties.items()


async def test_the_projector_draws_every_pushed_edge_and_node(
    push_events: Pusher, payload: dict[str, Any]
) -> None:
    batch = to_batch(await push_events(payload))
    assert [p.name for p in batch.pipelines] == ["Test-env"]
    assert {s.name for s in batch.stages} == {s["name"] for s in payload["Pipeline"][0]["stages"]}
    assert {x.uuid for x in batch.executions} == {
        x["properties"]["Execution_uuid"] for x in executions_of(payload)
    }
    assert {a.uri for a in batch.artifacts} == {
        ev["artifact"]["uri"] for x in executions_of(payload) for ev in x["events"]
    }
    assert {(e.execution, e.artifact, e.kind) for e in batch.edges} == {
        (x["properties"]["Execution_uuid"], ev["artifact"]["uri"], ev["type"])
        for x in executions_of(payload)
        for ev in x["events"]
    }
