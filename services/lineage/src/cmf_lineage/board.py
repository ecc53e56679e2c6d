"""The ``VersionBoard`` port: where a consumer's graph version is posted so that reads can learn
it without a store round trip. Redis when ``REDIS_URL`` is set (shared by every lineage process),
else, in the embedded server, a value in the process that also runs the projector.

A board only ever moves forward: ``advance`` keeps the greater of what it holds and what it is
given, atomically, so writers racing with each other (two projector replicas, a sync loop, a
read that pins a token's version) can post in any order. Why that is enough for the reads is
argued in :mod:`cmf_lineage.versions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from cmf_common.committed import (
    CommittedKeys,
    CommittedRead,
    queue_read,
    read_of_replies,
    redis_failures_as,
)


class BoardUnavailable(Exception):
    """The board could not be read or written; the caller falls back to the store."""


class VersionBoard(Protocol):
    async def get(self, consumer: str) -> int | None:
        """The version posted for ``consumer``, or ``None`` when none is."""
        ...

    async def advance(self, consumer: str, version: int) -> int:
        """Post ``version`` unless a greater one is posted; returns what the board holds."""
        ...

    async def forget(self, consumer: str) -> None:
        """Remove the version posted for ``consumer`` (its graph was emptied)."""
        ...

    async def close(self) -> None: ...


class LocalBoard:
    """In-process: for the embedded server, whose projector runs beside its reads."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}

    async def get(self, consumer: str) -> int | None:
        return self.versions.get(consumer)

    async def advance(self, consumer: str, version: int) -> int:
        # No await between the read and the write: atomic on the event loop.
        held = max(self.versions.get(consumer, version), version)
        self.versions[consumer] = held
        return held

    async def forget(self, consumer: str) -> None:
        self.versions.pop(consumer, None)

    async def close(self) -> None:
        self.versions.clear()


# Set-if-greater in one step on the server. Versions are integers far below 2^53, which Lua's
# numbers (doubles) hold exactly; the reply is the value the key holds afterwards.
_ADVANCE = """
local held = tonumber(redis.call('GET', KEYS[1]))
local offered = tonumber(ARGV[1])
if held == nil or offered > held then
  redis.call('SET', KEYS[1], ARGV[1])
  return offered
end
return held
"""


class RedisBoard:
    """One key per consumer, ``<prefix><consumer>``, without expiry (Redis may still evict it:
    a missing value sends readers to the store, which posts it again)."""

    def __init__(
        self,
        url: str,
        prefix: str = "cmf:lineage:version:",
        timeout_s: float = 0.5,
        max_connections: int = 64,
        committed: CommittedKeys | None = None,
    ) -> None:
        import redis.asyncio as aioredis

        # A bounded pool that makes a burst of reads wait for a connection (up to the timeout)
        # instead of failing them, as the default pool does past its size.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self.client = aioredis.Redis.from_pool(pool)  # the client closes the pool
        self.prefix = prefix
        # Where the metadata service posts the committed seqs this board's reads also take
        # (None: a board only for versions, as a worker's).
        self.committed = committed
        self._advance: Any = self.client.register_script(_ADVANCE)

    async def read_with_committed(
        self, consumer: str, pipelines: Sequence[str]
    ) -> tuple[int | None, CommittedRead]:
        """The consumer's version and the pipelines' committed sequences
        (:mod:`cmf_common.committed`, posted by the metadata service on the same Redis), in one
        round trip."""
        if self.committed is None:
            raise BoardUnavailable("this board reads no committed sequences")
        with redis_failures_as(BoardUnavailable):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(self.prefix + consumer)
                queue_read(pipe, self.committed, pipelines)
                replies = await pipe.execute()
        try:
            version = int(replies[0]) if replies[0] is not None else None
            return version, read_of_replies(pipelines, replies)
        except ValueError as exc:
            raise BoardUnavailable(f"Redis holds a non-integer for {consumer}") from exc

    async def get(self, consumer: str) -> int | None:
        with redis_failures_as(BoardUnavailable):
            value = await self.client.get(self.prefix + consumer)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise BoardUnavailable(f"Redis holds {value!r} for {consumer}") from exc

    async def advance(self, consumer: str, version: int) -> int:
        with redis_failures_as(BoardUnavailable):
            held = await self._advance(keys=[self.prefix + consumer], args=[version])
        return int(held)

    async def forget(self, consumer: str) -> None:
        with redis_failures_as(BoardUnavailable):
            await self.client.delete(self.prefix + consumer)

    async def close(self) -> None:
        await self.client.aclose()
