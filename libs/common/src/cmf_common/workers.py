"""What every long-running loop shares: waking on PostgreSQL NOTIFY, a liveness heartbeat,
a stop signal, and housekeeping now and then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from prometheus_client import Gauge

log = structlog.get_logger(__name__)

HEARTBEAT = Gauge(
    "cmf_worker_heartbeat_timestamp_seconds", "When each worker loop last went round.", ["worker"]
)


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


class Housekeeping:
    """Work a loop does at most once per ``every_s`` (pruning, gauges), first on its first
    round. A database error is logged and left to the next turn: housekeeping must never stop
    the loop that carries it."""

    def __init__(self, name: str, work: Callable[[], Awaitable[Any]], every_s: float) -> None:
        self.name = name
        self.work = work
        self.every_s = every_s
        self.last: float | None = None

    async def run_if_due(self) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every_s:
            return
        self.last = now
        try:
            await self.work()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning(f"{self.name}.maintenance_failed", error=str(exc))


@asynccontextmanager
async def notifications(pool: asyncpg.Pool, channel: str) -> AsyncIterator[asyncio.Event]:
    """An event set whenever ``channel`` is notified; holds one connection while open."""
    wake = asyncio.Event()

    def on_notify(*_: Any) -> None:
        wake.set()

    conn = await pool.acquire()
    try:
        await conn.add_listener(channel, on_notify)
        try:
            yield wake
        finally:
            await conn.remove_listener(channel, on_notify)
    finally:
        await pool.release(conn)


async def wait_for(wake: asyncio.Event, stop: asyncio.Event, timeout_s: float) -> None:
    """Sleep until woken, stopped, or ``timeout_s`` passed (the safety net under NOTIFY)."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    wake.clear()
