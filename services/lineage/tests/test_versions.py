"""The version board and the reads keyed by it, on both stores, with the real Redis: the board
only moves forward, a read after an applied event never answers from before it, a read with a
token posts its version for everyone, and a Redis that fails sends reads to the store."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from lineage_support import (
    CONSUMER,
    Scene,
    as_pipeline,
    first_stage,
    lineage_client,
    lineage_process,
)

from cmf_common.events import Envelope
from cmf_lineage.board import BoardUnavailable, LocalBoard, RedisBoard, VersionBoard
from cmf_lineage.cache import Cache, LruCache, RedisCache
from cmf_lineage.projector import Projector
from cmf_lineage.rebuild import rebuild_neo4j
from cmf_testing.waiting import eventually_async

REDIS_URL = os.environ.get("CMF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE = "redis://127.0.0.1:9/0"
TOKEN = "X-CMF-Consistency-Token"
TREE = "/artifact-lineage/tangled-tree/Test-env"


@pytest.fixture
async def redis_board() -> AsyncIterator[RedisBoard]:
    """A board under a prefix of its own on the real Redis."""
    # A connection waits up to 5 s, not the default 0.5 s: a test's burst of 300 advances on a
    # loaded CI machine outwaited the short bound ("No connection available"), which in a
    # server sends reads to the store; here the board's order is what is tested.
    board = RedisBoard(REDIS_URL, prefix=f"cmf-test:{uuid.uuid4().hex}:version:", timeout_s=5)
    try:
        await board.client.ping()
    except Exception as exc:
        await board.close()
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); run `make services-up`")
    yield board
    await board.client.delete(board.prefix + CONSUMER)
    await board.close()


@pytest.fixture
async def redis_cache() -> AsyncIterator[RedisCache]:
    cache = RedisCache(REDIS_URL, ttl_s=60, prefix=f"cmf-test:{uuid.uuid4().hex}:")
    yield cache
    await cache.close()


@pytest.fixture(params=["redis", "local"])
async def board_and_cache(
    request: pytest.FixtureRequest, redis_board: RedisBoard, redis_cache: RedisCache
) -> tuple[VersionBoard, Cache]:
    """What a lineage process with Redis uses, and what the embedded server uses without."""
    if request.param == "redis":
        return redis_board, redis_cache
    return LocalBoard(), LruCache()


# ------------------------------------------------------------------------------ the boards


async def test_the_redis_board_only_moves_forward(redis_board: RedisBoard) -> None:
    assert await redis_board.get(CONSUMER) is None
    assert await redis_board.advance(CONSUMER, 5) == 5
    assert await redis_board.advance(CONSUMER, 3) == 5
    assert await redis_board.get(CONSUMER) == 5
    offers = list(range(1, 301))
    random.Random(3).shuffle(offers)
    await asyncio.gather(*(redis_board.advance(CONSUMER, v) for v in offers))
    assert await redis_board.get(CONSUMER) == 300
    assert await redis_board.get("another-consumer") is None


async def test_the_local_board_only_moves_forward() -> None:
    board = LocalBoard()
    assert await board.get(CONSUMER) is None
    assert await board.advance(CONSUMER, 5) == 5
    assert await board.advance(CONSUMER, 3) == 5
    assert await board.get(CONSUMER) == 5


async def test_a_forgotten_redis_board_value_is_missing(redis_board: RedisBoard) -> None:
    await redis_board.advance(CONSUMER, 9)
    await redis_board.forget(CONSUMER)
    assert await redis_board.get(CONSUMER) is None
    assert await redis_board.advance(CONSUMER, 2) == 2


async def test_an_unreachable_redis_board_says_so() -> None:
    board = RedisBoard(UNREACHABLE)
    try:
        with pytest.raises(BoardUnavailable):
            await board.get(CONSUMER)
        with pytest.raises(BoardUnavailable):
            await board.advance(CONSUMER, 1)
    finally:
        await board.close()


# ------------------------------------------------------------------------------ reads


async def test_the_projector_posts_the_store_version_after_each_commit(
    scene: Scene, board_and_cache: tuple[VersionBoard, Cache]
) -> None:
    board, _ = board_and_cache
    process = lineage_process(scene, board)
    await process.projector.apply(await scene.push(scene.payload))
    assert await board.get(CONSUMER) == await scene.graph_reader.graph_version(CONSUMER) > 0


async def test_a_read_after_an_applied_push_never_sees_the_older_answer_through_the_board(
    scene: Scene, board_and_cache: tuple[VersionBoard, Cache]
) -> None:
    process = lineage_process(scene, *board_and_cache)
    async with lineage_client(process.reader) as client:
        await process.projector.apply(await scene.push(first_stage(scene.payload)))
        before = (await client.get(TREE)).json()
        assert (await client.get(TREE)).json() == before  # from the cache
        assert len(before) == 2
        await process.projector.apply(await scene.push(scene.payload))
        after = await client.get(TREE)  # no token: the board's version
    assert len(after.json()) == 3


async def test_a_read_with_a_token_posts_its_version_for_the_reads_after_it(
    scene: Scene, board_and_cache: tuple[VersionBoard, Cache]
) -> None:
    """The projector here posts nothing (its post was lost): the token read takes the store's
    version, and from then on token-less reads do too."""
    board, cache = board_and_cache
    reader = lineage_process(scene, board, cache).reader
    silent = Projector(scene.graph.store)
    async with lineage_client(reader) as client:
        await silent.apply(await scene.push(first_stage(scene.payload)))
        assert len((await client.get(TREE)).json()) == 2
        events = await scene.push(scene.payload)
        await silent.apply(events)
        stale = (await client.get(TREE)).json()
        assert len(stale) == 2  # the board lags: the lost post, not yet healed
        pinned = await client.get(TREE, headers={TOKEN: f"Test-env:{events[-1].seq}"})
        assert len(pinned.json()) == 3
        assert await board.get(CONSUMER) == await scene.graph_reader.graph_version(CONSUMER)
        assert len((await client.get(TREE)).json()) == 3


async def test_the_sync_loop_heals_a_lost_post(
    scene: Scene, board_and_cache: tuple[VersionBoard, Cache]
) -> None:
    board, _ = board_and_cache
    versions = lineage_process(scene, board, sync_every_s=0.05).versions
    await Projector(scene.graph.store).apply(await scene.push(scene.payload))  # posts nothing
    stop = asyncio.Event()
    sync = asyncio.create_task(versions.keep_synced(stop))
    expected = await scene.graph_reader.graph_version(CONSUMER)

    async def synced() -> None:
        assert await board.get(CONSUMER) == expected

    try:
        await eventually_async(synced)
    finally:
        stop.set()
        await sync


async def test_reads_are_right_when_redis_is_unreachable(scene: Scene) -> None:
    board = RedisBoard(UNREACHABLE)
    cache = RedisCache(UNREACHABLE, ttl_s=60)
    process = lineage_process(scene, board, cache)
    try:
        async with lineage_client(process.reader) as client:
            await process.projector.apply(await scene.push(first_stage(scene.payload)))
            assert len((await client.get(TREE)).json()) == 2
            events = await scene.push(scene.payload)
            await process.projector.apply(events)
            assert len((await client.get(TREE)).json()) == 3
            pinned = await client.get(TREE, headers={TOKEN: f"Test-env:{events[-1].seq}"})
            assert len(pinned.json()) == 3
            metrics = (await client.get("/metrics")).text
    finally:
        await cache.close()
        await board.close()
    assert 'cmf_lineage_version_board_fallbacks_total{reason="suspended"}' in metrics
    assert 'cmf_lineage_version_board_errors_total{operation="advance"}' in metrics


class FailingBoard:
    """The real Redis board, failing on demand (as a Redis that drops connections would)."""

    def __init__(self, board: RedisBoard) -> None:
        self.board = board
        self.failing = False

    async def get(self, consumer: str) -> int | None:
        if self.failing:
            raise BoardUnavailable("failing on purpose")
        return await self.board.get(consumer)

    async def advance(self, consumer: str, version: int) -> int:
        if self.failing:
            raise BoardUnavailable("failing on purpose")
        return await self.board.advance(consumer, version)

    async def forget(self, consumer: str) -> None:
        if self.failing:
            raise BoardUnavailable("failing on purpose")
        await self.board.forget(consumer)

    async def close(self) -> None:
        await self.board.close()


async def test_after_a_board_failure_reads_never_go_back_to_its_older_version(
    scene: Scene, redis_board: RedisBoard, redis_cache: RedisCache
) -> None:
    """The post of a push is lost while Redis fails; Redis comes back still holding the version
    before it. Reads served the push meanwhile (from the store), so they keep taking the store's
    version until a post succeeds, and then the board holds the push's version."""
    flaky = FailingBoard(redis_board)
    process = lineage_process(scene, flaky, redis_cache, retry_s=3600)
    store_version = scene.graph_reader.graph_version
    async with lineage_client(process.reader) as client:
        await process.projector.apply(await scene.push(first_stage(scene.payload)))
        assert len((await client.get(TREE)).json()) == 2
        flaky.failing = True
        assert len((await client.get(TREE)).json()) == 2  # the board's get fails: the store
        await process.projector.apply(await scene.push(scene.payload))
        assert len((await client.get(TREE)).json()) == 3  # from the store
        flaky.failing = False
        posted = await redis_board.get(CONSUMER)
        assert posted is not None and posted < await store_version(CONSUMER)
        assert len((await client.get(TREE)).json()) == 3  # still the store's version
        await process.versions.sync()
        assert await redis_board.get(CONSUMER) == await store_version(CONSUMER)
        assert len((await client.get(TREE)).json()) == 3  # the board's again


async def test_a_missing_board_value_is_taken_from_the_store_and_posted(
    scene: Scene, redis_board: RedisBoard
) -> None:
    """Redis evicted the key, or nothing has posted yet."""
    await Projector(scene.graph.store).apply(await scene.push(scene.payload))
    versions = lineage_process(scene, redis_board).versions
    assert await versions.latest() == await scene.graph_reader.graph_version(CONSUMER)
    assert await redis_board.get(CONSUMER) == await scene.graph_reader.graph_version(CONSUMER)


async def test_concurrent_pushes_read_their_writes_through_the_board_of_each_process(
    scene: Scene, redis_board: RedisBoard, redis_cache: RedisCache
) -> None:
    """Two lineage processes (two readers, two projectors) share the Redis board and cache;
    pipelines sharing artifacts are pushed, projected and read at once. After its projection,
    each push is read whole without a token on the other process, and the shared artifact's
    lineage, read after all were applied, holds every pipeline."""
    processes = []
    for _ in range(2):
        process = lineage_process(scene, redis_board, redis_cache)
        processes.append((process.projector, lineage_client(process.reader)))
    names = [f"Shared-{i}" for i in range(4)]

    async def one(i: int, name: str) -> None:
        projector, _ = processes[i % 2]
        _, other = processes[(i + 1) % 2]
        events = await scene.push(as_pipeline(scene.payload, name), name)
        tree = f"/artifact-lineage/tangled-tree/{name}"
        before = await other.get(tree)  # may be cached, may be a 404: not applied yet
        assert before.status_code in (200, 404)
        await projector.apply(events)
        after = await other.get(tree)
        assert after.status_code == 200 and len(after.json()) == 3

    try:
        await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))
        client = processes[0][1]
        full = (await client.get("/display_lineage", params={"pipeline_name": names[0]})).json()
        data = next(n for n in full["nodes"] if n.get("display_name") == "data.xml:18b9")
        lineage = await processes[1][1].get(
            f"/lineage/{data['id'].split(':')[1]}", params={"direction": "downstream"}
        )
    finally:
        for _, client in processes:
            await client.aclose()
    executions = [n for n in lineage.json()["nodes"] if n["kind"] == "execution"]
    assert {n["pipelines"][0] for n in executions} == set(names)


@pytest.mark.parametrize("graph", ["neo4j"], indirect=True)
async def test_a_neo4j_rebuild_removes_the_board_value_once_the_graph_is_empty(
    scene: Scene, redis_board: RedisBoard
) -> None:
    """The emptied graph's version went back; the board's must not stay ahead of it."""
    events = await scene.push(scene.payload)
    process = lineage_process(scene, redis_board)
    await process.projector.apply(events)
    before = await redis_board.get(CONSUMER)
    seen_when_emptied: list[int | None] = []

    async def export() -> AsyncIterator[Envelope]:
        for event in events:
            yield event

    async def emptied() -> None:
        await redis_board.forget(CONSUMER)
        seen_when_emptied.append(await redis_board.get(CONSUMER))
        assert await scene.graph_reader.graph_version(CONSUMER) == 0

    await rebuild_neo4j(scene.graph.store, export, CONSUMER, emptied)
    assert before is not None and seen_when_emptied == [None]
    latest = await process.versions.latest()
    assert latest == await scene.graph_reader.graph_version(CONSUMER) == before
