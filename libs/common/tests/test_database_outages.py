"""PostgreSQL down, restarting, saturated or lost mid-statement (issue 12, items 1 and 2): a
request answers 503 with ``Retry-After`` in its route's dialect, never a 500 and never a hang;
the pool bounds how long reaching PostgreSQL may take; a loop that moves nothing on while work
waits is stalled, in its liveness and a metric, and logs an outage once when it begins and once
when it ends."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from cmf_common.db import DatabaseUnavailable, create_pool, is_outage
from cmf_common.dialects import ProblemRoute, ReferenceRoute
from cmf_common.dispatch import Dispatcher
from cmf_common.envelope import EnvelopeRoute
from cmf_common.events import Envelope
from cmf_common.service import service_app
from cmf_common.settings import ServiceSettings
from cmf_common.workers import WAITING, LoopStalled, LoopSupervisor, notifications
from cmf_testing.events import envelope
from cmf_testing.postgres import Cluster
from cmf_testing.problems import assert_problem
from cmf_testing.waiting import eventually_async


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL of this module's own, which its tests stop and start."""
    with Cluster() as own:
        yield own


@pytest.fixture
async def running(cluster: Cluster) -> AsyncIterator[Cluster]:
    """The cluster, running when the test starts and again after it."""
    if not cluster.running():
        cluster.start()
    yield cluster
    if not cluster.running():
        cluster.start()


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def _service() -> FastAPI:
    """An app with the frame every service has (error dialects, trace ids)."""
    return service_app(
        settings=ServiceSettings(), title="outages", lifespan=_no_lifespan, checks=lambda _: {}
    )


def _app(pool: asyncpg.Pool) -> FastAPI:
    """One route per dialect, each reading the database."""
    app = _service()
    for route_class, prefix in (
        (ReferenceRoute, "/api"),
        (ProblemRoute, "/api/native/v1"),
        (EnvelopeRoute, "/api/v1"),
    ):
        router = APIRouter(route_class=route_class)

        @router.get("/pipelines")
        async def pipelines() -> dict[str, int]:
            async with pool.acquire() as conn, conn.transaction():
                return {"n": await conn.fetchval("SELECT 1")}

        app.include_router(router, prefix=prefix)
    return app


def _assert_unavailable_in_each_dialect(answers: dict[str, httpx.Response]) -> None:
    for answer in answers.values():
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
    reference = answers["/api/pipelines"]
    assert reference.headers["content-type"] == "application/json"
    assert set(reference.json()) == {"detail"} and "retry" in reference.json()["detail"]
    assert_problem(answers["/api/native/v1/pipelines"], 503, "unavailable")
    upstream = answers["/api/v1/pipelines"].json()
    assert upstream["status"] == "error" and upstream["code"] == 503
    assert upstream["message"] and upstream["data"] is None


async def _ask_each(app: FastAPI) -> dict[str, httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        paths = ("/api/pipelines", "/api/native/v1/pipelines", "/api/v1/pipelines")
        return {p: await client.get(p) for p in paths}


async def test_routes_answer_503_in_their_dialect_while_postgres_is_down_and_200_after(
    running: Cluster,
) -> None:
    pool = await create_pool(running.url, "outages", min_size=2, max_size=2)
    try:
        app = _app(pool)
        assert {a.status_code for a in (await _ask_each(app)).values()} == {200}
        running.crash()
        started = time.monotonic()
        _assert_unavailable_in_each_dialect(await _ask_each(app))
        assert time.monotonic() - started < 5, "answered at once, not after a hang"
        running.start()
        assert {a.status_code for a in (await _ask_each(app)).values()} == {200}
    finally:
        await pool.close()


async def test_a_connection_lost_mid_statement_is_a_503(running: Cluster) -> None:
    pool = await create_pool(running.url, "outages", min_size=1, max_size=2)
    killer = await asyncpg.connect(running.url)
    app = _service()
    router = APIRouter(route_class=ProblemRoute)

    @router.get("/slow")
    async def slow() -> dict[str, int]:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_sleep(30)")
        return {}

    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            asked = asyncio.create_task(client.get("/slow"))

            async def sleeping_pids() -> list[int]:
                found = await killer.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
                )
                assert found, "the statement has not started yet"
                return [r["pid"] for r in found]

            pids = await eventually_async(sleeping_pids, timeout=10)
            # The server ends the session under the statement (administrator command, 57P01).
            await killer.execute("SELECT pg_terminate_backend($1)", pids[0])
            answer = await asyncio.wait_for(asked, 10)
        assert_problem(answer, 503, "unavailable")
        assert answer.headers["retry-after"] == "1"
    finally:
        await killer.close()
        await pool.close()


async def test_a_misused_connection_is_still_a_500_not_an_outage() -> None:
    """asyncpg's ``InterfaceError`` also reports misuses of its API: those are bugs."""
    assert not is_outage(asyncpg.InterfaceError("cannot perform operation: another operation"))
    assert is_outage(
        asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the underlying connection is closed"
        )
    )
    app = _service()
    router = APIRouter(route_class=ProblemRoute)

    @router.get("/misuse")
    async def misuse() -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert_problem(await client.get("/misuse"), 500, "internal")


async def test_waiting_for_a_pooled_connection_is_bounded(running: Cluster) -> None:
    pool = await create_pool(running.url, "outages", min_size=1, max_size=1, acquire_timeout_s=0.3)
    try:
        async with pool.acquire():
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable, match=r"within 0\.3 s"):
                async with pool.acquire():
                    pass
            assert time.monotonic() - started < 2
    finally:
        await pool.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on loopback that accepts connections and never answers on them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


async def test_connecting_to_a_server_that_never_answers_is_bounded(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="TimeoutError"):
        await create_pool(
            f"postgresql://postgres@127.0.0.1:{silent_server}/postgres",
            "outages",
            connect_timeout_s=0.5,
        )
    assert time.monotonic() - started < 3


async def test_a_stopped_server_is_unavailable_at_once(running: Cluster) -> None:
    pool = await create_pool(running.url, "outages", min_size=0, max_size=2)
    try:
        running.crash()
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="cannot be reached"):
            async with pool.acquire():
                pass
        assert time.monotonic() - started < 2
    finally:
        await pool.close()


def _stalled(loop: str) -> float | None:
    return REGISTRY.get_sample_value("cmf_loop_stalled", {"loop": loop})


async def test_a_loop_that_moves_nothing_while_work_waits_is_stalled_until_it_moves() -> None:
    loop = LoopSupervisor("stall-test", stall_after_s=0.2, backoff_s=0.001, backoff_max_s=0.001)
    stop = asyncio.Event()

    async def down() -> int:
        raise ConnectionRefusedError(111, "Connection refused")

    await loop.round(down, stop)
    await loop.check()  # a transient failure is not a fault
    await asyncio.sleep(0.25)
    await loop.round(down, stop)
    with pytest.raises(LoopStalled, match=r"moved nothing on for 0 s.*Connection refused"):
        await loop.check()
    assert _stalled("stall-test") == 1.0

    async def back() -> int:
        return 3

    assert await loop.round(back, stop) == 3
    await loop.check()
    assert _stalled("stall-test") == 0.0


async def test_work_another_process_holds_is_no_progress() -> None:
    loop = LoopSupervisor("held-test", stall_after_s=0.1)
    stop = asyncio.Event()

    async def held() -> int:
        return WAITING

    async def nothing() -> int:
        return 0

    await asyncio.sleep(0.15)
    await loop.round(held, stop)
    with pytest.raises(LoopStalled):
        await loop.check()
    await loop.round(nothing, stop)  # nothing waits: not stalled
    await loop.check()


async def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends() -> None:
    loop = LoopSupervisor("log-test", backoff_s=0.001, backoff_max_s=0.001)
    stop = asyncio.Event()

    async def down() -> int:
        raise ConnectionRefusedError(111, "Connection refused")

    async def back() -> int:
        return 1

    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            await loop.round(down, stop)
        await loop.round(back, stop)
        await loop.round(back, stop)
    events = [e["event"] for e in logs]
    assert events == ["dependency.unavailable", "dependency.available"]
    assert logs[1]["failed_rounds"] == 5


async def test_a_handler_of_several_types_takes_a_mixed_backlog_in_one_call() -> None:
    """A push is several event types in a row: handled a type at a time, a backlog of N events
    was N graph transactions, which drained slower than clients pushed after an outage."""
    calls: list[list[int]] = []

    async def project(events: list[Envelope]) -> None:
        calls.append([e.seq for e in events])

    dispatcher = Dispatcher("test", {"a.v1": project, "b.v1": project})
    types = ["a.v1", "b.v1", "a.v1", "unknown.v1", "b.v1", "a.v1"]
    await dispatcher.dispatch([envelope(seq, t) for seq, t in enumerate(types, 1)])
    assert calls == [[1, 2, 3], [5, 6]]


def test_a_loop_retries_a_dependency_that_is_down_every_few_seconds_at_most() -> None:
    """The backoff grew to 30 s: a loop resumed up to half a minute after PostgreSQL's return."""
    loop = LoopSupervisor("backoff-test")
    loop.failures = 20
    assert loop.backoff() <= 5.0


async def test_the_listener_listens_again_after_its_connection_is_lost(running: Cluster) -> None:
    """The relay's and the delivery's LISTEN connection died with PostgreSQL and was never
    opened again: after an outage they only polled, every 5 s."""
    pool = await create_pool(running.url, "outages", min_size=1, max_size=3)
    other = await asyncpg.connect(running.url)
    try:
        async with notifications(pool, "cmf_test_channel") as listen:
            await listen.ensure()
            listen.wake.clear()
            await other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
            await asyncio.wait_for(listen.wake.wait(), 5)  # the loss wakes the loop
            await listen.ensure()  # and its next round listens again
            listen.wake.clear()
            await other.execute("NOTIFY cmf_test_channel")
            await asyncio.wait_for(listen.wake.wait(), 5)
    finally:
        await other.close()
        await pool.close()
