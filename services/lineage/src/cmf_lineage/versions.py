"""The graph version reads are keyed by, learned from a ``VersionBoard`` instead of the store.

The store's version (``GraphReader.graph_version``: the sum of the consumer's applied
sequence per pipeline) is committed in the same transaction as the graph writes it counts, and
grows with every applied batch. Reading it costs a store round trip (on Neo4j a sum over one
Progress node per pipeline), which is most of a cached answer's time; the board holds a copy
that a read gets in a fraction of a millisecond. The copy may lag the store; it must never
mislead. Why it does not:

1. The board is never ahead of the store. Every value posted is one the poster read from the
   store *after* the commits it wants to announce (the projector reads it after its batch
   committed; a token read after the token's write was applied; the sync loop whenever it
   runs), and the board keeps the greatest value it was given. Since the store's version only
   grows, whatever the board holds is a version the store has committed, whichever poster won
   a race and in whatever order the posts arrived.
2. So a cache entry never holds a graph older than its key. A read takes its version first
   (board or store) and reads the graph after; by (1) the store had committed at least that
   version before the graph read began, and the graph read sees every commit before it. An
   entry may hold a *newer* graph than its key, which is harmless.
3. A read with a consistency token never answers from before its token: once the store's
   applied sequence reaches the token, the version is read from the store (not the board,
   which may still lag the commit) and includes the token's write, since progress and effects
   commit together; the answer is keyed by that version, and (2) applies.
4. Nobody later sees a graph older than one already served. A token read posts its version to
   the board *before* it answers; a token-less read answers a version the board already held.
   Either way, once an answer at version v is out, the board holds at least v, and every read
   that starts afterwards takes a version of at least v and, by (2), a graph at least that new.
5. A write becomes visible to token-less reads when its projector posts, right after its
   commit. In between, such a read answers the version before, exactly as if it had arrived a
   moment earlier; nothing that depends on the write can have been served yet, because the
   only reads that could have seen it are token reads, which post it themselves (4). If a post
   is lost (the projector crashed between commit and post, Redis failed), the sync loop, which
   posts the store's version every ``sync_every_s`` (and at start), heals it within that time.
6. A board that fails never fails a read: the read takes the store's version. After an error
   this process keeps reading the store until a later post of the store's version succeeds
   (tried at most every ``retry_s``, or by the sync loop), so its own answers never go back to
   an older board value that a failed post left behind. Another process for which Redis kept
   working can, in that window, still see the older value: a lag bounded by the sync period.

What the argument assumes: the store's version never goes back. A Neo4j rebuild empties the
graph in place; were the board left alone, reads that miss would compute from the partial graph
under the board's old version, which the rebuilt graph reaches again. So ``lineage rebuild``
removes the board's value (Redis) once the graph is empty: a missing value sends readers to the
store, which posts its own, and the reads are back to where they were without a board (a read
that took the old value just before can still cache a partial answer under it; the rebuild says
reads are incomplete until it finishes). An in-process board cannot be reached from the rebuild
command: rebuild the Neo4j graph of an embedded server with the server stopped. The argument also
assumes that an applied batch raises some pipeline's applied sequence, i.e. events of one
pipeline are applied in their sequence order (one Kafka partition per pipeline; the outbox in
position order), which is what the store's version has counted on from the start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import KW_ONLY, dataclass, field
from typing import Protocol

import structlog
from prometheus_client import Counter

from cmf_common.committed import CommittedRead
from cmf_common.workers import wait_for
from cmf_lineage.board import BoardUnavailable, RedisBoard, VersionBoard

log = structlog.get_logger(__name__)

VERSION_READS = Counter(
    "cmf_lineage_graph_version_reads_total",
    "Graph versions taken for a read, by where from (board, store).",
    ["source"],
)
BOARD_FALLBACKS = Counter(
    "cmf_lineage_version_board_fallbacks_total",
    "Reads that took the store's version although a board is configured, by reason"
    " (unavailable: the board failed; missing: it held no version; suspended: after a failure,"
    " until a post succeeds again).",
    ["reason"],
)
BOARD_ERRORS = Counter(
    "cmf_lineage_version_board_errors_total",
    "Version board calls that failed, by operation (get, advance).",
    ["operation"],
)


class VersionSource(Protocol):
    async def graph_version(self, consumer: str) -> int: ...


@dataclass(eq=False)
class GraphVersions:
    """A consumer's graph version: from the board when there is one, else from the store."""

    source: VersionSource
    consumer: str
    board: VersionBoard | None = None
    _: KW_ONLY
    sync_every_s: float = 1.0
    retry_s: float = 1.0
    _suspended: bool = field(default=False, init=False)
    _retry_at: float = field(default=0.0, init=False)
    _publish_failing: bool = field(default=False, init=False)

    async def latest(self) -> int:
        """The version a read without a token answers at (see the module's argument)."""
        if self.board is None:
            VERSION_READS.labels("store").inc()
            return await self.source.graph_version(self.consumer)
        if self._suspended:
            BOARD_FALLBACKS.labels("suspended").inc()
            return await self.committed()
        try:
            posted = await self.board.get(self.consumer)
        except BoardUnavailable as exc:
            self._failed("get", exc)
            BOARD_FALLBACKS.labels("unavailable").inc()
            return await self.committed()
        if posted is None:
            BOARD_FALLBACKS.labels("missing").inc()
            return await self.committed()
        VERSION_READS.labels("board").inc()
        return posted

    async def latest_with_committed(
        self, pipelines: Sequence[str]
    ) -> tuple[int, CommittedRead | None]:
        """:meth:`latest`, and with it, when the board is Redis's (where the metadata service
        posts them), the pipelines' committed sequences read in the same round trip; ``None``
        when they were not read (no Redis board, or it failed)."""
        board = self.board
        if not isinstance(board, RedisBoard) or board.committed is None or self._suspended:
            return await self.latest(), None
        try:
            posted, committed = await board.read_with_committed(self.consumer, pipelines)
        except BoardUnavailable as exc:
            self._failed("get", exc)
            BOARD_FALLBACKS.labels("unavailable").inc()
            return await self.committed(), None
        if posted is None:
            BOARD_FALLBACKS.labels("missing").inc()
            return await self.committed(), committed
        VERSION_READS.labels("board").inc()
        return posted, committed

    async def committed(self) -> int:
        """The store's version, posted to the board before it is returned. Store errors
        propagate; a board error is counted and leaves the board to the next post."""
        VERSION_READS.labels("store").inc()
        version = await self.source.graph_version(self.consumer)
        if self.board is None or (self._suspended and time.monotonic() < self._retry_at):
            return version
        try:
            await self.board.advance(self.consumer, version)
        except BoardUnavailable as exc:
            self._failed("advance", exc)
        else:
            self._suspended = False
        return version

    async def publish(self) -> None:
        """After a projector's commit: post the store's version. Never raises, since the batch
        is committed whatever happens here; a failed post is healed by the sync loop."""
        if self.board is None:
            return
        try:
            await self.committed()
        except Exception as exc:
            # One line when posting starts failing (the store is down), one when it works again.
            if not self._publish_failing:
                log.warning("lineage.version_publish_failed", error=type(exc).__name__)
            self._publish_failing = True
        else:
            if self._publish_failing:
                log.info("lineage.version_publish_recovered")
            self._publish_failing = False

    async def sync(self) -> None:
        """Post the store's version now, even while suspended (it is how a board recovers)."""
        self._retry_at = 0.0
        await self.publish()

    async def keep_synced(self, stop: asyncio.Event) -> None:
        """Post the store's version at once and then every ``sync_every_s`` until ``stop``."""
        while not stop.is_set():
            await self.sync()
            await wait_for(asyncio.Event(), stop, self.sync_every_s)

    @asynccontextmanager
    async def kept_synced(self) -> AsyncIterator[None]:
        """While open, :meth:`keep_synced` runs in the background; without a board, nothing
        does (there is nothing to heal)."""
        if self.board is None:
            yield
            return
        stop = asyncio.Event()
        task = asyncio.create_task(self.keep_synced(stop), name="lineage-version-sync")
        try:
            yield
        finally:
            stop.set()
            await task

    def _failed(self, operation: str, exc: BoardUnavailable) -> None:
        BOARD_ERRORS.labels(operation).inc()
        if not self._suspended:
            log.warning("lineage.version_board_unavailable", operation=operation, error=str(exc))
        self._suspended = True
        self._retry_at = time.monotonic() + self.retry_s
