"""The request bodies and path ids of upstream's CMFQuery routes (docs/upstream-v1.md §5–§6)
that both services serving them take: the metadata's table questions and the lineage's graph
questions alike read server ids, bounded here once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field, StrictInt

from cmf_common.paging import BIGINT_MAX

MAX_IDS = 10_000

# A server id in a path: what no row can have (negative, past int64) is a 422.
ServerId = Annotated[int, Path(ge=0, le=BIGINT_MAX)]
# A batch of server ids in a body: at least one (upstream's ``min_items=1``), bounded; JSON
# integers (``1.0``, ``"1"`` or ``true`` are refused, not read as 1).
ServerIds = Annotated[
    list[Annotated[StrictInt, Field(ge=0, le=BIGINT_MAX)]], Field(min_length=1, max_length=MAX_IDS)
]


class ExecutionIdsRequest(BaseModel):
    """``{"exe_ids": [...]}``: upstream's ``ExecutionIdsRequest``."""

    exe_ids: ServerIds


class ArtifactIdsRequest(BaseModel):
    """``{"artifact_ids": [...]}``: upstream's ``ArtifactIdsRequest``."""

    artifact_ids: ServerIds
