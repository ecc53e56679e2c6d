"""The CMF push merge rules (docs/wire-contract.md §2.6), as pure functions.

``read_payload`` turns a push body into the pipeline to merge, or one of the reference server's
answers; ``plan_merge`` decides, given the execution uuids already stored, what a push adds.
The store applies the plan in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from cmf_common.errors import error_items
from cmf_metadata.schemas import PayloadIn, PipelineIn

ORIGINAL_CREATE_TIME = "original_create_time_since_epoch"
# The context types CMF gives a pipeline and its stages.
PIPELINE_TYPE, STAGE_TYPE = "Parent_Context", "Pipeline_Stage"
ENVIRONMENT_TYPE = "Environment"  # the python env artifact cmflib logs for every execution


class PushStatus(StrEnum):
    SUCCESS = "success"
    EXISTS = "exists"
    PIPELINE_NOT_EXIST = "pipeline_not_exist"


class TypeKind(IntEnum):
    """MLMD's kinds of type, as the ``types`` table keeps them."""

    EXECUTION = 0
    ARTIFACT = 1
    CONTEXT = 2


class Rejection(StrEnum):
    """Why a push is refused; each picks one of the reference server's answers."""

    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    NO_PIPELINE = "no_pipeline"
    VERSION_UPDATE = "version_update"  # a client too old to send execution uuids


class PayloadRejected(Exception):
    """A push the reference server refuses; ``kind`` picks the reference's answer."""

    def __init__(self, kind: Rejection, detail: Any) -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


def split_uuids(value: object) -> list[str]:
    """``Execution_uuid`` is a comma list; its members form a set."""
    if value is None:
        return []
    return [u.strip() for u in str(value).split(",") if u.strip()]


def read_payload(json_payload: str, pipeline_name: str) -> PipelineIn | None:
    """Validate the payload and pick the named pipeline; ``None`` means it is not in the payload."""
    if not json_payload.strip():
        raise PayloadRejected(Rejection.INVALID_REQUEST, "json_payload must not be empty")
    # PostgreSQL text and jsonb cannot hold NUL; refuse it here rather than fail in the store.
    if "\\u0000" in json_payload or "\x00" in json_payload:
        raise PayloadRejected(
            Rejection.INVALID_REQUEST, "json_payload must not contain NUL characters"
        )
    try:
        payload = PayloadIn.model_validate_json(json_payload)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise PayloadRejected(Rejection.INVALID_JSON, "JSON payload is not valid JSON") from exc
        raise PayloadRejected(Rejection.INVALID_REQUEST, _errors(exc)) from exc
    if not payload.Pipeline:
        raise PayloadRejected(
            Rejection.NO_PIPELINE, "Invalid JSON payload. The pipeline name is missing."
        )
    pipeline = next((p for p in payload.Pipeline if p.name == pipeline_name), None)
    if pipeline is None:
        return None
    for stage in pipeline.stages:
        for execution in stage.executions:
            if execution.name == "" and not split_uuids(execution.properties.get("Execution_uuid")):
                raise PayloadRejected(Rejection.VERSION_UPDATE, "version_update")
    return pipeline


def only_pipeline_name(json_payload: str) -> str | None:
    """The name of the payload's only pipeline, for a legacy client that sends none."""
    try:
        pipelines = orjson.loads(json_payload).get("Pipeline") or []
    except (orjson.JSONDecodeError, AttributeError):
        return None
    names = [p.get("name") for p in pipelines if isinstance(p, dict)]
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return error_items(exc.errors(include_url=False, include_input=False), limit=50)


def payload_uuids(pipeline: PipelineIn) -> list[str]:
    return sorted(
        {
            u
            for stage in pipeline.stages
            for ex in stage.executions
            for u in split_uuids(ex.properties.get("Execution_uuid"))
        }
    )


class StageLike(Protocol):
    """What the merge reads of an entity a push carries (a stage, and the base of the others):
    the pydantic model or the big push's lean struct alike."""

    @property
    def name(self) -> str: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...
    @property
    def custom_properties(self) -> Mapping[str, Any]: ...
    @property
    def create_time_since_epoch(self) -> int | None: ...


class ArtifactLike(StageLike, Protocol):
    @property
    def type(self) -> str: ...
    @property
    def uri(self) -> str: ...


class EventLike(Protocol):
    @property
    def type(self) -> int: ...
    @property
    def artifact(self) -> ArtifactLike: ...


class ExecutionLike(StageLike, Protocol):
    @property
    def events(self) -> Sequence[EventLike]: ...


@dataclass(frozen=True, slots=True)
class PipelineHead:
    """What the merge keeps of the pushed pipeline itself."""

    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]

    @classmethod
    def of(cls, pipeline: StageLike) -> PipelineHead:
        return cls(pipeline.name, dict(pipeline.properties), dict(pipeline.custom_properties))


@dataclass(slots=True)
class PlannedArtifact:
    uri: str
    type: str
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    order: int = 0  # its first sighting's place among the payload's artifacts (client order)


@dataclass(slots=True)
class PlannedEvent:
    uri: str
    type: int
    step_key: str


@dataclass(slots=True)
class PlannedExecution:
    stage: str
    type: str
    name: str
    uuid: str
    uuids: list[str]
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    events: list[PlannedEvent]

    @property
    def reused(self) -> bool:
        return self.name != ""


@dataclass(slots=True)
class PlannedStage:
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]


@dataclass
class MergePlan:
    pipeline: PipelineHead
    status: PushStatus
    stages: list[PlannedStage] = field(default_factory=list)
    executions: list[PlannedExecution] = field(default_factory=list)
    artifacts: list[PlannedArtifact] = field(default_factory=list)  # sorted by uri

    @property
    def types(self) -> list[tuple[int, str]]:
        """Every MLMD type the plan needs, once each, in the order the reference's merge meets
        them (the contexts', then each execution's and its artifacts' in payload order): new
        types are numbered in this order; the store still locks them in key order."""
        artifact_types = {a.uri: a.type for a in self.artifacts}
        wanted = {(TypeKind.CONTEXT, PIPELINE_TYPE): None, (TypeKind.CONTEXT, STAGE_TYPE): None}
        for execution in self.executions:
            wanted.setdefault((TypeKind.EXECUTION, execution.type))
            for event in execution.events:
                wanted.setdefault((TypeKind.ARTIFACT, artifact_types[event.uri]))
        return list(wanted)


def stamp_original_time(custom: Mapping[str, Any], create_time: int | None) -> dict[str, Any]:
    """Keep the client's creation time as a string custom property, as the reference does.

    A payload pulled from another server already carries it; that first value is kept.
    """
    if ORIGINAL_CREATE_TIME in custom or create_time is None:
        return dict(custom)
    return {**custom, ORIGINAL_CREATE_TIME: str(create_time)}


def _artifact_custom(
    type_: str, custom: Mapping[str, Any], create_time: int | None
) -> dict[str, Any]:
    """An artifact's custom properties as merged. The reference stamps the client's creation
    time on every artifact but the python environment: its Environment handler
    (``log_python_env_from_client`` in cmflib/cmf_server.py, called from cmf_merger.py
    ``handle_event``) stores the artifact without custom properties, so its pull shows ``{}``."""
    if type_ == ENVIRONMENT_TYPE:
        return dict(custom)
    return stamp_original_time(custom, create_time)


def _selected(execution: ExecutionLike, exec_uuid: str | None, existing: set[str]) -> bool:
    uuids = split_uuids(execution.properties.get("Execution_uuid"))
    if exec_uuid is not None and exec_uuid not in uuids:
        return False
    if execution.name != "":
        return True  # re-used executions are merged again, their uuid sets unioned
    return not existing.intersection(uuids)


class MergePlanner:
    """``plan_merge`` one execution at a time, so a big push never holds its whole payload as
    objects: feed it each stage's executions in payload order, then ``finish``."""

    def __init__(
        self, pipeline: PipelineHead, existing_uuids: set[str], exec_uuid: str | None
    ) -> None:
        self.plan = MergePlan(pipeline=pipeline, status=PushStatus.EXISTS)
        self.exec_uuid = exec_uuid
        self.artifacts: dict[str, PlannedArtifact] = {}
        self.seen_uuids: set[str] = set(existing_uuids)
        self.stages: dict[str, PlannedStage] = {}

    def add(self, stage: StageLike, execution: ExecutionLike) -> None:
        if not _selected(execution, self.exec_uuid, self.seen_uuids):
            return
        uuids = split_uuids(execution.properties.get("Execution_uuid"))
        self.seen_uuids.update(uuids)  # a uuid twice in one payload is merged once
        stage_key = str(execution.properties.get("Context_Type") or stage.name)
        if stage.name not in self.stages:
            self.stages[stage.name] = PlannedStage(
                stage.name,
                dict(stage.properties),
                stamp_original_time(stage.custom_properties, stage.create_time_since_epoch),
            )
        events: list[PlannedEvent] = []
        for event in execution.events:
            art = event.artifact
            events.append(PlannedEvent(art.uri, event.type, art.name))
            _add_artifact(
                self.artifacts,
                art.uri,
                art.type,
                art.name,
                dict(art.properties),
                _artifact_custom(art.type, art.custom_properties, art.create_time_since_epoch),
            )
        self.plan.executions.append(
            PlannedExecution(
                stage=stage.name,
                type=stage_key,
                name=execution.name,
                uuid=",".join(uuids),
                uuids=uuids,
                properties=dict(execution.properties),
                custom_properties=stamp_original_time(
                    execution.custom_properties, execution.create_time_since_epoch
                ),
                events=events,
            )
        )

    def finish(self) -> MergePlan:
        plan = self.plan
        if plan.executions:
            plan.status = PushStatus.SUCCESS
            plan.stages = list(self.stages.values())
            plan.artifacts = [self.artifacts[uri] for uri in sorted(self.artifacts)]
        self.artifacts = {}
        return plan


def plan_merge(pipeline: PipelineIn, existing_uuids: set[str], exec_uuid: str | None) -> MergePlan:
    """What a push adds to a pipeline whose stored executions have ``existing_uuids``."""
    planner = MergePlanner(PipelineHead.of(pipeline), existing_uuids, exec_uuid)
    for stage in pipeline.stages:
        for execution in stage.executions:
            planner.add(stage, execution)
    return planner.finish()


def _add_artifact(
    found: dict[str, PlannedArtifact],
    uri: str,
    type_: str,
    name: str,
    properties: dict[str, Any],
    custom: dict[str, Any],
) -> None:
    """One row per uri: the same content seen again in a payload merges into the first sighting."""
    known = found.get(uri)
    if known is None:
        found[uri] = PlannedArtifact(uri, type_, name, properties, custom, order=len(found))
        return
    urls = join_comma_lists(known.properties.get("url"), properties.get("url"))
    known.properties = {**properties, **known.properties}
    if urls is not None:
        known.properties["url"] = urls
    known.custom_properties = {**custom, **known.custom_properties}


def join_comma_lists(first: object, second: object) -> str | None:
    """The Python twin of the store's ``merge_comma_lists``: entries once, first sighting first."""
    entries: dict[str, None] = {}
    for value in (first, second):
        if value:
            entries.update((e, None) for e in str(value).split(",") if e)
    return ",".join(entries) if entries else None
