"""Pydantic models of the CMF wire format (docs/wire-contract.md §1.2, §2.3).

The push payload is validated once, in Rust, straight from the ``json_payload`` string. Lengths
are bounded where a value becomes an index key, so an over-long name is a 422, never a database
error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# A property value as MLMD carries it: string, int, double, bool, or a struct (JSON).
PropertyValue = str | int | float | bool | dict[str, Any] | list[Any] | None
Properties = dict[Annotated[str, Field(max_length=1024)], PropertyValue]

MAX_PIPELINE_NAME = 512
MAX_STAGE_NAME = 1024
MAX_URI = 2048
MAX_NAME = 8192
MAX_UUID_LIST = 65536


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ArtifactIn(_Wire):
    type: Annotated[str, Field(min_length=1, max_length=256)]
    uri: Annotated[str, Field(min_length=1, max_length=MAX_URI)]
    name: Annotated[str, Field(max_length=MAX_NAME)] = ""
    properties: Properties = Field(default_factory=dict)
    custom_properties: Properties = Field(default_factory=dict)
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None


class EventIn(_Wire):
    type: Annotated[int, Field(ge=0, le=7)]
    artifact: ArtifactIn


class ExecutionIn(_Wire):
    type: Annotated[str, Field(max_length=MAX_STAGE_NAME)] = ""
    name: Annotated[str, Field(max_length=MAX_NAME)] = ""
    properties: Properties = Field(default_factory=dict)
    custom_properties: Properties = Field(default_factory=dict)
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None
    events: list[EventIn] = Field(default_factory=list)


class StageIn(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=MAX_STAGE_NAME)]
    properties: Properties = Field(default_factory=dict)
    custom_properties: Properties = Field(default_factory=dict)
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None
    executions: list[ExecutionIn] = Field(default_factory=list)


class PipelineIn(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=MAX_PIPELINE_NAME)]
    properties: Properties = Field(default_factory=dict)
    custom_properties: Properties = Field(default_factory=dict)
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None
    stages: list[StageIn] = Field(default_factory=list)


class PayloadIn(_Wire):
    """The decoded ``json_payload``: ``{"Pipeline": [...]}``."""

    Pipeline: list[PipelineIn] | None = None


class PushRequest(BaseModel):
    """``POST /mlmd_push``. ``id`` is the legacy (≤0.0.9x) client's execution id."""

    model_config = ConfigDict(extra="ignore")

    pipeline_name: Annotated[str, Field(max_length=MAX_PIPELINE_NAME)] | None = None
    exec_uuid: Annotated[str, Field(max_length=256)] | None = None
    json_payload: str
    id: int | str | None = None


class PullRequest(BaseModel):
    """``POST /mlmd_pull``; ``last_sync_time`` is epoch milliseconds."""

    model_config = ConfigDict(extra="ignore")

    pipeline_name: Annotated[str, Field(max_length=MAX_PIPELINE_NAME)] | None = None
    exec_uuid: Annotated[str, Field(max_length=256)] | None = None
    last_sync_time: int | None = None
