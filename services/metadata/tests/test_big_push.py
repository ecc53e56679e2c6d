"""Big pushes (cmf_metadata.big_push): bodies over ``BIG_PUSH_BYTES`` are merged by a process of
their own, so these tests use databases of their own with committed data (the push process
cannot see a rolled-back test transaction), and a threshold of 1 kB so small bodies take the
big path. Most run the push process's job in the test's process (``in_process``: the same
``push_worker.run_job``, without a Python start per push); those named for the process start
it. How long a big push takes, and what it does to other requests, is measured in
bench/bigpush.py, never asserted here."""

from __future__ import annotations

import copy
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import httpx
import pytest
from metadata_support import PIPELINE, TABLES, body_for, row_counts
from pydantic import SecretStr

from cmf_common.db import service_pool
from cmf_common.service import install_state
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import MIGRATIONS, create_service
from cmf_metadata.big_push import BigPushes, BigPushSettings
from cmf_metadata.push_worker import run_job
from cmf_metadata.settings import MetadataSettings

SMALL = 1024  # the threshold the big path is taken over, in these tests


class InProcess(BigPushes):
    """Big pushes whose job runs in this process."""

    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        return await run_job(job)


@asynccontextmanager
async def metadata_app(
    database_url: str, tmp_path: Any, *, in_process: bool = True, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncpg.Pool, MetadataState]]:
    """The metadata app on a database of its own (migrated), its pool and its state."""
    config = MetadataSettings(
        database_url=SecretStr(database_url), files_dir=tmp_path / "files", **settings
    )
    service = create_service(config)
    async with service_pool(config, MIGRATIONS, application_name="test") as pool:
        state = MetadataState.on(config, pool)
        if in_process:
            assert state.big_pushes is not None
            state.big_pushes = InProcess(state.big_pushes.settings)
        install_state(service.app, state)
        transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://metadata") as http:
            yield http, pool, state


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    """The store's row counts (``metadata_support.row_counts``), read through the pool."""
    async with pool.acquire() as conn:
        return await row_counts(cast(asyncpg.Connection, conn))


def _stable(document: Any) -> Any:
    """A pull without the times the server stamps at merge time."""
    if isinstance(document, dict):
        return {
            k: _stable(v)
            for k, v in document.items()
            if k not in {"create_time_since_epoch", "last_update_time_since_epoch"}
            and k != "milliseconds_since_epoch"
        }
    if isinstance(document, list):
        return [_stable(v) for v in document]
    return document


async def _pull(client: httpx.AsyncClient) -> Any:
    answer = await client.post("/api/mlmd_pull", json={"pipeline_name": PIPELINE})
    assert answer.status_code == 200, answer.text
    return _stable(json.loads(answer.text))


async def test_big_push_process_stores_what_a_small_push_stores(
    make_database_url: Callable[[], str], tmp_path: Any, push_body: dict[str, Any]
) -> None:
    async with metadata_app(
        make_database_url(), tmp_path, in_process=False, big_push_bytes=SMALL
    ) as (big, _, _):
        first = await big.post("/api/mlmd_push", json=push_body)
        again = await big.post("/api/mlmd_push", json=push_body)
        big_pull = await _pull(big)
    async with metadata_app(make_database_url(), tmp_path) as (small, _, _):
        await small.post("/api/mlmd_push", json=push_body)
        small_pull = await _pull(small)
    assert first.status_code == 200
    assert first.json() == {"status": "success"}
    assert first.headers["X-CMF-Consistency-Token"].startswith(f"{PIPELINE}:")
    assert again.json() == {"status": "exists"}
    assert big_pull == small_pull


class Counted(InProcess):
    """In-process big pushes that count the jobs they ran."""

    jobs = 0

    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        self.jobs += 1
        return await super().run(job)


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    """``body`` sent in pieces with no Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


async def test_a_chunked_body_takes_the_big_path_once_it_passes_the_threshold(
    make_database_url: Callable[[], str], tmp_path: Any, push_body: dict[str, Any]
) -> None:
    body = json.dumps(push_body).encode()
    assert len(body) > SMALL
    async with metadata_app(make_database_url(), tmp_path, big_push_bytes=SMALL) as (
        client,
        _,
        state,
    ):
        assert state.big_pushes is not None
        counted = state.big_pushes = Counted(state.big_pushes.settings)
        first = await client.post(
            "/api/mlmd_push", content=_chunked(body), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in first.request.headers
        assert (first.status_code, first.json(), counted.jobs) == (200, {"status": "success"}, 1)
        pulled = await _pull(client)
    async with metadata_app(make_database_url(), tmp_path, big_push_bytes=len(body) + 1) as (
        client,
        _,
        state,
    ):
        assert state.big_pushes is not None
        counted = state.big_pushes = Counted(state.big_pushes.settings)
        small = await client.post(
            "/api/mlmd_push", content=_chunked(body), headers={"Content-Type": "application/json"}
        )
        assert (small.status_code, small.json(), counted.jobs) == (200, {"status": "success"}, 0)
        assert await _pull(client) == pulled


def _padded(body: dict[str, Any]) -> dict[str, Any]:
    """The body, over the test threshold (an unknown field is ignored)."""
    return {**body, "padding": "x" * (2 * SMALL)}


def _bad_bodies(payload: dict[str, Any]) -> dict[str, bytes]:
    no_uri = copy.deepcopy(payload)
    no_uri["Pipeline"][0]["stages"][0]["executions"][0]["events"][0]["artifact"]["uri"] = ""
    too_old = copy.deepcopy(payload)
    for stage in too_old["Pipeline"][0]["stages"]:
        for execution in stage["executions"]:
            execution["properties"].pop("Execution_uuid", None)
    wrong_type = copy.deepcopy(payload)
    wrong_type["Pipeline"][0]["stages"][0]["executions"][0]["events"][0]["type"] = "three"

    def encoded(body: dict[str, Any]) -> bytes:
        return json.dumps(_padded(body)).encode()

    return {
        "not json": b"{" + b" " * (2 * SMALL),
        "no json_payload": encoded({"pipeline_name": PIPELINE}),
        "payload not json": encoded({"pipeline_name": PIPELINE, "json_payload": "{nope"}),
        "no pipeline name": encoded({"json_payload": json.dumps(payload)}),
        "empty uri": encoded(body_for(no_uri)),
        "no execution uuids": encoded(body_for(too_old)),
        "event type a word": encoded(body_for(wrong_type)),
        "no pipelines": encoded(body_for({"Pipeline": []})),
        "another pipeline": encoded(body_for(payload, pipeline="not-in-the-payload")),
        "NUL": encoded(
            {"pipeline_name": PIPELINE, "json_payload": json.dumps(payload) + "\\u0000"}
        ),
        "NUL in the pipeline name": encoded(body_for(payload, pipeline="Test\x00env")),
        "NUL in the exec_uuid": encoded({**body_for(payload), "exec_uuid": "a\x00b"}),
    }


async def test_big_push_answers_bad_bodies_as_a_small_push_does(
    make_database_url: Callable[[], str], tmp_path: Any, payload: dict[str, Any]
) -> None:
    bodies = _bad_bodies(payload)
    answers: dict[str, dict[str, tuple[int, Any]]] = {}
    for path, threshold in (("big", SMALL), ("small", 512 * 1024**2)):
        async with metadata_app(make_database_url(), tmp_path, big_push_bytes=threshold) as (
            client,
            pool,
            _,
        ):
            answers[path] = {}
            for name, body in bodies.items():
                answer = await client.post(
                    "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
                )
                answers[path][name] = (answer.status_code, answer.json())
            assert sum((await _counts(pool)).values()) == 0
    assert answers["big"] == answers["small"]
    assert all(status < 500 for status, _ in answers["big"].values())


async def test_one_big_push_more_than_allowed_is_answered_503_with_retry_after(
    make_database_url: Callable[[], str], tmp_path: Any, push_body: dict[str, Any]
) -> None:
    async with metadata_app(
        make_database_url(),
        tmp_path,
        big_push_bytes=SMALL,
        big_pushes=1,
        big_push_retry_after_s=7,
    ) as (client, pool, state):
        assert state.big_pushes is not None
        with state.big_pushes.slot():  # a big push in flight
            busy = await client.post("/api/mlmd_push", json=push_body)
        counts = await _counts(pool)
        after = await client.post("/api/mlmd_push", json=push_body)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "7"
    assert set(busy.json()) == {"detail"}  # the reference's error shape
    assert sum(counts.values()) == 0
    assert after.json() == {"status": "success"}


async def test_small_pushes_are_not_limited_while_big_ones_run(
    make_database_url: Callable[[], str], tmp_path: Any, push_body: dict[str, Any]
) -> None:
    async with metadata_app(make_database_url(), tmp_path, big_pushes=1) as (client, _, state):
        assert state.big_pushes is not None
        with state.big_pushes.slot():
            answer = await client.post("/api/mlmd_push", json=push_body)
    assert answer.json() == {"status": "success"}


@pytest.mark.parametrize(("table", "in_process"), [("executions", True), ("outbox", False)])
async def test_big_push_that_fails_midway_stores_nothing(
    make_database_url: Callable[[], str],
    tmp_path: Any,
    payload: dict[str, Any],
    table: str,
    in_process: bool,
) -> None:
    """All or nothing: the push's transaction fails at a row the store refuses (the
    executions, early; the outbox, its last write, in the push process) and nothing of the
    push remains."""
    broken = copy.deepcopy(payload)
    broken["Pipeline"][0]["custom_properties"]["refused"] = "1"
    broken["Pipeline"][0]["stages"][1]["executions"][0]["custom_properties"]["refused"] = "1"
    column = "custom_properties" if table == "executions" else "data"
    async with metadata_app(
        make_database_url(), tmp_path, in_process=in_process, big_push_bytes=SMALL
    ) as (client, pool, _):
        async with pool.acquire() as conn:
            await conn.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT refuse"
                f" CHECK (NOT {column}::text LIKE '%refused%')"
            )
        answer = await client.post("/api/mlmd_push", json=_padded(body_for(broken)))
        counts = await _counts(pool)
    assert answer.status_code == 500
    assert counts == dict.fromkeys(TABLES, 0)


async def test_spool_files_a_kill_left_are_removed_at_start(tmp_path: Any) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    host = socket.gethostname()
    gone = spool / f".push-{host}-{2**22 + 1}-abc.json"  # beyond pid_max: no such process
    mine = spool / f".push-{host}-{os.getpid()}-def.json"  # in flight here
    elsewhere = spool / ".push-another-host-12-ghi.json"  # another replica's, young
    old = spool / ".push-another-host-13-jkl.json"  # another replica's, two days old
    unrelated = spool / "notes.txt"
    for path in (gone, mine, elsewhere, old, unrelated):
        path.write_text("{}")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    pushes = BigPushes(
        BigPushSettings(
            threshold_bytes=SMALL,
            concurrency=1,
            retry_after_s=1,
            spool_dir=spool,
            database_url=None,
            schema="metadata",
            statement_timeout_ms=1000,
        )
    )
    assert await pushes.clean_interrupted_spools() == 2
    assert sorted(p.name for p in spool.iterdir()) == sorted(
        p.name for p in (mine, elsewhere, unrelated)
    )
