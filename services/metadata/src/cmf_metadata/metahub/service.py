"""The Metahub of one server: registrations, syncs and the schedule runner over its pool.

Routes of both API generations call :class:`Metahub`; the lifespan makes one with the peer
HTTP client (timeouts from settings) and runs :meth:`Metahub.run_schedules` as a background
task. Every sync of one peer is serialised (a PostgreSQL advisory lock per peer), so a sync
now and a scheduled one, or two replicas, never merge the same changes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import structlog

from cmf_common.committed import CommittedPublisher
from cmf_common.db import Connection
from cmf_metadata.files import FileStore
from cmf_metadata.metahub.peers import (
    MetahubError,
    NameTaken,
    PeerClient,
    PeerNotFound,
    PeerUnreachable,
    SelfRegistration,
    TokenCipher,
    normalize_url,
)
from cmf_metadata.metahub.schedules import Clock, ScheduleSpec, SystemClock, next_run, row_of
from cmf_metadata.metahub.sync import SyncResult, sync_once
from cmf_metadata.store import metahub as store

log = structlog.get_logger(__name__)

# pg_advisory_xact_lock(SYNC_LOCK, peer id): one sync of a peer at a time, across replicas.
SYNC_LOCK = 0x434D4648  # "CMFH"
# pg_try_advisory_xact_lock(SCHEDULER_LOCK): one replica claims the due schedules of a tick.
SCHEDULER_LOCK = 0x434D4653


class NoTokenKey(MetahubError):
    """This server cannot keep a peer token: no ``METAHUB_SECRET_KEY``."""

    status = 403


@dataclass
class Metahub:
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    cipher: TokenCipher | None = None
    committed: CommittedPublisher | None = None
    overlap_ms: int = 5000
    clock: Clock = field(default_factory=SystemClock)
    # The hosts a peer may be registered at (None: any); the server calls what is registered.
    peer_hosts: frozenset[str] | None = None
    # Where the python-env files a sync fetches go (None: not fetched), and their size limit.
    files: FileStore | None = None
    max_file_bytes: int = 512 * 1024 * 1024

    async def server_id(self) -> str:
        async with self.pool.acquire() as conn:
            return await store.server_id(conn)

    # -- peers ------------------------------------------------------------------------------

    async def register(
        self, name: str, url: str, *, own_url: str, token: str | None = None
    ) -> dict[str, Any]:
        """Register the peer at ``url`` once it acknowledged us; its row.

        Refused: a bad URL, our own address (``own_url``, or an acknowledge answered with our
        own server id), a name taken, a token without ``METAHUB_SECRET_KEY``."""
        name = name.strip()
        if not name or len(name) > 256:
            raise MetahubError("server_name must have 1 to 256 characters")
        url = normalize_url(url, self.peer_hosts)
        token = token or None
        if url == own_url.rstrip("/"):
            raise SelfRegistration("Cannot register the server with its own details.")
        if token is not None and self.cipher is None:
            raise NoTokenKey("A peer token needs METAHUB_SECRET_KEY set on this server")
        async with self.pool.acquire() as conn:
            ours = await store.server_id(conn)
            if any(p["server_name"] == name for p in await store.peers(conn)):
                raise NameTaken("Server name already exists. Please use a unique server name")
        theirs = await PeerClient(self.http, url, token).acknowledge(name, own_url)
        if theirs == ours:
            raise SelfRegistration("Cannot register the server with its own details.")
        sealed = self.cipher.encrypt(token) if token is not None and self.cipher else None
        async with self.pool.acquire() as conn:
            row = await store.add_peer(conn, name, url, sealed, self.clock.now_ms())
        if row is None:
            raise NameTaken("Server name already exists. Please use a unique server name")
        log.info("metahub.registered", peer=url, server_name=name)
        return row

    async def peers(self) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await store.peers(conn)

    async def peer_named(self, name: str, url: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            row = await store.peer_named(conn, name, url.strip().rstrip("/"))
        if row is None:
            raise PeerNotFound("Server not found in the registered servers list")
        return row

    async def peer(self, peer_id: int) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            row = await store.peer(conn, peer_id)
        if row is None:
            raise PeerNotFound("Registered server not found")
        return row

    # -- sync -------------------------------------------------------------------------------

    async def sync(
        self, peer_id: int, *, sync_type: str = "sync_now", schedule_id: int | None = None
    ) -> SyncResult:
        """Sync with the peer now and log the run; :class:`PeerUnreachable` (logged) when the
        peer is down or answers wrong. Runs in a task of its own, so a client that goes away
        does not cut a sync short."""
        return await asyncio.shield(
            asyncio.create_task(self._sync(peer_id, sync_type, schedule_id))
        )

    async def _sync(self, peer_id: int, sync_type: str, schedule_id: int | None) -> SyncResult:
        started = self.clock.now_ms()
        async with self.pool.acquire() as lock_conn, lock_conn.transaction():
            await lock_conn.execute("SELECT pg_advisory_xact_lock($1, $2)", SYNC_LOCK, peer_id)
            row = await store.peer(lock_conn, peer_id)
            if row is None:
                raise PeerNotFound("Server not found in the registered servers list")
            sealed = await store.peer_token(lock_conn, peer_id)
            token = self.cipher.decrypt(sealed) if sealed is not None and self.cipher else None
            client = PeerClient(self.http, row["host_info"], token)
            failed: PeerUnreachable | None = None
            try:
                result = await sync_once(
                    self.pool,
                    client,
                    row["last_sync_time"],
                    committed=self.committed,
                    overlap_ms=self.overlap_ms,
                    files=self.files,
                    max_file_bytes=self.max_file_bytes,
                )
            except PeerUnreachable as exc:
                failed = exc
            else:
                # Every merge has committed: only now does the peer's sync point move.
                async with self.pool.acquire() as conn:
                    await store.advance_last_sync(conn, peer_id, result.last_sync_time)
        if failed is not None:
            log.warning("metahub.sync_failed", peer=row["host_info"], reason=failed.message)
            await self._log(
                store.RunLog(peer_id, schedule_id, started, "failed", failed.message, sync_type)
            )
            raise failed
        await self._log(
            store.RunLog(
                peer_id,
                schedule_id,
                started,
                result.status,
                result.message,
                sync_type,
                result.executions_pulled,
                result.executions_merged,
            )
        )
        return result

    async def _log(self, run: store.RunLog) -> None:
        async with self.pool.acquire() as conn:
            await store.add_log(conn, run)

    async def completed_logs(self, peer_id: int) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await store.completed_logs(conn, peer_id)

    # -- schedules --------------------------------------------------------------------------

    async def add_schedule(self, spec: ScheduleSpec) -> dict[str, Any]:
        await self.peer(spec.server_id)
        row = row_of(spec, self.clock.now_ms())
        async with self.pool.acquire() as conn:
            schedule_id = await store.add_schedule(conn, row)
        return {
            "message": "Schedule created",
            "schedule_id": schedule_id,
            "next_run_time_utc": row["next_run_time_utc"],
        }

    async def schedules(self, peer_id: int | None) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await store.schedules(conn, peer_id)

    async def schedule_logs(self, schedule_id: int) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await store.schedule_logs(conn, schedule_id)

    async def cancel_schedule(self, schedule_id: int) -> bool:
        async with self.pool.acquire() as conn:
            return await store.cancel_schedule(conn, schedule_id)

    async def claim_due(self, holder: Connection) -> list[dict[str, Any]]:
        """The schedules to run now, claimed in one transaction under the scheduler's advisory
        lock, each held by ``holder``'s session (a run lock) until its run is finished.

        A due schedule is moved to its next run (or ended), so one replica runs a due run, once;
        one that missed several runs (the server was down) is claimed once, its next run the
        first after now. A schedule whose claimed run is unfinished and whose run lock is free
        was left by a process that died mid-run: it is claimed and run again (a sync is
        idempotent), so a restart loses no run."""
        now = self.clock.now_ms()
        claimed: list[dict[str, Any]] = []
        async with holder.transaction():
            if not await holder.fetchval("SELECT pg_try_advisory_xact_lock($1)", SCHEDULER_LOCK):
                return []
            for schedule in await store.claimable_schedules(holder, now):
                if not await store.hold_run(holder, schedule["id"]):
                    continue  # another process is running it
                due = schedule["active"] and schedule["next_run_time_utc"] <= now
                if due:
                    await store.set_next_run(holder, schedule["id"], next_run(schedule, after=now))
                elif schedule["claimed_at"] is not None:
                    log.warning("metahub.schedule_rerun", schedule_id=schedule["id"])
                await store.set_claimed(holder, schedule["id"], now)
                claimed.append(schedule)
        return claimed

    async def run_due(self) -> int:
        """Claim the schedules to run and sync each; how many ran (failures are logged)."""
        async with self.pool.acquire() as holder:
            try:
                due = await self.claim_due(holder)
                for schedule in due:
                    await self._run(schedule)
                return len(due)
            finally:
                await store.let_go_of_runs(holder)

    async def _run(self, schedule: dict[str, Any]) -> None:
        sync_type = "one_time" if schedule["one_time"] else str(schedule["recurrence_mode"])
        with contextlib.suppress(MetahubError):
            await self.sync(schedule["server_id"], sync_type=sync_type, schedule_id=schedule["id"])
        # The run is logged, a failed one too: its claim is done. A process that stops before
        # this line (killed, or shut down mid-sync) leaves the claim for the next tick.
        async with self.pool.acquire() as conn:
            await store.set_claimed(conn, schedule["id"], None)

    async def run_schedules(self, every_s: float) -> None:
        """The background loop: run due schedules every ``every_s`` seconds, the first tick at
        once (a run missed while the server was down runs on start)."""
        while True:
            try:
                await self.run_due()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("metahub.scheduler_failed", reason=repr(exc))
            await asyncio.sleep(every_s)
