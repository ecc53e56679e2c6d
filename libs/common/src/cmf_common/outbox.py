"""All SQL of the transactional outbox: writing events with a change, and reading them back for
the relay (to Kafka) and the embedded delivery (in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cmf_common.db import Connection, json_dumps
from cmf_common.events import SPECVERSION, Envelope, NewEvent, uuid7
from cmf_common.tracing import span, traceparent_of

OUTBOX_MIGRATIONS = "cmf_common.outbox_migrations"
NOTIFY_CHANNEL = "cmf_outbox"


async def add_events(
    conn: Connection, *, subject: str, source: str, events: Sequence[NewEvent]
) -> int:
    """Write ``events`` to the outbox in the caller's transaction; returns the last sequence.

    The caller must hold the subject's lock, so sequences of one subject are gap-free and in
    commit order. One statement for the whole batch; the NOTIFY is delivered at commit.
    """

    async def one() -> AsyncIterator[Sequence[NewEvent]]:
        yield events

    return await add_event_batches(
        conn, subject=subject, source=source, count=len(events), batches=one()
    )


async def add_event_batches(
    conn: Connection,
    *,
    subject: str,
    source: str,
    count: int,
    batches: AsyncIterable[Sequence[NewEvent]],
) -> int:
    """:func:`add_events` for ``count`` events made batch by batch (one statement each), so a
    big change never holds all its events, serialised, at once. ``batches`` must yield exactly
    ``count`` events, in order."""
    if count == 0:
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
            count,
        )
    )
    next_seq = last_seq - count + 1
    # The rows carry this span's context: the relay's publish span and the consumers' spans
    # continue the trace of the change that wrote them (cmf_common.tracing).
    with span("outbox.write", subject=subject) as written:
        written.set_attribute("cmf.outbox.events", count)
        now, traceparent = datetime.now(UTC), traceparent_of(written)
        async for events in batches:
            if not events:
                continue
            await conn.execute(
                "INSERT INTO outbox (id, subject, seq, type, source, time, data, traceparent)"
                " SELECT e.id, $1, e.seq, e.type, $2, $3, e.data::jsonb, $4"
                " FROM unnest($5::uuid[], $6::bigint[], $7::text[], $8::text[])"
                "   AS e(id, seq, type, data)",
                subject,
                source,
                now,
                traceparent,
                [uuid7() for _ in events],
                list(range(next_seq, next_seq + len(events))),
                [e.type for e in events],
                [json_dumps(e.data) for e in events],
            )
            next_seq += len(events)
    if next_seq != last_seq + 1:
        raise ValueError(f"{next_seq - (last_seq - count + 1)} events written, {count} announced")
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, subject)
    return last_seq


def _envelope_fields(row: Any) -> dict[str, Any]:
    """An outbox row's envelope fields, all but ``data``."""
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "source": row["source"],
        "subject": row["subject"],
        "time": row["time"].isoformat(),
        "seq": row["seq"],
        "traceparent": row["traceparent"],
    }


def envelope_of(row: Any) -> Envelope:
    return Envelope(data=row["data"], **_envelope_fields(row))


def envelope_json(row: Any) -> bytes:
    """The envelope of a row read by ``claim_unpublished`` (``data`` as JSON text), serialised:
    the same document as ``envelope_of(row).to_json()``, the payload spliced in unparsed."""
    return orjson.dumps(
        {
            **_envelope_fields(row),
            "data": orjson.Fragment(row["data"]),
            "specversion": SPECVERSION,
        }
    )


_COLUMNS = ("position", "id", "subject", "seq", "type", "source", "time", "data", "traceparent")
_ROW = ", ".join(_COLUMNS)
# The relay forwards ``data`` as it is stored: read as JSON text, it is never decoded and
# encoded again (see ``envelope_json``).
_ROW_OF_O = ", ".join("o.data::text AS data" if c == "data" else f"o.{c}" for c in _COLUMNS)


@dataclass(frozen=True)
class Claim:
    """What one relay round took: the rows to publish, in ``seq`` order per subject, the
    highest sequence taken per subject, to mark once the bus acknowledged them, and how many
    sequence numbers that moves past (the rows, and any deleted before they were published)."""

    rows: list[Any]
    upto: dict[str, int]
    moved: int = 0


async def claim_unpublished(conn: Connection, *, subjects: int, rows: int) -> Claim:
    """Unpublished rows of up to ``subjects`` subjects that no other relay holds, oldest
    waiting subject first, at most ``rows`` in all.

    A subject is held by a transaction-scoped advisory lock until the caller commits, so two
    relays never have rows of one pipeline in flight at once. Each step is its own statement on
    purpose: the bounds are read after the locks are held, so their snapshot sees the mark the
    previous holder committed before it let go. Every step is bounded by the round, not by the
    backlog: the waiting subjects come from the per-subject counters, and the rows are read as
    ``seq`` ranges through the ``(subject, seq)`` key, in index order, so nothing is sorted.
    """
    # The lock is tried on the waiting subjects in order and the LIMIT stops at ``subjects``
    # held: a subject another relay holds is passed over, not counted, so relays side by side
    # share the backlog. ``OFFSET 0`` fences the ordered subquery: without it the planner
    # pushes the lock call down to the scan and locks every waiting subject; with it the
    # executor pulls rows through the lock call only until the limit is reached.
    held = await conn.fetch(
        "SELECT subject FROM ("
        "   SELECT s.subject, (SELECT o.position FROM outbox o"
        "       WHERE o.subject = s.subject AND o.seq = coalesce(p.published_seq, 0) + 1) AS first"
        "   FROM outbox_sequences s LEFT JOIN outbox_published p USING (subject)"
        "   WHERE s.last_seq > coalesce(p.published_seq, 0)"
        "   ORDER BY first OFFSET 0) AS waiting"
        " WHERE pg_try_advisory_xact_lock(hashtextextended('cmf.relay:' || subject, 0))"
        " LIMIT $1",
        subjects,
    )
    if not held:
        return Claim([], {})
    bounds = await conn.fetch(
        "SELECT h.subject, coalesce(p.published_seq, 0) AS published, s.last_seq"
        " FROM unnest($1::text[]) WITH ORDINALITY AS h(subject, turn)"
        " JOIN outbox_sequences s USING (subject)"
        " LEFT JOIN outbox_published p USING (subject)"
        " ORDER BY h.turn",
        [r["subject"] for r in held],
    )
    budget, taken = rows, {}
    for bound in bounds:
        if budget <= 0:
            break
        take = min(bound["last_seq"] - bound["published"], budget)
        if take > 0:
            taken[bound["subject"]] = (bound["published"], take)
            budget -= take
    if not taken:
        return Claim([], {})
    claimed = await conn.fetch(
        f"SELECT {_ROW_OF_O} FROM unnest($1::text[], $2::bigint[], $3::bigint[])"  # noqa: S608
        "   AS r(subject, after, upto)"
        " CROSS JOIN LATERAL (SELECT * FROM outbox o"
        "   WHERE o.subject = r.subject AND o.seq > r.after AND o.seq <= r.upto) AS o",
        list(taken),
        [after for after, _ in taken.values()],
        [after + take for after, take in taken.values()],
    )
    # No ORDER BY in SQL: it would sort the rows, 1 KB payloads and all; they come in order
    # already (the lateral scans walk the key), and sorting a sorted list here costs O(n).
    turn = {subject: i for i, subject in enumerate(taken)}
    ordered = sorted(claimed, key=lambda r: (turn[r["subject"]], r["seq"]))
    # The mark goes to the end of each planned range even where rows are missing: the bounds
    # were read after the locks, so every row up to them is committed, and one that is not
    # there was deleted by retention after the embedded delivery processed it.
    return Claim(
        ordered,
        {subject: after + take for subject, (after, take) in taken.items()},
        sum(take for _, take in taken.values()),
    )


async def mark_published(conn: Connection, upto: dict[str, int]) -> None:
    """Raise each subject's mark; never lowers one (a relay that lost its lock mid-round, by a
    dropped connection, must not undo a later relay's progress)."""
    await conn.execute(
        "INSERT INTO outbox_published (subject, published_seq)"
        " SELECT * FROM unnest($1::text[], $2::bigint[])"
        " ON CONFLICT (subject) DO UPDATE SET published_seq ="
        "   greatest(outbox_published.published_seq, EXCLUDED.published_seq)",
        list(upto),
        list(upto.values()),
    )


async def claim_undelivered(
    conn: Connection, *, rows: int, data_bytes: int = 1 << 62
) -> list[Any] | None:
    """Rows the embedded delivery has not processed yet, oldest first, for one deliverer at a
    time (servers sharing a database take turns, per outbox, i.e. per schema: the metadata and
    artifact services' deliveries never wait for each other; ``None`` when another has the
    turn): at most
    ``rows``, and no more than ``data_bytes`` of stored event data (the first row whatever its
    size).

    The embedded delivery decodes and projects its rows in the server's own event loop, so a
    round must stay small: a big push's events carry 500 entities each (~1.5 MB of JSON), and
    a thousand of them in one round held the loop for seconds and the server's memory for as
    many hundreds of MB. ``pg_column_size`` is the stored (compressed) size, read without
    fetching the value."""
    held = await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('cmf.delivery:' || current_schema(), 0))"
    )
    if not held:
        return None
    return await conn.fetch(
        f"SELECT {_ROW} FROM ("  # noqa: S608 (a constant column list)
        f"  SELECT {_ROW}, sum(pg_column_size(data)) OVER (ORDER BY position) AS upto,"
        "     pg_column_size(data) AS size"
        f"  FROM (SELECT {_ROW} FROM outbox WHERE processed_at IS NULL"
        "         ORDER BY position LIMIT $1) AS waiting"
        ") AS sized WHERE upto - size < $2 ORDER BY position",
        rows,
        data_bytes,
    )


async def undelivered_waiting(conn: Connection) -> bool:
    """Whether any row waits for the embedded delivery."""
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox WHERE processed_at IS NULL)")
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


@dataclass(frozen=True)
class Backlog:
    """An outbox's rows waiting to be handed on: which outbox (its schema), how many, and the
    oldest one's time (``None``: none waits); ``dead``: rows the embedded delivery gave up on."""

    outbox: str
    waiting: int
    oldest: datetime | None
    dead: int = 0


async def unpublished_backlog(conn: Connection) -> Backlog:
    """What waits for the relay: the count from the per-subject counters, the oldest row by
    one key lookup per waiting subject (its first unpublished ``seq``); no row scan."""
    row = await conn.fetchrow(
        "SELECT current_schema() AS outbox,"
        "   coalesce(sum(s.last_seq - coalesce(p.published_seq, 0)), 0) AS waiting,"
        "   min((SELECT o.time FROM outbox o WHERE o.subject = s.subject"
        "        AND o.seq = coalesce(p.published_seq, 0) + 1)) AS oldest"
        " FROM outbox_sequences s LEFT JOIN outbox_published p USING (subject)"
        " WHERE s.last_seq > coalesce(p.published_seq, 0)"
    )
    assert row is not None  # an aggregate always answers one row
    return Backlog(row["outbox"], int(row["waiting"]), row["oldest"])


async def undelivered_backlog(conn: Connection) -> Backlog:
    """What waits for the embedded delivery (through the partial index of unprocessed rows),
    and the dead letters it kept (through the partial index of failed rows)."""
    row = await conn.fetchrow(
        "SELECT current_schema() AS outbox, count(*) AS waiting, min(time) AS oldest,"
        "   (SELECT count(*) FROM outbox WHERE delivery_error IS NOT NULL) AS dead"
        " FROM outbox WHERE processed_at IS NULL"
    )
    assert row is not None  # an aggregate always answers one row
    return Backlog(row["outbox"], int(row["waiting"]), row["oldest"], int(row["dead"]))


async def unpublished_count(conn: Connection) -> int:
    """Events the relay has not published yet, from the per-subject counters (no row scan)."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(s.last_seq - coalesce(p.published_seq, 0)), 0)"
            " FROM outbox_sequences s LEFT JOIN outbox_published p USING (subject)"
        )
    )


async def delete_older_than(conn: Connection, retention: timedelta) -> int:
    """Forget rows older than ``retention`` that were handed on: published by a relay, or
    processed by the embedded delivery. Rows still waiting are kept, however old."""
    done = await conn.execute(
        "DELETE FROM outbox o WHERE o.time < now() - $1::interval"
        " AND (o.processed_at IS NOT NULL OR o.seq <= ("
        "   SELECT p.published_seq FROM outbox_published p WHERE p.subject = o.subject))",
        retention,
    )
    return int(done.split()[-1])


async def committed_seqs(
    conn: Connection, subject: str | None = None, *, prefix: str | None = None
) -> dict[str, int]:
    """Each subject's last committed sequence (one subject's when ``subject`` is given; those
    whose names start with ``prefix`` when it is)."""
    if prefix is not None:
        rows = await conn.fetch(
            "SELECT subject, last_seq FROM outbox_sequences"
            " WHERE starts_with(subject, $1) AND ($2::text IS NULL OR subject = $2)",
            prefix,
            subject,
        )
    elif subject is None:
        rows = await conn.fetch("SELECT subject, last_seq FROM outbox_sequences")
    else:
        rows = await conn.fetch(
            "SELECT subject, last_seq FROM outbox_sequences WHERE subject = $1", subject
        )
    return {r["subject"]: int(r["last_seq"]) for r in rows}
