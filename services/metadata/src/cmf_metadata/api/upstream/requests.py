"""Upstream's v1 request bodies (docs/upstream-v1.md §10), bounded as our 0.1.0 twins are.

[CONFLICT] resolved: upstream's UI-line drafts take the stage from the path only, its CMFQuery
line also requires ``stage_name`` in the stage bodies. Both are accepted: ``stage_name`` is
optional and, when sent, must name the stage of the path.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from cmf_metadata.api.listings import MAX_PAGE, MAX_RECORDS_PER_PAGE, MAX_TEXT, SORT_ORDER
from cmf_metadata.schemas import MAX_PIPELINE_NAME, MAX_STAGE_NAME

Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _Body(BaseModel):
    """A v1 body: unknown fields ignored; a NUL in any text is refused (a 422), as in a query
    parameter (cmf_common.parameters): PostgreSQL's text cannot hold one."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class MLMDPushRequest(_Body):
    """``POST /v1/mlmd/push``; ``json_payload`` is a JSON document in a string, as on 0.1.0."""

    pipeline_name: Annotated[str, Field(min_length=1, max_length=MAX_PIPELINE_NAME)]
    json_payload: Annotated[str, Field(min_length=1)]
    exec_uuid: Annotated[str, Field(max_length=256)] | None = None

    @field_validator("pipeline_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Pipeline name must not be empty or whitespace")
        return value


class MLMDPullRequest(_Body):
    """``POST /v1/mlmd/pull``; ``last_sync_time`` is epoch milliseconds."""

    pipeline_name: Annotated[str, Field(max_length=MAX_PIPELINE_NAME)] | None = None
    exec_uuid: Annotated[str, Field(max_length=256)] | None = None
    last_sync_time: StrictInt | None = None


class _StagePage(_Body):
    active_page: Annotated[int, Field(gt=0, le=MAX_PAGE)] = 1
    record_per_page: Annotated[int, Field(gt=0, le=MAX_RECORDS_PER_PAGE)] = 5
    filter_value: Text = ""
    stage_name: Annotated[str, Field(min_length=1, max_length=MAX_STAGE_NAME)] | None = None


class ExecutionByStageRequest(_StagePage):
    sort_order: Annotated[str, Field(pattern=SORT_ORDER)] = "DESC"


class ArtifactByStageRequest(_StagePage):
    artifact_type: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    sort_field: Text = "name"
    sort_order: Annotated[str, Field(pattern=SORT_ORDER)] = "asc"
