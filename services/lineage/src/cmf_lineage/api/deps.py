"""The lineage service's typed state and every ``Annotated`` dependency its routes take.

The lifespan (``cmf_lineage.app``) makes one :class:`LineageState` once the graph store is
open; routes get their reader from here, never from ``app.state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from cmf_common.access import current_prefix
from cmf_common.service import state_of
from cmf_lineage.consistency import Behind
from cmf_lineage.projector import Projector
from cmf_lineage.reads import TOKEN_FORM, LineageReader, parse_token
from cmf_lineage.store import OpenStore

TOKEN_HEADER = "X-CMF-Consistency-Token"
RETRY_AFTER_S = "1"


@dataclass(frozen=True)
class LineageState:
    """What the lineage app holds while it runs.

    ``opened`` (the graph store the lifespan opened, for its readiness check) and ``projector``
    (fed by this process's event delivery in the embedded server) are ``None`` when a test
    hands a reader in without a lifespan.
    """

    reader: LineageReader
    opened: OpenStore | None = None
    projector: Projector | None = None


def get_state(request: Request) -> LineageState:
    return state_of(request.app, LineageState)


State = Annotated[LineageState, Depends(get_state)]


async def consistent_reader(
    reader: LineageReader, pipelines: Sequence[str] | None, token: str | None
) -> LineageReader:
    """``reader`` pinned to a version that includes every acknowledged push of ``pipelines``
    (``None``: every pipeline) and the token's write (:mod:`cmf_lineage.consistency`); a 503 with
    ``Retry-After`` (an ``HTTPException``, which each route's dialect words) when the projection
    did not reach them within ``LINEAGE_CONSISTENCY_WAIT_S``. For routes whose covered pipelines
    are known only from their own parameters, or that answer errors in a dialect of their own."""
    try:
        return await reader.consistent(
            pipelines, parse_token(token) if token else None, current_prefix()
        )
    except Behind as behind:
        what = f"{behind} (token {token})" if token else str(behind)
        raise HTTPException(
            status_code=503,
            detail=f"{what}; retry shortly",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from behind


# What cmf_lineage.reads.parse_token takes (empty: none); else its 422 invalid_consistency_token.
TOKEN_PATTERN = f"^({TOKEN_FORM.pattern})?$"
Token = Annotated[
    str | None,
    Header(
        alias=TOKEN_HEADER,
        description="a push's X-CMF-Consistency-Token: wait until the graph includes it",
        json_schema_extra={"pattern": TOKEN_PATTERN},
    ),
]


async def get_reader(state: State, token: Token = None) -> LineageReader:
    """The app's reader, for a read that covers every pipeline (a walk from an artifact or an
    execution, whose pipelines the graph may not know yet)."""
    return await consistent_reader(state.reader, None, token)


async def get_pipeline_reader(
    state: State, pipeline_name: str, token: Token = None
) -> LineageReader:
    """The app's reader, for a read of one pipeline, named ``pipeline_name`` in the path or the
    query (the tangled trees, ``display_lineage``)."""
    return await consistent_reader(state.reader, (pipeline_name,), token)


Reader = Annotated[LineageReader, Depends(get_reader)]
PipelineReader = Annotated[LineageReader, Depends(get_pipeline_reader)]
