"""The ``Cache`` port for lineage answers: Redis when ``REDIS_URL`` is set, else an in-process
LRU. Keys carry the graph's version, so an entry is never invalidated, only left behind (Redis
evicts it, or its TTL ends; the LRU drops the least recently used).

A cache that fails is a miss, never a failed read: the answer is computed from the store.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

import structlog
from prometheus_client import Counter, Histogram

log = structlog.get_logger(__name__)

CACHE_LOOKUPS = Counter(
    "cmf_lineage_cache_lookups_total",
    "Lineage answer cache lookups, by result (hit, miss, error).",
    ["result"],
)
QUERY_SECONDS = Histogram(
    "cmf_lineage_query_seconds",
    "Time to answer a lineage query, by query and by where the answer came from.",
    ["query", "source"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class LruCache:
    """In-process, bounded by entries; what the embedded server uses."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[str, bytes] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    async def close(self) -> None:
        self.entries.clear()


class RedisCache:
    """Shared by every lineage replica; entries expire after ``ttl_s``."""

    def __init__(self, url: str, ttl_s: int = 300, prefix: str = "cmf:lineage:") -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.ttl_s = ttl_s
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        from redis.exceptions import RedisError

        try:
            value = await self.client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            CACHE_LOOKUPS.labels("error").inc()
            log.warning("lineage.cache_unavailable", error=type(exc).__name__)
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes) -> None:
        from redis.exceptions import RedisError

        try:
            await self.client.set(self.prefix + key, value, ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("lineage.cache_unavailable", error=type(exc).__name__)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
