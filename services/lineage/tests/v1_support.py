"""What the tests of upstream's v1 lineage routes share: a client of the lineage app over the
graph store under test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from lineage_support import GraphUnderTest

from cmf_common.service import install_state
from cmf_lineage.api.deps import LineageState
from cmf_lineage.app import create_app
from cmf_lineage.cache import LruCache
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings


@asynccontextmanager
async def lineage_client(
    graph: GraphUnderTest, graph_reader: GraphReader
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(LineageSettings())
    reader = LineageReader(graph_reader, graph.store, LruCache(), consumer="cmf-lineage")
    install_state(app, LineageState(reader=reader))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lineage") as http:
        yield http
