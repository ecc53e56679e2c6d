"""The metadata tables' rows as the entities of the metadata events
(:mod:`cmf_common.metadata_events`), where the push (writing them to the outbox) and the export
(replaying the tables as the same events) must agree field for field."""

from __future__ import annotations

from typing import Any

from cmf_common.metadata_events import ArtifactData, ContextData, EventLink, ExecutionData


def artifact_of(row: Any) -> ArtifactData:
    """An artifact from a row of the ``artifacts`` table (the push's upsert, the export's read)."""
    return ArtifactData(
        row["id"],
        row["uri"],
        row["type"],
        row["name"],
        row["properties"],
        row["custom_properties"],
        row["create_time_since_epoch"],
        row["last_update_time_since_epoch"],
    )


def context_of(row: Any) -> ContextData:
    """A pipeline or a stage, with its times, from the export's read of its table."""
    return ContextData(
        row["id"],
        row["name"],
        row["properties"],
        row["custom_properties"],
        row["create_time_since_epoch"],
        row["last_update_time_since_epoch"],
    )


def execution_of(row: Any) -> ExecutionData:
    """An execution, with its times, its stage's name and its events
    (``[{"artifact_uri", "type"}]`` in pushed order), from the export's read."""
    return ExecutionData(
        id=row["id"],
        uuid=row["uuid"],
        uuids=row["uuid"].split(","),
        stage=row["stage"],
        type=row["type"],
        name=row["name"],
        properties=row["properties"],
        custom_properties=row["custom_properties"],
        last_update_time_since_epoch=row["last_update_time_since_epoch"],
        events=[EventLink(e["artifact_uri"], e["type"]) for e in row["events"]],
        create_time_since_epoch=row["create_time_since_epoch"],
    )
