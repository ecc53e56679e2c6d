"""What the tests of upstream's v1 lineage routes share: a client of the lineage app over the
graph store under test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from lineage_support import GraphUnderTest
from lineage_support import lineage_client as reads_client

from cmf_lineage.cache import LruCache
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.reads import LineageReader


@asynccontextmanager
async def lineage_client(
    graph: GraphUnderTest, graph_reader: GraphReader
) -> AsyncIterator[httpx.AsyncClient]:
    reader = LineageReader(graph_reader, graph.store, LruCache(), consumer="cmf-lineage")
    async with reads_client(reader) as http:
        yield http
