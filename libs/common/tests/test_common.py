"""Shared infrastructure: event ids, the outbox writer, migrations, problem+json."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from cmf_common.db import create_pool
from cmf_common.dialects import ProblemRoute, ReferenceRoute, install_error_handlers
from cmf_common.dispatch import StoreUnavailable
from cmf_common.errors import NotFound
from cmf_common.events import Envelope, NewEvent, uuid7
from cmf_common.migrations import load_migrations, migrate
from cmf_common.outbox import add_events
from cmf_common.workers import Housekeeping, LoopFault, LoopSupervisor, is_transient


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(200)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)
    assert len(set(ids)) == len(ids)


def test_envelope_round_trips_through_json() -> None:
    envelope = Envelope(
        id=str(uuid7()),
        type="cmf.metadata.stage.upserted.v1",
        source="test",
        subject="p",
        time="2026-11-26T00:00:00Z",
        seq=3,
        data={"stages": []},
        traceparent=None,
    )
    assert Envelope.from_json(envelope.to_json()) == envelope


async def test_outbox_sequences_are_gap_free_per_subject(conn: asyncpg.Connection) -> None:
    first = await add_events(
        conn, subject="a", source="t", events=[NewEvent("x.v1", {"n": i}) for i in range(3)]
    )
    other = await add_events(conn, subject="b", source="t", events=[NewEvent("x.v1", {})])
    second = await add_events(conn, subject="a", source="t", events=[NewEvent("x.v1", {})])
    assert (first, other, second) == (3, 1, 4)
    rows = await conn.fetch("SELECT seq, data FROM outbox WHERE subject = 'a' ORDER BY seq")
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["data"] == {"n": 0}


async def test_concurrent_starts_apply_each_migration_once(
    make_database_url: Callable[[], str],
) -> None:
    url = make_database_url()
    pools = [await create_pool(url, "metadata") for _ in range(3)]
    try:
        tracks = ["cmf_common.outbox_migrations", "cmf_metadata.migrations"]
        applied = await asyncio.gather(*(migrate(p, "metadata", tracks) for p in pools))
        every = sum(len(load_migrations(t)) for t in tracks)
        # Each migration ran exactly once, whichever start got to it first.
        names = [name for started in applied for name in started]
        assert len(names) == len(set(names)) == every
    finally:
        for pool in pools:
            await pool.close()


async def test_domain_errors_are_problem_json_on_the_new_api_only() -> None:
    app = FastAPI()
    install_error_handlers(app)
    ours, reference = APIRouter(route_class=ProblemRoute), APIRouter(route_class=ReferenceRoute)

    @ours.get("/api/native/v1/thing")
    async def thing() -> None:
        raise NotFound("no such thing", code="thing_not_found")

    @reference.get("/thing")
    async def legacy() -> None:
        raise NotFound("Pipeline X not found.")

    app.include_router(ours)
    app.include_router(reference)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        new = await client.get("/api/native/v1/thing")
        old = await client.get("/thing")
    assert new.status_code == 404
    assert new.headers["content-type"] == "application/problem+json"
    assert new.json()["code"] == "thing_not_found" and new.json()["status"] == 404
    assert old.status_code == 404 and old.json() == {"detail": "Pipeline X not found."}


# ---- the background loops' failure policy ------------------------------------------------------


def test_dependency_outages_are_transient_and_everything_else_is_a_fault() -> None:
    transient = [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.InterfaceError("connection is closed"),
        KafkaConnectionError(),
        StoreUnavailable("Neo4j: ServiceUnavailable"),
    ]
    faults = [RuntimeError("bug"), TypeError("bug"), KeyError("x"), asyncpg.UndefinedTableError()]
    assert all(is_transient(e) for e in transient)
    assert not any(is_transient(e) for e in faults)


def failures(loop: str, kind: str) -> float:
    labels = {"loop": loop, "kind": kind}
    return REGISTRY.get_sample_value("cmf_loop_failures_total", labels) or 0.0


def quick_loop(name: str) -> LoopSupervisor:
    return LoopSupervisor(f"{name}-{uuid.uuid4().hex[:6]}", backoff_s=0.001, backoff_max_s=0.001)


async def test_a_fault_fails_liveness_until_a_round_succeeds() -> None:
    loop, stop = quick_loop("test"), asyncio.Event()

    async def broken() -> int:
        raise TypeError("unsupported operand")

    async def fixed() -> int:
        return 3

    assert await loop.round(broken, stop) is None
    with pytest.raises(LoopFault, match="TypeError: unsupported operand"):
        await loop.check()
    assert failures(loop.loop, "fault") == 1
    assert await loop.round(fixed, stop) == 3
    await loop.check()


async def test_a_transient_failure_is_retried_without_failing_liveness() -> None:
    loop, stop = quick_loop("test"), asyncio.Event()

    async def down() -> int:
        raise ConnectionRefusedError(111, "Connection refused")

    assert await loop.round(down, stop) is None
    assert await loop.round(down, stop) is None
    await loop.check()
    assert failures(loop.loop, "transient") == 2
    assert failures(loop.loop, "fault") == 0


def test_the_backoff_doubles_up_to_its_cap() -> None:
    loop = LoopSupervisor("test", backoff_s=0.5, backoff_max_s=4.0)
    waits = []
    for failures_so_far in range(1, 7):
        loop.failures = failures_so_far
        waits.append(loop.backoff())
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_a_loop_that_stops_going_round_is_not_live() -> None:
    loop = LoopSupervisor("test", stale_after_s=0.0)
    loop.heartbeat.last -= 1.0
    with pytest.raises(RuntimeError, match="has not gone round"):
        await loop.check()


async def test_a_loop_whose_setup_fails_stays_faulted() -> None:
    loop = quick_loop("test")
    with pytest.raises(ValueError):
        async with loop.running():
            raise ValueError("bad channel")
    with pytest.raises(LoopFault, match="ended: ValueError"):
        await loop.check()


async def test_a_housekeeping_fault_clears_only_when_housekeeping_succeeds() -> None:
    loop, stop = quick_loop("test"), asyncio.Event()
    broken = True

    async def prune() -> None:
        if broken:
            raise AttributeError("no such column")

    async def work() -> int:
        return 0

    housekeeping = Housekeeping(loop, prune, every_s=0.0)
    await housekeeping.run_if_due()
    await loop.round(work, stop)  # the loop's own rounds go on
    with pytest.raises(LoopFault, match="housekeeping"):
        await loop.check()
    broken = False
    await housekeeping.run_if_due()
    await loop.check()
