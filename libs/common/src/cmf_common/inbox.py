"""A consumer's memory, in its own schema: the event ids it applied (so redelivered events are
skipped) and the highest sequence applied per subject (so readers can wait for a consistency
token). Call these inside the transaction that applies the events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from cmf_common.db import Connection
from cmf_common.events import Envelope

INBOX_MIGRATIONS = "cmf_common.inbox_migrations"


async def claim_new(
    conn: Connection, consumer: str, envelopes: Sequence[Envelope]
) -> list[Envelope]:
    """The envelopes not applied before, recorded as applied in the caller's transaction."""
    if not envelopes:
        return []
    rows = await conn.fetch(
        "INSERT INTO consumer_inbox (consumer, event_id)"
        " SELECT $1, id FROM unnest($2::uuid[]) AS e(id)"
        " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
        consumer,
        [e.id for e in envelopes],
    )
    fresh = {str(r["event_id"]) for r in rows}
    return [e for e in envelopes if e.id in fresh]


async def record_progress(conn: Connection, consumer: str, envelopes: Sequence[Envelope]) -> None:
    """Raise each subject's applied sequence to the highest among ``envelopes``."""
    highest: dict[str, int] = {}
    for envelope in envelopes:
        highest[envelope.subject] = max(highest.get(envelope.subject, 0), envelope.seq)
    if not highest:
        return
    subjects = sorted(highest)
    await conn.execute(
        "INSERT INTO consumer_progress (consumer, subject, seq)"
        " SELECT $1, s, q FROM unnest($2::text[], $3::bigint[]) AS p(s, q)"
        " ON CONFLICT (consumer, subject)"
        " DO UPDATE SET seq = greatest(consumer_progress.seq, excluded.seq)",
        consumer,
        subjects,
        [highest[s] for s in subjects],
    )


async def applied_seq(conn: Connection, consumer: str, subject: str) -> int:
    value = await conn.fetchval(
        "SELECT seq FROM consumer_progress WHERE consumer = $1 AND subject = $2", consumer, subject
    )
    return int(value or 0)


async def forget_older_than(conn: Connection, consumer: str, retention: timedelta) -> int:
    """Forget the ids ``consumer`` applied longer than ``retention`` ago (its progress stays).

    Why this cannot let a redelivered event apply twice while the consumer runs: an event comes
    again only from an unfinished round. Kafka redelivers the records after a partition's
    committed offset (the batch a stopped member had in hand; the group hands it to another
    member within its session timeout), and the relay and the embedded delivery send again the
    rows of a round that did not commit (on their next round). That is seconds or minutes, the
    retention days; and the consumers prune only after a round, so one restarting after a long
    stop first applies (and skips) the batch it had in hand. What is not bounded so is a relay
    that stays down past the retention with a round published but not marked: those events
    apply a second time. Handlers must therefore stay idempotent in effect, as the lineage
    graph's are (upserts that keep the newer version, edges and memberships as sets, progress
    that only rises); the inbox makes the usual redelivery cheap, it is not the only guard."""
    done = await conn.execute(
        "DELETE FROM consumer_inbox WHERE consumer = $1 AND applied_at < now() - $2::interval",
        consumer,
        retention,
    )
    return int(done.split()[-1])
