"""Pydantic models of the CMF wire format (docs/wire-contract.md §1.2, §2.3).

The push payload is validated once, in Rust, straight from the ``json_payload`` string. Lengths
are bounded where a value becomes an index key, so an over-long name is a 422, never a database
error.

A big push (``cmf_metadata.big_push``) is read by the lean twins below instead: msgspec structs
with the same fields and bounds, its executions kept as raw JSON until each is planned, so the
payload is never held as a tree of models. Whatever they refuse is read again by the pydantic
models, which decide, so both paths answer alike.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from cmf_common.errors import error_items

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


class _NamedBody(BaseModel):
    """A CMF body naming a pipeline and an execution: unknown fields ignored; a NUL in either
    name is refused (a 422), as in a query parameter (cmf_common.parameters): PostgreSQL's
    text cannot hold one, and a query with it failed (a 500)."""

    model_config = ConfigDict(extra="ignore")

    pipeline_name: Annotated[str, Field(max_length=MAX_PIPELINE_NAME)] | None = None
    exec_uuid: Annotated[str, Field(max_length=256)] | None = None

    @field_validator("pipeline_name", "exec_uuid", mode="after")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class PushRequest(_NamedBody):
    """``POST /mlmd_push``. ``id`` is the legacy (≤0.0.9x) client's execution id."""

    json_payload: str
    id: int | str | None = None


class PullRequest(_NamedBody):
    """``POST /mlmd_pull``; ``last_sync_time`` is epoch milliseconds (an integer: ``true`` or
    ``"5"`` is refused, not read as 1 or 5)."""

    last_sync_time: StrictInt | None = None


MAX_ERRORS = 50  # validation errors reported of one body


def body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """A body's first 50 errors, located under ``body`` as FastAPI locates them."""
    return error_items(
        exc.errors(include_url=False, include_input=False), under=("body",), limit=MAX_ERRORS
    )


# --- the big push's lean twins (msgspec) ------------------------------------------------------


LeanProperties = dict[Annotated[str, msgspec.Meta(max_length=1024)], Any]


class LeanArtifact(msgspec.Struct, frozen=True, gc=False):  # no cycles: untracked
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    uri: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URI)]
    name: Annotated[str, msgspec.Meta(max_length=MAX_NAME)] = ""
    properties: LeanProperties = {}
    custom_properties: LeanProperties = {}
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None


class LeanEvent(msgspec.Struct, frozen=True, gc=False):  # no cycles: untracked
    type: Annotated[int, msgspec.Meta(ge=0, le=7)]
    artifact: LeanArtifact


class LeanExecution(msgspec.Struct, frozen=True, gc=False):  # no cycles: untracked
    type: Annotated[str, msgspec.Meta(max_length=MAX_STAGE_NAME)] = ""
    name: Annotated[str, msgspec.Meta(max_length=MAX_NAME)] = ""
    properties: LeanProperties = {}
    custom_properties: LeanProperties = {}
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None
    events: list[LeanEvent] = []


class LeanStage(msgspec.Struct, frozen=True):
    """A stage, its executions still raw JSON (each read when it is planned)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_STAGE_NAME)]
    properties: LeanProperties = {}
    custom_properties: LeanProperties = {}
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None
    executions: list[msgspec.Raw] = []


class LeanPipeline(msgspec.Struct, frozen=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PIPELINE_NAME)]
    properties: LeanProperties = {}
    custom_properties: LeanProperties = {}
    create_time_since_epoch: int | None = None
    last_update_time_since_epoch: int | None = None
    stages: list[LeanStage] = []


class LeanPayload(msgspec.Struct, frozen=True):
    Pipeline: list[LeanPipeline] | None = None


class LeanPushRequest(msgspec.Struct, frozen=True):
    # A NUL in a name fails here too, so pydantic's PushRequest words the 422 (_NamedBody).
    json_payload: str
    pipeline_name: (
        Annotated[str, msgspec.Meta(max_length=MAX_PIPELINE_NAME, pattern="^[^\x00]*$")] | None
    ) = None
    exec_uuid: Annotated[str, msgspec.Meta(max_length=256, pattern="^[^\x00]*$")] | None = None
    id: int | str | None = None
