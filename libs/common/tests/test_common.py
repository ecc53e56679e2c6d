"""Shared infrastructure: event ids, the outbox writer, migrations, problem+json."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import httpx
from fastapi import FastAPI

from cmf_common.db import create_pool
from cmf_common.errors import NotFound, install_problem_handlers
from cmf_common.events import Envelope, NewEvent, uuid7
from cmf_common.migrations import load_migrations, migrate
from cmf_common.outbox import add_events


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
    install_problem_handlers(app)

    @app.get("/api/v1/thing")
    async def thing() -> None:
        raise NotFound("no such thing", code="thing_not_found")

    @app.get("/thing")
    async def legacy() -> None:
        raise NotFound("Pipeline X not found.")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        new = await client.get("/api/v1/thing")
        old = await client.get("/thing")
    assert new.status_code == 404
    assert new.headers["content-type"] == "application/problem+json"
    assert new.json()["code"] == "thing_not_found" and new.json()["status"] == 404
    assert old.status_code == 404 and old.json() == {"detail": "Pipeline X not found."}
