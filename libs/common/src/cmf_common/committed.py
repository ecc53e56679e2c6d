"""Each pipeline's committed outbox sequence, posted where lineage reads can see it.

A push of pipeline ``p`` commits its events under ``p``'s next outbox sequences; the metadata
service posts the last one (``committed[p]``) on a board *after* the commit and *before* it
answers, so every acknowledged push is on the board. A lineage read covering ``p`` waits until the
projector has applied ``committed[p]`` (see :mod:`cmf_lineage.consistency`, which argues why that
makes lineage read-after-write consistent). The board is Redis when ``REDIS_URL`` is set (shared
by every process), else, in the embedded server, a value in the process.

A board only moves forward: ``post`` keeps the greater of what it holds and what it is given, and
moves ``total`` (the sum over pipelines) by the same amount in the same step, so a reader can tell
from ``total`` alone whether any pipeline's committed sequence moved since it last looked.

The metadata service's own answer, which the board only copies, is its ``outbox_sequences`` table,
served at ``GET /api/native/v1/pipelines/{p}/sequence`` and
``GET /api/native/v1/pipeline-sequences``: a reader for which the board fails asks there (over
HTTP; never the table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CommittedKeys:
    """The Redis keys of one event stream's board: a hash pipeline -> committed seq, and the sum
    of its values. Named by the events topic, which the metadata service and every lineage
    process of one deployment share (and another deployment on the same Redis does not)."""

    seqs: str
    total: str

    @classmethod
    def of(cls, events_topic: str) -> CommittedKeys:
        return cls(f"cmf:committed:{events_topic}", f"cmf:committed:{events_topic}:total")


COMMITTED_POSTS = Counter(
    "cmf_metadata_committed_posts_total",
    "Committed sequences posted to the board after a push, by outcome (ok, failed: kept to retry).",
    ["outcome"],
)


class CommittedUnavailable(Exception):
    """The board could not be written or read."""


@dataclass(frozen=True)
class CommittedRead:
    """What a reader learnt: ``seqs`` for the pipelines it asked about (``None``: not on the
    board, ask the metadata service), and ``total``, the sum over every pipeline (``None``: no
    total on the board)."""

    seqs: dict[str, int | None]
    total: int | None


class CommittedSource(Protocol):
    """Where a lineage read learns committed sequences."""

    async def read(self, pipelines: Sequence[str]) -> CommittedRead: ...

    async def read_all(self) -> tuple[dict[str, int], int]: ...


class CommittedBoard(Protocol):
    async def post(self, pipeline: str, seq: int) -> None:
        """Post ``seq`` as ``pipeline``'s committed sequence unless a greater one is posted."""
        ...


class LocalCommitted:
    """In-process: the embedded server's metadata and lineage services share one."""

    def __init__(self) -> None:
        self.committed: dict[str, int] = {}
        self.committed_total = 0

    async def post(self, pipeline: str, seq: int) -> None:
        # No await between the read and the writes: atomic on the event loop.
        held = self.committed.get(pipeline, 0)
        if seq > held:
            self.committed[pipeline] = seq
            self.committed_total += seq - held

    async def read(self, pipelines: Sequence[str]) -> CommittedRead:
        # Every post of this process is here, so a pipeline missing was never pushed.
        return CommittedRead({p: self.committed.get(p, 0) for p in pipelines}, self.committed_total)

    async def read_all(self) -> tuple[dict[str, int], int]:
        return dict(self.committed), self.committed_total


# Set-if-greater on the hash field, and the total moved by as much, in one step on the server.
POST_SCRIPT = """
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
local offered = tonumber(ARGV[2])
if offered > held then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('INCRBY', KEYS[2], offered - held)
end
return 0
"""


class RedisCommitted:
    def __init__(self, url: str, keys: CommittedKeys, timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis

        self.keys = keys
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._post: Any = self.client.register_script(POST_SCRIPT)

    async def post(self, pipeline: str, seq: int) -> None:
        with redis_failures_as(CommittedUnavailable):
            await self._post(keys=[self.keys.seqs, self.keys.total], args=[pipeline, seq])

    async def read(self, pipelines: Sequence[str]) -> CommittedRead:
        with redis_failures_as(CommittedUnavailable):
            async with self.client.pipeline(transaction=False) as pipe:
                queue_read(pipe, self.keys, pipelines)
                replies = await pipe.execute()
        return read_of_replies(pipelines, replies)

    async def read_all(self) -> tuple[dict[str, int], int]:
        with redis_failures_as(CommittedUnavailable):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.keys.seqs)
                pipe.get(self.keys.total)
                seqs, total = await pipe.execute()
        if total is None:
            raise CommittedUnavailable("Redis holds no committed total")
        return {_text(k): int(v) for k, v in seqs.items()}, int(total)

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextmanager
def redis_failures_as(error: type[Exception]) -> Iterator[None]:
    """Redis's errors, and the socket's, raised as ``error`` saying what failed."""
    from redis.exceptions import RedisError

    try:
        yield
    except (RedisError, OSError) as exc:
        raise error(f"Redis: {type(exc).__name__}: {exc}") from exc


def queue_read(pipe: Any, keys: CommittedKeys, pipelines: Sequence[str]) -> None:
    """Queue a committed read's commands on a Redis pipeline, after whatever else it carries;
    :func:`read_of_replies` reads their replies."""
    if pipelines:
        pipe.hmget(keys.seqs, list(pipelines))
    pipe.get(keys.total)


def read_of_replies(pipelines: Sequence[str], replies: Sequence[Any]) -> CommittedRead:
    """The read that :func:`queue_read`'s commands, the pipeline's last, answered."""
    return parse_read(pipelines, replies[-2] if pipelines else [], replies[-1])


def parse_read(pipelines: Sequence[str], seqs: Sequence[Any], total: Any) -> CommittedRead:
    """A :class:`CommittedRead` from Redis's replies to HMGET (``seqs``) and GET (``total``)."""
    return CommittedRead(
        {p: (int(v) if v is not None else None) for p, v in zip(pipelines, seqs, strict=True)},
        int(total) if total is not None else None,
    )


class CommittedPublisher:
    """What a push calls after its commit. Never fails the push: a post the board refused is kept
    (the greatest seq per pipeline) and retried every ``retry_s`` until it succeeds; at start,
    every pipeline's committed sequence is posted (``seed``), healing posts a crash lost and
    pipelines pushed before the board existed."""

    def __init__(self, board: CommittedBoard, retry_s: float = 0.5) -> None:
        self.board = board
        self.retry_s = retry_s
        self.pending: dict[str, int] = {}

    async def post(self, pipeline: str, seq: int) -> None:
        try:
            await self.board.post(pipeline, seq)
        except CommittedUnavailable as exc:
            if not self.pending:
                log.warning("metadata.committed_post_failed", pipeline=pipeline, error=str(exc))
            COMMITTED_POSTS.labels("failed").inc()
            self.pending[pipeline] = max(seq, self.pending.get(pipeline, 0))
        else:
            COMMITTED_POSTS.labels("ok").inc()

    async def post_all(self, seqs: Mapping[str, int]) -> None:
        for pipeline, seq in seqs.items():
            await self.post(pipeline, seq)

    async def retry(self) -> None:
        pending, self.pending = self.pending, {}
        await self.post_all(pending)

    @asynccontextmanager
    async def running(self, seed: Callable[[], Awaitable[Mapping[str, int]]]) -> Any:
        """Seed the board, then retry refused posts in the background while open."""
        try:
            await self.post_all(await seed())
        except Exception as exc:  # the database is checked elsewhere; reads fall back to HTTP
            log.warning("metadata.committed_seed_failed", error=type(exc).__name__)
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_s)
                if self.pending:
                    await self.retry()

        task = asyncio.create_task(loop(), name="metadata-committed-retry")
        try:
            yield self
        finally:
            stop.set()
            await task
