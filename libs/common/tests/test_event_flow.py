"""The outbox relay, the dispatcher and the embedded delivery, on real PostgreSQL with a fake
bus at the Publisher port (the Kafka adapter has its own tests against the real broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import orjson
import pytest

from cmf_common import outbox
from cmf_common.db import create_pool
from cmf_common.delivery import OutboxDelivery
from cmf_common.dispatch import Dispatcher, PermanentError, StoreUnavailable
from cmf_common.events import Envelope, NewEvent
from cmf_common.inbox import (
    INBOX_MIGRATIONS,
    applied_seq,
    claim_new,
    forget_older_than,
    record_progress,
)
from cmf_common.migrations import migrate
from cmf_common.outbox import (
    OUTBOX_MIGRATIONS,
    add_events,
    delete_older_than,
    envelope_of,
    mark_published,
    unpublished_count,
)
from cmf_common.ports import Message
from cmf_common.relay import OutboxRelay
from cmf_common.workers import LoopFault
from cmf_testing.events import envelope


class FakeBus:
    """Records what was published; ``down`` makes every publish fail, as a dead broker would."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.down = False

    async def publish(self, messages: list[Message]) -> None:
        if self.down:
            raise ConnectionError("bus is down")
        self.messages.extend(messages)

    def envelopes(self) -> list[Envelope]:
        return [Envelope.from_json(m.value) for m in self.messages]


@pytest.fixture
async def pool(make_database_url: Callable[[], str]) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(make_database_url(), "events", max_size=6)
    await migrate(created, "events", [OUTBOX_MIGRATIONS, INBOX_MIGRATIONS])
    yield created
    await created.close()


async def write(pool: asyncpg.Pool, subject: str, count: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await add_events(
            conn,
            subject=subject,
            source="test",
            events=[NewEvent("cmf.metadata.test.written.v1", {"n": i}) for i in range(count)],
        )


# ---- dispatcher ---------------------------------------------------------------------------------


async def test_transient_failures_are_retried_until_the_handler_succeeds() -> None:
    calls: list[int] = []

    async def flaky(events: list[Envelope]) -> None:
        calls.append(len(events))
        if len(calls) < 3:
            raise ConnectionError("graph store restarting")

    dispatcher = Dispatcher("test", {"t.v1": flaky}, backoff_s=0.001)
    assert await dispatcher.dispatch([envelope(1), envelope(2)]) == []
    assert calls == [2, 2, 2]


async def test_a_poison_event_is_set_aside_and_its_neighbours_are_handled() -> None:
    handled: list[int] = []

    async def picky(events: list[Envelope]) -> None:
        if any(e.seq == 2 for e in events):
            raise PermanentError("malformed")
        handled.extend(e.seq for e in events)

    dispatcher = Dispatcher("test", {"t.v1": picky}, backoff_s=0.001)
    failures = await dispatcher.dispatch([envelope(1), envelope(2), envelope(3)])
    assert [f.envelope.seq for f in failures] == [2]
    assert failures[0].attempts == 1 and "malformed" in failures[0].error
    assert handled == [1, 3]


async def test_an_unavailable_store_is_waited_out_not_dead_lettered() -> None:
    outages = 4

    async def recovering(_: list[Envelope]) -> None:
        nonlocal outages
        if outages:
            outages -= 1
            raise StoreUnavailable("graph store restarting")

    dispatcher = Dispatcher("test", {"t.v1": recovering}, max_attempts=2, backoff_max_s=0.001)
    assert await dispatcher.dispatch([envelope(1)]) == []
    assert outages == 0


async def test_retries_are_bounded() -> None:
    async def broken(_: list[Envelope]) -> None:
        raise RuntimeError("always")

    failures = await Dispatcher("test", {"t.v1": broken}, max_attempts=3, backoff_s=0.001).dispatch(
        [envelope(1)]
    )
    assert [f.attempts for f in failures] == [3]


async def test_runs_of_one_type_reach_their_handler_in_order() -> None:
    seen: list[tuple[str, list[int]]] = []

    def recorder(name: str) -> Callable[[list[Envelope]], asyncio.Future[None]]:
        async def handle(events: list[Envelope]) -> None:
            seen.append((name, [e.seq for e in events]))

        return handle  # type: ignore[return-value]

    dispatcher = Dispatcher("test", {"a.v1": recorder("a"), "b.v1": recorder("b")})
    await dispatcher.dispatch(
        [
            envelope(1, "a.v1"),
            envelope(2, "a.v1"),
            envelope(3, "b.v1"),
            envelope(4, "unknown.v1"),
            envelope(5, "a.v1"),
        ]
    )
    assert seen == [("a", [1, 2]), ("b", [3]), ("a", [5])]


# ---- relay --------------------------------------------------------------------------------------


async def test_relay_publishes_every_committed_row_once_in_order_per_subject(
    pool: asyncpg.Pool,
) -> None:
    for subject in ("p1", "p2", "p1", "p3", "p2"):
        await write(pool, subject, 3)
    bus = FakeBus()
    relay = OutboxRelay(pool, bus, topic="cmf.metadata.v1", batch_rows=4)
    while await relay.relay_once():
        pass
    envelopes = bus.envelopes()
    assert len(envelopes) == 15 and len({e.id for e in envelopes}) == 15
    for subject, count in (("p1", 6), ("p2", 6), ("p3", 3)):
        assert [e.seq for e in envelopes if e.subject == subject] == list(range(1, count + 1))
    assert {m.key for m in bus.messages} == {b"p1", b"p2", b"p3"}
    assert all(m.topic == "cmf.metadata.v1" for m in bus.messages)


async def test_a_rolled_back_change_publishes_nothing(pool: asyncpg.Pool) -> None:
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, subject="p", source="t", events=[NewEvent("t.v1", {})])
            raise RuntimeError("the push failed after writing its events")
    bus = FakeBus()
    assert await OutboxRelay(pool, bus, topic="t").relay_once() == 0
    assert bus.messages == []


async def test_rows_stay_unpublished_while_the_bus_is_down_and_drain_after(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, "p", 5)
    bus = FakeBus()
    bus.down = True
    relay = OutboxRelay(pool, bus, topic="t")
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    async with pool.acquire() as conn:
        assert await unpublished_count(conn) == 5
    bus.down = False
    assert await relay.relay_once() == 5
    assert [e.seq for e in bus.envelopes()] == [1, 2, 3, 4, 5]


async def test_a_relay_round_that_hits_a_bug_faults_the_loop_until_one_succeeds(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, "p", 3)
    bus = FakeBus()
    relay = OutboxRelay(pool, bus, topic="t")
    relay.loop.backoff_s = relay.loop.backoff_max_s = 0.001
    stop = asyncio.Event()

    async def broken(messages: list[Message]) -> None:
        raise TypeError("'NoneType' object is not subscriptable")

    bus.publish = broken  # type: ignore[method-assign]
    assert await relay.loop.round(relay._counted_round, stop) is None
    with pytest.raises(LoopFault, match="TypeError"):
        await relay.loop.check()
    async with pool.acquire() as conn:
        assert await unpublished_count(conn) == 3
    del bus.publish  # the fault is fixed
    assert await relay.loop.round(relay._counted_round, stop) == 3
    await relay.loop.check()
    assert [e.seq for e in bus.envelopes()] == [1, 2, 3]


async def test_a_relay_round_that_finds_the_bus_down_is_retried_and_stays_live(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, "p", 2)
    bus = FakeBus()
    bus.down = True
    relay = OutboxRelay(pool, bus, topic="t")
    relay.loop.backoff_s = relay.loop.backoff_max_s = 0.001
    stop = asyncio.Event()
    assert await relay.loop.round(relay._counted_round, stop) is None
    await relay.loop.check()
    bus.down = False
    assert await relay.loop.round(relay._counted_round, stop) == 2
    assert relay.loop.failures == 0


async def test_concurrent_relays_never_reorder_a_subject(pool: asyncpg.Pool) -> None:
    for round_ in range(10):
        for subject in ("a", "b", "c", "d"):
            await write(pool, subject, 1 + round_ % 3)
    bus = FakeBus()
    relays = [
        OutboxRelay(pool, bus, topic="t", batch_rows=3, subjects_per_round=2) for _ in range(3)
    ]

    async def drain(relay: OutboxRelay) -> None:
        for _ in range(100):  # bounded: each round publishes at least one row or none are left
            if not await relay.relay_once():
                return

    await asyncio.gather(*(drain(r) for r in relays))
    while await relays[0].relay_once():
        pass
    for subject in ("a", "b", "c", "d"):
        seqs = [e.seq for e in bus.envelopes() if e.subject == subject]
        assert seqs == sorted(seqs) and seqs == list(range(1, len(seqs) + 1))


async def test_the_relay_forwards_the_stored_payload_as_the_envelope_says(
    pool: asyncpg.Pool,
) -> None:
    data = {"name": "ünïcode ✓", "nested": {"list": [1, 2.5, None, True]}, "quote": 'a"b\\'}
    async with pool.acquire() as conn, conn.transaction():
        await add_events(conn, subject="p", source="test", events=[NewEvent("t.v1", data)])
    bus = FakeBus()
    assert await OutboxRelay(pool, bus, topic="t").relay_once() == 1
    async with pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT * FROM outbox")
    assert orjson.loads(bus.messages[0].value) == orjson.loads(envelope_of(stored).to_json())
    assert dict(bus.messages[0].headers)["ce_seq"] == b"1"


async def test_a_round_takes_the_oldest_waiting_subjects_within_its_row_budget(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, "old", 5)
    await write(pool, "new", 5)
    bus = FakeBus()
    relay = OutboxRelay(pool, bus, topic="t", batch_rows=7, subjects_per_round=10)
    assert await relay.relay_once() == 7
    assert [(e.subject, e.seq) for e in bus.envelopes()] == [("old", s) for s in range(1, 6)] + [
        ("new", 1),
        ("new", 2),
    ]
    async with pool.acquire() as conn:
        assert await unpublished_count(conn) == 3
    assert await relay.relay_once() == 3
    assert [e.seq for e in bus.envelopes() if e.subject == "new"] == [1, 2, 3, 4, 5]


async def test_a_published_mark_never_moves_back(pool: asyncpg.Pool) -> None:
    await write(pool, "p", 3)
    async with pool.acquire() as conn:
        await mark_published(conn, {"p": 3})
        await mark_published(conn, {"p": 1})
        assert await conn.fetchval("SELECT published_seq FROM outbox_published") == 3
        assert await unpublished_count(conn) == 0


async def test_retention_deletes_old_rows_only_once_handed_on(pool: asyncpg.Pool) -> None:
    await write(pool, "published", 3)
    await write(pool, "waiting", 2)
    await write(pool, "processed", 2)
    await write(pool, "recent", 2)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE outbox SET time = now() - interval '8 days' WHERE subject <> 'recent'"
        )
        await mark_published(conn, {"published": 2, "recent": 2})
        await conn.execute("UPDATE outbox SET processed_at = now() WHERE subject = 'processed'")
        assert await delete_older_than(conn, timedelta(days=7)) == 4
        left = await conn.fetch("SELECT subject, seq FROM outbox ORDER BY subject, seq")
    assert [(r["subject"], r["seq"]) for r in left] == [
        ("published", 3),
        ("recent", 1),
        ("recent", 2),
        ("waiting", 1),
        ("waiting", 2),
    ]
    bus = FakeBus()
    relay = OutboxRelay(pool, bus, topic="t")
    while await relay.relay_once():
        pass
    # The processed rows are gone: the relay moves past them instead of waiting for them,
    # also in a round that has nothing else to send.
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM outbox_published WHERE subject = 'processed'")
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0
    assert sorted((e.subject, e.seq) for e in bus.envelopes()) == [
        ("published", 3),
        ("waiting", 1),
        ("waiting", 2),
    ]
    async with pool.acquire() as conn:
        assert await unpublished_count(conn) == 0


# ---- inbox and embedded delivery ----------------------------------------------------------------


async def test_inbox_skips_redelivered_events_and_keeps_the_highest_sequence(
    pool: asyncpg.Pool,
) -> None:
    batch = [envelope(1), envelope(2), envelope(3, subject="q")]
    async with pool.acquire() as conn, conn.transaction():
        assert await claim_new(conn, "projector", batch) == batch
        await record_progress(conn, "projector", batch)
    async with pool.acquire() as conn, conn.transaction():
        assert await claim_new(conn, "projector", [envelope(2), envelope(4)]) == [envelope(4)]
        await record_progress(conn, "projector", [envelope(4), envelope(2)])
        assert await applied_seq(conn, "projector", "p") == 4
        assert await applied_seq(conn, "projector", "q") == 3
        assert await applied_seq(conn, "other", "p") == 0


async def test_the_inbox_forgets_a_consumers_old_ids_and_keeps_its_progress(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await claim_new(conn, "c", [envelope(1), envelope(2)])
        await claim_new(conn, "other", [envelope(1)])
        await record_progress(conn, "c", [envelope(1), envelope(2)])
        await conn.execute("UPDATE consumer_inbox SET applied_at = now() - interval '8 days'")
        await claim_new(conn, "c", [envelope(3)])
        assert await forget_older_than(conn, "c", timedelta(days=7)) == 2
        assert [e.seq for e in await claim_new(conn, "c", [envelope(2), envelope(3)])] == [2]
        assert await claim_new(conn, "other", [envelope(1)]) == []
        assert await applied_seq(conn, "c", "p") == 2


async def test_embedded_housekeeping_prunes_the_outbox_and_the_consumers_inbox(
    pool: asyncpg.Pool,
) -> None:
    pruned: list[str] = []

    async def forget_applied() -> None:
        pruned.append("inbox")

    delivery = OutboxDelivery(
        pool, Dispatcher("embedded", {}), consumer_housekeeping=forget_applied
    )
    await delivery.maintain()
    assert pruned == ["inbox"]


async def test_embedded_delivery_hands_every_row_to_the_handlers_once(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, "p", 7)
    seen: list[int] = []

    async def handle(events: list[Envelope]) -> None:
        seen.extend(e.data["n"] for e in events)

    delivery = OutboxDelivery(
        pool, Dispatcher("embedded", {"cmf.metadata.test.written.v1": handle}), batch_rows=3
    )
    await delivery.drain()
    assert seen == list(range(7))
    await delivery.drain()
    assert seen == list(range(7))


async def test_embedded_dead_letter_keeps_the_error_and_moves_on(pool: asyncpg.Pool) -> None:
    await write(pool, "p", 3)

    async def refuse_second(events: list[Envelope]) -> None:
        if any(e.data["n"] == 1 for e in events):
            raise PermanentError("cannot project this")

    await OutboxDelivery(
        pool, Dispatcher("embedded", {"cmf.metadata.test.written.v1": refuse_second})
    ).drain()
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT data, processed_at, delivery_error FROM outbox ORDER BY position"
        )
    assert all(r["processed_at"] is not None for r in rows)
    assert [r["delivery_error"] is not None for r in rows] == [False, True, False]
    assert orjson.loads(orjson.dumps(rows[1]["data"])) == {"n": 1}


async def test_embedded_delivery_forgets_processed_rows_after_the_retention(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, "p", 4)
    seen: list[int] = []

    async def handle(events: list[Envelope]) -> None:
        seen.extend(e.seq for e in events)

    delivery = OutboxDelivery(
        pool,
        Dispatcher("embedded", {"cmf.metadata.test.written.v1": handle}),
        retention=timedelta(days=7),
    )
    await delivery.drain()
    await write(pool, "p", 1)  # not processed yet: kept however old
    async with pool.acquire() as conn:
        await conn.execute("UPDATE outbox SET time = now() - interval '8 days' WHERE seq <> 2")
    assert await delivery.forget_old() == 3
    async with pool.acquire() as conn:
        assert [r["seq"] for r in await conn.fetch("SELECT seq FROM outbox ORDER BY seq")] == [2, 5]
    await delivery.drain()
    assert seen == [1, 2, 3, 4, 5]


async def test_an_embedded_round_that_hits_a_bug_faults_the_loop_and_delivers_after_the_fix(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write(pool, "p", 2)
    seen: list[int] = []

    async def handle(events: list[Envelope]) -> None:
        seen.extend(e.seq for e in events)

    async def broken(*_: object) -> None:
        raise AttributeError("'Record' object has no attribute 'position'")

    delivery = OutboxDelivery(
        pool, Dispatcher("embedded", {"cmf.metadata.test.written.v1": handle})
    )
    delivery.loop.backoff_s = delivery.loop.backoff_max_s = 0.001
    stop = asyncio.Event()
    monkeypatch.setattr(outbox, "mark_processed", broken)
    assert await delivery.loop.round(delivery.deliver_once, stop) is None
    with pytest.raises(LoopFault, match="AttributeError"):
        await delivery.loop.check()
    monkeypatch.undo()
    # The failed round rolled back: its rows come again (handlers skip what they applied).
    assert await delivery.loop.round(delivery.deliver_once, stop) == 2
    await delivery.loop.check()
    assert seen == [1, 2, 1, 2]


async def test_waiting_out_an_unavailable_store_keeps_the_loop_alive() -> None:
    calls = 0
    beats: list[int] = []

    async def handle(events: list[Envelope]) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise StoreUnavailable("Neo4j: ServiceUnavailable")

    dispatcher = Dispatcher("c", {"t.v1": handle}, backoff_max_s=0.001)
    assert await dispatcher.dispatch([envelope(1)], alive=lambda: beats.append(calls)) == []
    assert beats == [1, 2]


class LockCountingBus(FakeBus):
    """Notes, at each publish (inside the relay's round), how many advisory locks are held."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool
        self.locks: list[int] = []

    async def publish(self, messages: list[Message]) -> None:
        async with self.pool.acquire() as conn:
            self.locks.append(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())"
                )
            )
        await super().publish(messages)


async def test_a_relay_passes_over_pipelines_another_relay_holds(pool: asyncpg.Pool) -> None:
    await write(pool, "held", 2)
    await write(pool, "free", 2)
    await write(pool, "later", 2)
    bus = LockCountingBus(pool)
    relay = OutboxRelay(pool, bus, topic="t", subjects_per_round=1)
    async with pool.acquire() as other, other.transaction():
        # Another relay's round, holding the oldest waiting pipeline.
        await other.execute("SELECT pg_advisory_xact_lock(hashtextextended('cmf.relay:held', 0))")
        assert await relay.relay_once() == 2
    assert {e.subject for e in bus.envelopes()} == {"free"}
    # The other relay's lock and the one this round took: one pipeline a round, not a lock on
    # every pipeline it looked at.
    assert bus.locks == [2]
    while await relay.relay_once():
        pass
    assert sorted((e.subject, e.seq) for e in bus.envelopes()) == [
        ("free", 1),
        ("free", 2),
        ("held", 1),
        ("held", 2),
        ("later", 1),
        ("later", 2),
    ]
