"""The SQL of Metahub: peers, their sync state, schedules and the run log (migration 0004).

Rows come back as plain dicts in the reference's field names; a peer's token never leaves
this module except as :func:`peer_token`'s ciphertext.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

from cmf_common.db import Connection

PEER_COLUMNS = "id, server_name, host_info, last_sync_time"
SCHEDULE_COLUMNS = (
    "id, server_id, timezone, start_time_utc, next_run_time_utc, active, status, one_time,"
    " created_at, recurrence_mode, interval_unit, interval_value, daily_time, weekly_day,"
    " weekly_time"
)
LOG_COLUMNS = (
    "id, schedule_id, server_id, run_time_utc, status, message, sync_type,"
    " executions_pulled, executions_merged"
)
SCHEDULE_LOGS_LIMIT = 50
COMPLETED_LOGS_LIMIT = 100


async def server_id(conn: Connection) -> str:
    """This server's identity (a UUID made by the migration)."""
    return str(await conn.fetchval("SELECT server_id FROM metahub_identity"))


async def add_peer(
    conn: Connection, name: str, url: str, token: bytes | None, now: int
) -> dict[str, Any] | None:
    """The new peer's row, or None when the name is taken."""
    row = await conn.fetchrow(
        "INSERT INTO metahub_peers (server_name, host_info, token_encrypted, created_at)"  # noqa: S608
        f" VALUES ($1, $2, $3, $4) ON CONFLICT (server_name) DO NOTHING RETURNING {PEER_COLUMNS}",
        name,
        url,
        token,
        now,
    )
    return dict(row) if row is not None else None


async def peers(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in await conn.fetch(f"SELECT {PEER_COLUMNS} FROM metahub_peers ORDER BY id")  # noqa: S608
    ]


async def peer_named(conn: Connection, name: str, url: str) -> dict[str, Any] | None:
    """The peer registered under ``name`` at ``url`` (as the reference's sync finds it)."""
    row = await conn.fetchrow(
        f"SELECT {PEER_COLUMNS} FROM metahub_peers WHERE server_name = $1 AND host_info = $2",  # noqa: S608
        name,
        url,
    )
    return dict(row) if row is not None else None


async def peer(conn: Connection, peer_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {PEER_COLUMNS} FROM metahub_peers WHERE id = $1", peer_id)  # noqa: S608
    return dict(row) if row is not None else None


async def peer_token(conn: Connection, peer_id: int) -> bytes | None:
    token: bytes | None = await conn.fetchval(
        "SELECT token_encrypted FROM metahub_peers WHERE id = $1", peer_id
    )
    return token


async def advance_last_sync(conn: Connection, peer_id: int, last_sync_time: int) -> None:
    """Called only once every merge of a sync has committed; never moves backwards."""
    await conn.execute(
        "UPDATE metahub_peers SET last_sync_time = GREATEST(coalesce(last_sync_time, 0), $2)"
        " WHERE id = $1",
        peer_id,
        last_sync_time,
    )


@dataclass(frozen=True)
class RunLog:
    """One row of ``metahub_sync_logs``: a sync's run, now or scheduled."""

    server_id: int
    schedule_id: int | None
    run_time_utc: int
    status: str
    message: str
    sync_type: str
    executions_pulled: int = 0
    executions_merged: int = 0


async def add_log(conn: Connection, run: RunLog) -> None:
    await conn.execute(
        "INSERT INTO metahub_sync_logs (server_id, schedule_id, run_time_utc, status, message,"
        " sync_type, executions_pulled, executions_merged) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        *astuple(run),
    )


async def _logs(conn: Connection, by: str, key: int, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` runs whose ``by`` column (a constant of this module) is ``key``."""
    rows = await conn.fetch(
        f"SELECT {LOG_COLUMNS} FROM metahub_sync_logs WHERE {by} = $1"  # noqa: S608
        " ORDER BY id DESC LIMIT $2",
        key,
        limit,
    )
    return [dict(r) for r in rows]


async def schedule_logs(conn: Connection, schedule_id: int) -> list[dict[str, Any]]:
    return await _logs(conn, "schedule_id", schedule_id, SCHEDULE_LOGS_LIMIT)


async def completed_logs(conn: Connection, peer_id: int) -> list[dict[str, Any]]:
    return await _logs(conn, "server_id", peer_id, COMPLETED_LOGS_LIMIT)


async def add_schedule(conn: Connection, values: dict[str, Any]) -> int:
    """Insert a schedule (``values`` keyed by column); returns its id."""
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    schedule: int = await conn.fetchval(
        f"INSERT INTO metahub_schedules ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
        " RETURNING id",
        *values.values(),
    )
    return schedule


async def schedules(conn: Connection, peer_id: int | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {SCHEDULE_COLUMNS} FROM metahub_schedules"  # noqa: S608
        " WHERE active AND ($1::bigint IS NULL OR server_id = $1) ORDER BY id",
        peer_id,
    )
    return [dict(r) for r in rows]


async def cancel_schedule(conn: Connection, schedule_id: int) -> bool:
    """Soft cancel (the reference's): inactive, ``cancelled``. False when there is none."""
    done = await conn.fetchval(
        "UPDATE metahub_schedules SET active = false, status = 'cancelled'"
        " WHERE id = $1 RETURNING id",
        schedule_id,
    )
    return done is not None


async def claimable_schedules(conn: Connection, now: int) -> list[dict[str, Any]]:
    """The active schedules due at ``now``, and those whose last claimed run is unfinished
    (``claimed_at``: its process may have died mid-run), locked for the caller's transaction
    (another replica's claim skips them). Each row has its ``claimed_at`` too."""
    rows = await conn.fetch(
        f"SELECT {SCHEDULE_COLUMNS}, claimed_at FROM metahub_schedules"  # noqa: S608
        " WHERE (active AND next_run_time_utc <= $1)"
        " OR (claimed_at IS NOT NULL AND status <> 'cancelled')"
        " ORDER BY next_run_time_utc, id FOR UPDATE SKIP LOCKED",
        now,
    )
    return [dict(r) for r in rows]


# pg_try_advisory_lock(RUN_LOCK, schedule id), a session lock: held by the process that runs the
# schedule from its claim until the run is finished, and let go when that process's
# connection goes (the process died).
RUN_LOCK = 0x434D4652  # "CMFR"


async def hold_run(conn: Connection, schedule_id: int) -> bool:
    """Take the schedule's run lock for ``conn``'s session; False when another holds it."""
    held: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", RUN_LOCK, schedule_id)
    return held


async def let_go_of_runs(conn: Connection) -> None:
    """Every run lock of ``conn``'s session (the caller holds nothing else at session level)."""
    await conn.execute("SELECT pg_advisory_unlock_all()")


async def set_claimed(conn: Connection, schedule_id: int, claimed_at: int | None) -> None:
    """Mark the schedule's run claimed at ``claimed_at`` (epoch ms); None: the run is done."""
    await conn.execute(
        "UPDATE metahub_schedules SET claimed_at = $2 WHERE id = $1", schedule_id, claimed_at
    )


async def set_next_run(conn: Connection, schedule_id: int, next_run: int | None) -> None:
    """The schedule's next run; None ends it (``completed``, a one-time schedule's end)."""
    if next_run is None:
        await conn.execute(
            "UPDATE metahub_schedules SET active = false, status = 'completed',"
            " next_run_time_utc = NULL WHERE id = $1",
            schedule_id,
        )
    else:
        await conn.execute(
            "UPDATE metahub_schedules SET next_run_time_utc = $2 WHERE id = $1",
            schedule_id,
            next_run,
        )
