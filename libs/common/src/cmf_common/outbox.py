"""All SQL of the transactional outbox: writing events with a change, and reading them back for
the relay (to Kafka) and the embedded delivery (in-process)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cmf_common.db import Connection, json_dumps
from cmf_common.events import Envelope, NewEvent, uuid7
from cmf_common.tracing import current_traceparent

OUTBOX_MIGRATIONS = "cmf_common.outbox_migrations"
NOTIFY_CHANNEL = "cmf_outbox"


async def add_events(
    conn: Connection, *, subject: str, source: str, events: Sequence[NewEvent]
) -> int:
    """Write ``events`` to the outbox in the caller's transaction; returns the last sequence.

    The caller must hold the subject's lock, so sequences of one subject are gap-free and in
    commit order. One statement for the whole batch; the NOTIFY is delivered at commit.
    """
    if not events:
        last = await conn.fetchval(
            "SELECT last_seq FROM outbox_sequences WHERE subject = $1", subject
        )
        return int(last or 0)
    last_seq = int(
        await conn.fetchval(
            "INSERT INTO outbox_sequences (subject, last_seq) VALUES ($1, $2)"
            " ON CONFLICT (subject) DO UPDATE SET last_seq = outbox_sequences.last_seq + $2"
            " RETURNING last_seq",
            subject,
            len(events),
        )
    )
    first_seq = last_seq - len(events) + 1
    await conn.execute(
        "INSERT INTO outbox (id, subject, seq, type, source, time, data, traceparent)"
        " SELECT e.id, $1, e.seq, e.type, $2, $3, e.data::jsonb, $4"
        " FROM unnest($5::uuid[], $6::bigint[], $7::text[], $8::text[])"
        "   AS e(id, seq, type, data)",
        subject,
        source,
        datetime.now(UTC),
        current_traceparent(),
        [uuid7() for _ in events],
        list(range(first_seq, last_seq + 1)),
        [e.type for e in events],
        [json_dumps(e.data) for e in events],
    )
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, subject)
    return last_seq


def envelope_of(row: Any) -> Envelope:
    return Envelope(
        id=str(row["id"]),
        type=row["type"],
        source=row["source"],
        subject=row["subject"],
        time=row["time"].isoformat(),
        seq=row["seq"],
        data=row["data"],
        traceparent=row["traceparent"],
    )


_ROW = "position, id, subject, seq, type, source, time, data, traceparent, delivery_attempts"


async def claim_unpublished(conn: Connection, *, subjects: int, rows: int) -> list[Any]:
    """Unpublished rows of up to ``subjects`` subjects that no other relay holds, in order.

    A subject is held by a transaction-scoped advisory lock until the caller commits, so two
    relays never have rows of one pipeline in flight at once. The rows are read by a second
    statement, after the locks are held: its snapshot then sees what the previous holder
    marked published before it let go.
    """
    held = await conn.fetch(
        "SELECT subject FROM ("
        "   SELECT subject, min(position) AS first FROM outbox"
        "   WHERE published_at IS NULL GROUP BY subject ORDER BY first LIMIT $1) AS waiting"
        " WHERE pg_try_advisory_xact_lock(hashtextextended('cmf.relay:' || subject, 0))",
        subjects,
    )
    if not held:
        return []
    return await conn.fetch(
        f"SELECT {_ROW} FROM outbox"  # noqa: S608 (_ROW is a constant column list)
        " WHERE published_at IS NULL AND subject = ANY($1::text[])"
        " ORDER BY position LIMIT $2",
        [r["subject"] for r in held],
        rows,
    )


async def mark_published(conn: Connection, positions: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])",
        list(positions),
    )


async def claim_undelivered(conn: Connection, *, rows: int) -> list[Any]:
    """Rows the embedded delivery has not processed yet, oldest first, for one deliverer at a
    time (servers sharing a database take turns)."""
    held = await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('cmf.delivery', 0))"
    )
    if not held:
        return []
    return await conn.fetch(
        f"SELECT {_ROW} FROM outbox"  # noqa: S608 (a constant column list)
        " WHERE processed_at IS NULL ORDER BY position LIMIT $1",
        rows,
    )


async def mark_processed(
    conn: Connection, positions: Sequence[int], failed: dict[int, str] | None = None
) -> None:
    failed = failed or {}
    await conn.execute(
        "UPDATE outbox o SET processed_at = now(),"
        "   delivery_attempts = o.delivery_attempts + 1, delivery_error = f.error"
        " FROM unnest($1::bigint[]) AS p(position)"
        " LEFT JOIN unnest($2::bigint[], $3::text[]) AS f(position, error)"
        "   ON f.position = p.position"
        " WHERE o.position = p.position",
        list(positions),
        list(failed),
        list(failed.values()),
    )


async def backlog(conn: Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE published_at IS NULL) AS unpublished,"
        "       count(*) FILTER (WHERE processed_at IS NULL) AS unprocessed"
        " FROM outbox"
    )
    assert row is not None
    return {"unpublished": int(row["unpublished"]), "unprocessed": int(row["unprocessed"])}


async def delete_older_than(conn: Connection, retention: timedelta) -> int:
    """Forget rows handed on (published, or processed in-process) longer ago than
    ``retention``."""
    done = await conn.execute(
        "DELETE FROM outbox WHERE coalesce(published_at, processed_at) < now() - $1::interval",
        retention,
    )
    return int(done.split()[-1])
