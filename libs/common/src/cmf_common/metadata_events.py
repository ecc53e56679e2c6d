"""The metadata events: the one contract between the metadata service, which writes them (the
push, to its outbox; the export, replaying its tables) and the lineage projector, which reads
them.

Each event is a frozen dataclass with its versioned ``TYPE`` (``cmf.metadata.<entity>.<verb>.v1``)
and the envelope's ``data`` as ``to_data()`` writes and ``parse`` reads it. The wire JSON is the
one these events have always had, key for key and in the same order: the fields a writer leaves
out (the push sends no creation time for pipelines, stages and executions; the export does) are
``None`` here and absent on the wire, so rows already in an outbox or on a topic parse as they
are. The parser is as lenient as the projector always was: ``properties`` may be missing or
``null``, ids and times may come as numeric strings; anything else malformed raises
:class:`MalformedEvent`.

The dataclasses are built by hand rather than validated by a schema library because the push
writes one per entity (tens of thousands a push) and the projector reads as many: plain slotted
dataclasses add about a microsecond each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cmf_common.events import Envelope, NewEvent, event_type

# Where the metadata service's events come from (the envelope's ``source``).
SOURCE = "cmf-server/metadata"

# MLMD's Event.Type of an execution's link to an artifact: CMF writes these two.
INPUT, OUTPUT = 3, 4

PIPELINE_UPSERTED = event_type("pipeline", "upserted")
STAGE_UPSERTED = event_type("stage", "upserted")
ARTIFACT_UPSERTED = event_type("artifact", "upserted")
EXECUTION_MERGED = event_type("execution", "merged")


class MalformedEvent(ValueError):
    """An event whose ``data`` does not fit its type."""


def _props(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    return dict(data.get(key) or {})


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class ContextData:
    """A pipeline or a stage (MLMD contexts). The creation and update times only in the
    export."""

    id: int
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "properties": self.properties,
            "custom_properties": self.custom_properties,
        }
        if self.create_time_since_epoch is not None:
            data["create_time_since_epoch"] = self.create_time_since_epoch
        if self.last_update_time_since_epoch is not None:
            data["last_update_time_since_epoch"] = self.last_update_time_since_epoch
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ContextData:
        return cls(
            int(data["id"]),
            data["name"],
            _props(data, "properties"),
            _props(data, "custom_properties"),
            _optional_int(data, "create_time_since_epoch"),
            _optional_int(data, "last_update_time_since_epoch"),
        )


@dataclass(frozen=True, slots=True)
class ArtifactData:
    id: int
    uri: str
    type: str
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    create_time_since_epoch: int
    last_update_time_since_epoch: int

    def to_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "type": self.type,
            "name": self.name,
            "properties": self.properties,
            "custom_properties": self.custom_properties,
            "create_time_since_epoch": self.create_time_since_epoch,
            "last_update_time_since_epoch": self.last_update_time_since_epoch,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ArtifactData:
        return cls(
            int(data["id"]),
            data["uri"],
            data["type"],
            data["name"],
            _props(data, "properties"),
            _props(data, "custom_properties"),
            int(data["create_time_since_epoch"]),
            int(data["last_update_time_since_epoch"]),
        )


@dataclass(frozen=True, slots=True)
class EventLink:
    """An MLMD event: the execution read (``INPUT``) or wrote (``OUTPUT``) the artifact."""

    artifact_uri: str
    type: int

    def to_data(self) -> dict[str, Any]:
        return {"artifact_uri": self.artifact_uri, "type": self.type}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> EventLink:
        return cls(data["artifact_uri"], int(data["type"]))


@dataclass(frozen=True, slots=True)
class ExecutionData:
    """An execution with its links in pushed order. ``uuid`` is its comma list of uuids,
    ``uuids`` the same as a list (the first is its stable key); ``stage`` is the stage's name.
    The creation time only in the export."""

    id: int
    uuid: str
    uuids: list[str]
    stage: str
    type: str
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    last_update_time_since_epoch: int
    events: list[EventLink]
    create_time_since_epoch: int | None = None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "uuid": self.uuid,
            "uuids": self.uuids,
            "stage": self.stage,
            "type": self.type,
            "name": self.name,
            "properties": self.properties,
            "custom_properties": self.custom_properties,
        }
        if self.create_time_since_epoch is not None:
            data["create_time_since_epoch"] = self.create_time_since_epoch
        data["last_update_time_since_epoch"] = self.last_update_time_since_epoch
        data["events"] = [e.to_data() for e in self.events]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ExecutionData:
        return cls(
            int(data["id"]),
            data["uuid"],
            [str(u) for u in data["uuids"]],
            data["stage"],
            data["type"],
            data["name"],
            _props(data, "properties"),
            _props(data, "custom_properties"),
            int(data["last_update_time_since_epoch"]),
            [EventLink(e["artifact_uri"], int(e["type"])) for e in data["events"]],
            _optional_int(data, "create_time_since_epoch"),
        )


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    items = data[key]
    if not isinstance(items, list):
        raise TypeError(f"{key} is not a list")
    return items


@dataclass(frozen=True, slots=True)
class PipelineUpserted:
    TYPE: ClassVar[str] = PIPELINE_UPSERTED

    pipeline: ContextData

    def to_data(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline.to_data()}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PipelineUpserted:
        return cls(ContextData.from_data(data["pipeline"]))


@dataclass(frozen=True, slots=True)
class StageUpserted:
    TYPE: ClassVar[str] = STAGE_UPSERTED

    pipeline: str
    stages: list[ContextData]

    def to_data(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "stages": [s.to_data() for s in self.stages]}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StageUpserted:
        stages = [ContextData.from_data(s) for s in _list(data, "stages")]
        return cls(data["pipeline"], stages)


@dataclass(frozen=True, slots=True)
class ArtifactUpserted:
    TYPE: ClassVar[str] = ARTIFACT_UPSERTED

    pipeline: str
    artifacts: list[ArtifactData]

    def to_data(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "artifacts": [a.to_data() for a in self.artifacts]}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ArtifactUpserted:
        artifacts = [ArtifactData.from_data(a) for a in _list(data, "artifacts")]
        return cls(data["pipeline"], artifacts)


@dataclass(frozen=True, slots=True)
class ExecutionMerged:
    TYPE: ClassVar[str] = EXECUTION_MERGED

    pipeline: str
    executions: list[ExecutionData]

    def to_data(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "executions": [x.to_data() for x in self.executions]}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ExecutionMerged:
        executions = [ExecutionData.from_data(x) for x in _list(data, "executions")]
        return cls(data["pipeline"], executions)


MetadataEvent = PipelineUpserted | StageUpserted | ArtifactUpserted | ExecutionMerged

_BY_TYPE: dict[str, type[MetadataEvent]] = {
    c.TYPE: c for c in (PipelineUpserted, StageUpserted, ArtifactUpserted, ExecutionMerged)
}
# Every type the metadata service writes, in the order a push writes them.
EVENT_TYPES: tuple[str, ...] = tuple(_BY_TYPE)


def new_event(event: MetadataEvent) -> NewEvent:
    """The event as the outbox takes it."""
    return NewEvent(event.TYPE, event.to_data())


def parse(type_: str, data: Any) -> MetadataEvent:
    """The event of ``type_`` that ``data`` holds; :class:`MalformedEvent` when it holds none."""
    kind = _BY_TYPE.get(type_)
    if kind is None:
        raise MalformedEvent(f"{type_} is not a metadata event type")
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"malformed {type_} event: its data is not an object")
    try:
        return kind.from_data(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedEvent(f"malformed {type_} event: {exc!r}") from exc


def parse_envelope(envelope: Envelope) -> MetadataEvent:
    return parse(envelope.type, envelope.data)
