"""Serving lineage reads: waiting until the graph includes every acknowledged push of the
pipelines a read covers, and a consistency token's write (:mod:`cmf_lineage.consistency`), and
answers cached under the graph's version (taken from the version board, or from the store after
a wait; see :mod:`cmf_lineage.versions`). FastAPI-free; the routes call these."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cmf_common.errors import Invalid
from cmf_lineage.cache import CACHE_LOOKUPS, QUERY_SECONDS, Cache
from cmf_lineage.consistency import Consistency
from cmf_lineage.graph import GraphStore
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.versions import GraphVersions


@dataclass(frozen=True)
class Token:
    pipeline: str
    seq: int


# ``<pipeline>:<seq>``: the pipeline up to the last colon (not blank), the seq ASCII digits.
TOKEN_FORM = re.compile(r"\s*(\S.*):([0-9]+)\s*")


def parse_token(raw: str) -> Token:
    """``<percent-encoded pipeline>:<seq>``, as the push answers it."""
    found = TOKEN_FORM.fullmatch(raw)
    if found is None:
        raise Invalid(
            "X-CMF-Consistency-Token must be <percent-encoded pipeline>:<seq>",
            code="invalid_consistency_token",
        )
    return Token(unquote(found[1]), int(found[2]))


class LineageReader:
    def __init__(
        self,
        graph: GraphReader,
        store: GraphStore,
        cache: Cache,
        consumer: str,
        wait_s: float = 5.0,
        versions: GraphVersions | None = None,
        consistency: Consistency | None = None,
    ) -> None:
        self.graph = graph
        self.store = store
        self.cache = cache
        self.consumer = consumer
        self.wait_s = wait_s
        # Without a board, every read takes the store's version.
        self.versions = versions or GraphVersions(graph, consumer)
        # Without one, only consistency tokens are waited for.
        self.consistency = consistency or Consistency(store, self.versions, consumer, wait_s)
        self.pinned: int | None = None
        # The pipeline prefix the answers keep to (the request's principal's): ``graph`` is
        # then the store's reader within it, and the cache keys carry it.
        self.prefix: str | None = None

    async def consistent(
        self,
        pipelines: Sequence[str] | None,
        token: Token | None = None,
        prefix: str | None = None,
    ) -> LineageReader:
        """A reader pinned to a version that includes every acknowledged push of ``pipelines``
        (``None``: of every pipeline) and ``token``'s write, whose answers keep to the
        pipelines inside ``prefix`` when it is given. Raises
        :class:`~cmf_lineage.consistency.Behind` when the projection did not reach them within
        ``wait_s``."""
        need = {token.pipeline: token.seq} if token is not None else {}
        pinned = copy.copy(self)
        pinned.pinned = await self.consistency.version(pipelines, need)
        if prefix is not None:
            pinned.graph = self.graph.within(prefix)
            pinned.prefix = prefix
        return pinned

    async def answer(
        self, query: str, params: dict[str, Any], compute: Callable[[], Awaitable[Any]]
    ) -> bytes:
        """The JSON answer to ``query`` with ``params``: from the cache when the graph has not
        changed since it was computed, else computed and cached. The version is read before the
        graph, so an entry never holds a graph older than its key says."""
        started = time.perf_counter()
        version = self.pinned if self.pinned is not None else await self.versions.latest()
        keyed = [query, params] if self.prefix is None else [query, params, self.prefix]
        digest = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()
        key = f"{self.consumer}:v{version}:{query}:{digest}"
        cached = await self.cache.get(key)
        if cached is not None:
            CACHE_LOOKUPS.labels("hit").inc()
            QUERY_SECONDS.labels(query, "cache").observe(time.perf_counter() - started)
            return cached
        CACHE_LOOKUPS.labels("miss").inc()
        body = json.dumps(await compute(), separators=(",", ":")).encode()
        await self.cache.set(key, body)
        QUERY_SECONDS.labels(query, "store").observe(time.perf_counter() - started)
        return body
