"""What every long-running loop shares: waking on PostgreSQL NOTIFY, a stop signal,
housekeeping now and then, and one failure policy with the liveness it feeds.

The policy (:class:`LoopSupervisor`), the same for the relay, the embedded delivery and the
Kafka consumer runner:

- a round that fails with a *transient* error (:func:`is_transient`: a dependency is down or
  the connection to it was lost) is logged as a warning, counted, and retried after a capped
  exponential backoff; liveness stays ok (``/readyz`` is where a dependency shows as down);
- a round that fails with anything else (a bug, a schema the code does not expect) is logged
  with its traceback, counted, and retried after the same backoff, and ``/livez`` fails until
  a round of that loop succeeds again;
- a loop that has not gone round for ``stale_after_s`` (a round that hangs) fails ``/livez``
  too. Waiting out a transient error is going round: the loop beats while it waits;
- a loop that goes round but has made no progress for ``stall_after_s`` while work waits (its
  rounds fail, or one round waits out an outage in its handlers) is *stalled*: ``/livez`` fails,
  ``cmf_loop_stalled`` is 1, until it moves again. Whatever the cause, a dependency still down
  or a bug that looks like one, what waits is visible. A round that finds nothing to do counts
  as progress (nothing waits).

An outage is logged once when it begins (``dependency.unavailable``, warning) and once when it
ends (``dependency.available``, with how long it lasted and how many rounds failed); the failed
rounds in between are counted, not logged. The transient backoff is capped at a few seconds so
that a loop resumes within seconds of its dependency's return.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from cmf_common.dispatch import StoreUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

STALLED = Gauge(
    "cmf_loop_stalled",
    "1 while a background loop has made no progress for LOOP_STALL_S although work waits.",
    ["loop"],
)
LAST_PROGRESS = Gauge(
    "cmf_loop_last_progress_timestamp_seconds",
    "When each background loop last moved work on (or found none waiting).",
    ["loop"],
)
HEARTBEAT = Gauge(
    "cmf_worker_heartbeat_timestamp_seconds", "When each worker loop last went round.", ["worker"]
)
LOOP_FAILURES = Counter(
    "cmf_loop_failures_total",
    "Failed rounds of a background loop: kind transient (a dependency; retried) or fault"
    " (anything else; /livez fails until a round succeeds).",
    ["loop", "kind"],
)

# PostgreSQL errors that say the server or the connection is (for now) not there, or that the
# transaction lost a race retrying resolves (serialization failure, deadlock).
POSTGRES_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (a pool acquire or a query) is one
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, ConnectionDoesNotExistError among them
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # the client side of a lost connection
    asyncpg.TransactionRollbackError,
)
# Every error a loop retries without failing liveness. A store whose driver raises other
# errors for an outage translates them to ``StoreUnavailable`` at its boundary (the Neo4j
# store does for ``ServiceUnavailable`` and ``SessionExpired``), so this library needs no
# driver of its own.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *POSTGRES_TRANSIENT,
    KafkaError,  # the broker or the network to it (aiokafka's own errors)
    StoreUnavailable,
)


# What a round returns when work waits that another process holds for now (the embedded
# delivery's turn): not progress, so a turn held for too long shows as this loop's stall too.
WAITING = -1


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is unavailable (retry) rather than that the code is
    wrong (fault)."""
    return isinstance(exc, TRANSIENT_ERRORS)


class Heartbeat:
    """A loop beats once per round; liveness fails when it has not for ``stale_after_s``."""

    def __init__(self, worker: str, stale_after_s: float = 60.0) -> None:
        self.worker = worker
        self.stale_after_s = stale_after_s
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()
        HEARTBEAT.labels(self.worker).set_to_current_time()

    async def check(self) -> None:
        age = time.monotonic() - self.last
        if age > self.stale_after_s:
            raise RuntimeError(f"{self.worker} loop has not gone round for {age:.0f} s")


class LoopFault(Exception):
    """What a faulted loop's liveness check raises."""


class LoopStalled(LoopFault):
    """What a stalled loop's liveness check raises."""


class LoopSupervisor:
    """One loop's failure policy (see the module's docstring) and its liveness check.

    A loop runs its body inside :meth:`running` and each round through :meth:`round`, whose
    work returns how much it moved on (0: nothing waited); other work it carries
    (housekeeping) reports through :meth:`failed` and :meth:`succeeded` under a part name of
    its own, so its fault clears only when that work succeeds again.
    """

    def __init__(
        self,
        loop: str,
        *,
        stale_after_s: float = 60.0,
        stall_after_s: float = 60.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.loop = loop
        self.heartbeat = Heartbeat(loop, stale_after_s)
        self.stall_after_s = stall_after_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.failures = 0  # consecutive failed rounds
        self.faults: dict[str, str] = {}  # part -> the error that faulted it
        self.moved_at = time.monotonic()  # last progress, or last round that found no work
        # The last round found no work: until the next round looks, none is known to wait (a
        # loop polls seconds apart when idle, which must not read as a stall).
        self.idle = False
        self.last_error: str | None = None
        self.outage_since: float | None = None  # the first transient failure of an outage
        self.outage_failures = 0
        LAST_PROGRESS.labels(loop).set_to_current_time()
        STALLED.labels(loop).set_function(lambda: float(self.stalled_for() is not None))

    def beat(self) -> None:
        self.heartbeat.beat()

    def moved(self) -> None:
        """Work moved on, or none waited: the loop is not stalled."""
        self.moved_at = time.monotonic()
        LAST_PROGRESS.labels(self.loop).set_to_current_time()

    def stalled_for(self) -> float | None:
        """How long the loop has made no progress, when that is past ``stall_after_s``."""
        if self.idle:
            return None
        idle = time.monotonic() - self.moved_at
        return idle if idle > self.stall_after_s else None

    async def check(self) -> None:
        """Liveness: fails while a part of the loop is faulted, it is stalled, or its
        heartbeat is stale."""
        if self.faults:
            part, error = next(iter(self.faults.items()))
            raise LoopFault(f"{self.loop} {part} failed: {error}")
        stalled = self.stalled_for()
        if stalled is not None:
            why = f" (last error: {self.last_error})" if self.last_error else ""
            raise LoopStalled(
                f"{self.loop} has moved nothing on for {stalled:.0f} s while work waits{why}"
            )
        await self.heartbeat.check()

    def failed(self, exc: BaseException, part: str = "round") -> None:
        """Log and count a failure of ``part``; a fault also fails liveness. Call it from the
        ``except`` block, so the log carries the traceback."""
        error = f"{type(exc).__name__}: {exc}"[:300]
        self.last_error = error
        if is_transient(exc):
            LOOP_FAILURES.labels(self.loop, "transient").inc()
            self.outage_failures += 1
            if self.outage_since is None:
                self.outage_since = time.monotonic()
                log.warning("dependency.unavailable", loop=self.loop, part=part, error=error)
            return
        LOOP_FAILURES.labels(self.loop, "fault").inc()
        self.faults[part] = error
        log.exception("loop.failed", loop=self.loop, part=part, error=error)

    def succeeded(self, part: str = "round") -> None:
        if self.outage_since is not None:
            log.info(
                "dependency.available",
                loop=self.loop,
                part=part,
                down_s=round(time.monotonic() - self.outage_since, 1),
                failed_rounds=self.outage_failures,
            )
            self.outage_since, self.outage_failures = None, 0
        if part == "round":
            self.last_error = None
        if self.faults.pop(part, None) is not None:
            log.info("loop.recovered", loop=self.loop, part=part)

    def backoff(self) -> float:
        """The wait after the ``failures``-th consecutive failure: doubling, capped."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, self.failures - 1)))

    async def round(self, work: Callable[[], Awaitable[int]], stop: asyncio.Event) -> int | None:
        """Run one round under the policy: how much it moved on, or ``None`` once a failure
        has been reported and waited out (the caller just goes round again)."""
        if self.idle:
            self.moved()  # no work waited until this round looked
            self.idle = False
        self.beat()
        try:
            result = await work()
        except Exception as exc:
            self.failures += 1
            self.failed(exc)
            await wait_for(asyncio.Event(), stop, self.backoff())
            self.beat()
            return None
        self.failures = 0
        self.succeeded()
        if result != WAITING:
            self.moved()
        self.idle = result == 0
        return result

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Around a loop's whole body: an error that ends the loop (its setup failed) faults it
        for good, as nothing will go round again to clear it."""
        try:
            yield
        except Exception as exc:
            LOOP_FAILURES.labels(self.loop, "fault").inc()
            self.faults["loop"] = f"ended: {type(exc).__name__}: {exc}"[:300]
            log.exception("loop.ended", loop=self.loop)
            raise


class Housekeeping:
    """Work a loop does at most once per ``every_s`` (pruning, gauges), first on its first
    round. It never stops the loop that carries it: a failure is reported to the loop's
    supervisor as the part ``housekeeping`` and the work is tried again on its next turn."""

    def __init__(
        self, loop: LoopSupervisor, work: Callable[[], Awaitable[Any]], every_s: float
    ) -> None:
        self.loop = loop
        self.work = work
        self.every_s = every_s
        self.last: float | None = None

    def due(self) -> bool:
        """Whether the work is due now; if so, its turn is taken."""
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every_s:
            return False
        self.last = now
        return True

    async def run_if_due(self) -> None:
        if not self.due():
            return
        try:
            await self.work()
        except Exception as exc:
            self.loop.failed(exc, part="housekeeping")
        else:
            self.loop.succeeded("housekeeping")


class GaugeReading(Housekeeping):
    """Reads gauges for a loop at most every ``every_s``, each reading bounded by
    ``timeout_s``. A gauge is best effort: a reading that fails or takes too long is logged
    (once per streak) and the gauge keeps its last value; it never fails, stalls or stops the
    loop that carries it (unlike the loop's own housekeeping)."""

    def __init__(
        self,
        loop: LoopSupervisor,
        name: str,
        read: Callable[[], Awaitable[Any]],
        every_s: float,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(loop, read, every_s)
        self.name = name
        self.timeout_s = timeout_s
        self.failing = False

    async def run_if_due(self) -> None:
        if not self.due():
            return
        try:
            await asyncio.wait_for(self.work(), timeout=self.timeout_s)
        except Exception as exc:
            if not self.failing:
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "metrics.gauge_unread", loop=self.loop.loop, gauge=self.name, error=error
                )
            self.failing = True
        else:
            self.failing = False


class Listener:
    """An event set whenever ``channel`` is notified, LISTENed on over one pool connection of
    its own, and listened on again over a new one after that connection is lost (a PostgreSQL
    restart): a loop calls :meth:`ensure` each time round. The event is set when the
    connection is lost and when it listens again, since notifications in between are lost: the
    loop looks for work then instead of sleeping its whole poll interval."""

    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self.pool = pool
        self.channel = channel
        self.wake = asyncio.Event()
        self._conn: Any = None
        self._lost = False

    def _on_notify(self, *_: Any) -> None:
        self.wake.set()

    def _on_lost(self, *_: Any) -> None:
        self._lost = True
        self.wake.set()

    async def ensure(self) -> None:
        """Listen, unless already listening; a failure to (the database is down) is left to
        the next call, the loop polls meanwhile."""
        if self._conn is not None and not self._lost:
            return
        await self._release()
        try:
            conn = await self.pool.acquire()
        except TRANSIENT_ERRORS as exc:
            log.debug("listener.unavailable", channel=self.channel, error=type(exc).__name__)
            return
        try:
            await conn.add_listener(self.channel, self._on_notify)
            conn.add_termination_listener(self._on_lost)
        except TRANSIENT_ERRORS:
            await self.pool.release(conn)
            return
        self._conn, self._lost = conn, False
        self.wake.set()

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # A lost connection went back to the pool when it closed; a live one stops listening.
        with suppress(Exception):
            if not self._lost:
                await conn.remove_listener(self.channel, self._on_notify)
        with suppress(Exception):
            await self.pool.release(conn)

    async def close(self) -> None:
        await self._release()


@asynccontextmanager
async def notifications(pool: asyncpg.Pool, channel: str) -> AsyncIterator[Listener]:
    """A :class:`Listener` on ``channel`` while open (call its ``ensure`` each round)."""
    listener = Listener(pool, channel)
    try:
        yield listener
    finally:
        await listener.close()


async def wait_for(wake: asyncio.Event, stop: asyncio.Event, timeout_s: float) -> None:
    """Sleep until woken, stopped, or ``timeout_s`` passed (the safety net under NOTIFY)."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    wake.clear()
