"""The metadata event contract: what the push and the export write is what the projector reads,
and the wire JSON keeps the keys, and their order, it has always had."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cmf_common.metadata_events import (
    ARTIFACT_UPSERTED,
    EVENT_TYPES,
    EXECUTION_MERGED,
    INPUT,
    OUTPUT,
    PIPELINE_UPSERTED,
    STAGE_UPSERTED,
    ArtifactData,
    ArtifactUpserted,
    ContextData,
    EventLink,
    ExecutionData,
    ExecutionMerged,
    MalformedEvent,
    PipelineUpserted,
    StageUpserted,
    new_event,
    parse,
)

ARTIFACT = {
    "id": 7,
    "uri": "ab12",
    "type": "Dataset",
    "name": "data.xml.gz:ab12",
    "properties": {"url": "s3://x"},
    "custom_properties": {},
    "create_time_since_epoch": 1,
    "last_update_time_since_epoch": 2,
}
# As the push writes it (no creation time) and as the export does.
PUSHED_EXECUTION = {
    "id": 3,
    "uuid": "u1,u2",
    "uuids": ["u1", "u2"],
    "stage": "Prepare",
    "type": "Test-env/Prepare",
    "name": "",
    "properties": {"Execution_uuid": "u1,u2"},
    "custom_properties": {"seed": 1},
    "last_update_time_since_epoch": 5,
    "events": [{"artifact_uri": "ab12", "type": 3}, {"artifact_uri": "cd34", "type": 4}],
}
EXPORTED_EXECUTION = {
    **{
        k: v
        for k, v in PUSHED_EXECUTION.items()
        if k not in ("last_update_time_since_epoch", "events")
    },
    "create_time_since_epoch": 4,
    "last_update_time_since_epoch": 5,
    "events": PUSHED_EXECUTION["events"],
}
PUSHED_CONTEXT = {"id": 1, "name": "Test-env", "properties": {}, "custom_properties": {"a": 1}}
EXPORTED_CONTEXT = {
    **PUSHED_CONTEXT,
    "create_time_since_epoch": 1,
    "last_update_time_since_epoch": 2,
}

WIRE = [
    (PIPELINE_UPSERTED, {"pipeline": PUSHED_CONTEXT}),
    (PIPELINE_UPSERTED, {"pipeline": EXPORTED_CONTEXT}),
    (STAGE_UPSERTED, {"pipeline": "Test-env", "stages": [PUSHED_CONTEXT, EXPORTED_CONTEXT]}),
    (ARTIFACT_UPSERTED, {"pipeline": "Test-env", "artifacts": [ARTIFACT]}),
    (
        EXECUTION_MERGED,
        {"pipeline": "Test-env", "executions": [PUSHED_EXECUTION, EXPORTED_EXECUTION]},
    ),
]


@pytest.mark.parametrize(("type_", "data"), WIRE)
def test_parsed_events_serialise_to_the_same_bytes(type_: str, data: dict[str, Any]) -> None:
    event = parse(type_, data)
    assert type_ == event.TYPE
    assert orjson.dumps(event.to_data()) == orjson.dumps(data)
    assert new_event(event).data == data


def test_event_types_keep_their_versioned_names() -> None:
    assert EVENT_TYPES == (
        "cmf.metadata.pipeline.upserted.v1",
        "cmf.metadata.stage.upserted.v1",
        "cmf.metadata.artifact.upserted.v1",
        "cmf.metadata.execution.merged.v1",
    )
    assert (INPUT, OUTPUT) == (3, 4)


def test_the_parser_reads_typed_entities() -> None:
    event = parse(EXECUTION_MERGED, {"pipeline": "p", "executions": [PUSHED_EXECUTION]})
    assert event == ExecutionMerged(
        "p",
        [
            ExecutionData(
                id=3,
                uuid="u1,u2",
                uuids=["u1", "u2"],
                stage="Prepare",
                type="Test-env/Prepare",
                name="",
                properties={"Execution_uuid": "u1,u2"},
                custom_properties={"seed": 1},
                last_update_time_since_epoch=5,
                events=[EventLink("ab12", INPUT), EventLink("cd34", OUTPUT)],
            )
        ],
    )
    assert parse(ARTIFACT_UPSERTED, {"pipeline": "p", "artifacts": [ARTIFACT]}) == (
        ArtifactUpserted("p", [ArtifactData.from_data(ARTIFACT)])
    )
    assert parse(STAGE_UPSERTED, {"pipeline": "p", "stages": []}) == StageUpserted("p", [])
    assert parse(PIPELINE_UPSERTED, {"pipeline": PUSHED_CONTEXT}) == PipelineUpserted(
        ContextData(1, "Test-env", {}, {"a": 1})
    )


def test_missing_properties_read_as_empty() -> None:
    event = parse(PIPELINE_UPSERTED, {"pipeline": {"id": "1", "name": "p", "properties": None}})
    assert event == PipelineUpserted(ContextData(1, "p", {}, {}))


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        (EXECUTION_MERGED, {"executions": "nope"}),
        (EXECUTION_MERGED, {"pipeline": "p", "executions": "nope"}),
        (ARTIFACT_UPSERTED, {"pipeline": "p", "artifacts": [{"uri": "x"}]}),
        (STAGE_UPSERTED, ["not", "an", "object"]),
        (PIPELINE_UPSERTED, {"pipeline": {"id": "one", "name": "p"}}),
        ("cmf.metadata.model.deleted.v1", {}),
    ],
)
def test_malformed_events_are_refused(type_: str, data: Any) -> None:
    with pytest.raises(MalformedEvent):
        parse(type_, data)
