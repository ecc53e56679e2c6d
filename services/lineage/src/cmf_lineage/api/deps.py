"""The lineage service's typed state and every ``Annotated`` dependency its routes take.

The lifespan (``cmf_lineage.app``) makes one :class:`LineageState` once the graph store is
open; routes get their reader from here, never from ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from cmf_common.service import state_of
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader, parse_token
from cmf_lineage.store import OpenStore

TOKEN_HEADER = "X-CMF-Consistency-Token"


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


async def get_reader(
    state: State,
    token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
) -> LineageReader:
    """The app's reader; with a token, pinned to a version that includes the caller's write,
    once the projection has reached it."""
    if token is None:
        return state.reader
    pinned = await state.reader.at_token(parse_token(token))
    if pinned is None:
        raise HTTPException(
            status_code=503,
            detail=f"the lineage graph has not yet reached {token}; retry shortly",
            headers={"Retry-After": "1"},
        )
    return pinned


Reader = Annotated[LineageReader, Depends(get_reader)]
