"""Read-your-writes and the answer cache, on both stores: a read with a consistency token waits
for the projection (or is told to retry), and no read after an applied event sees the answer
from before it, whether the cache is the in-process LRU or the real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from lineage_support import (
    Scene,
    as_pipeline,
    executions_of,
    first_stage,
    lineage_client,
    lineage_process,
)

from cmf_lineage.cache import Cache, LruCache, RedisCache
from cmf_lineage.graph import GraphStore
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader, Token, parse_token

REDIS_URL = os.environ.get("CMF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "X-CMF-Consistency-Token"
TREE = "/artifact-lineage/tangled-tree/Test-env"


class WatchedStore:
    """The graph store, telling the test when a reader first asks how far it has applied."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.asked = asyncio.Event()

    async def applied_seq(self, consumer: str, pipeline: str) -> int:
        self.asked.set()
        return await self.store.applied_seq(consumer, pipeline)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture(params=["lru", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "lru":
        yield LruCache()
        return
    redis = RedisCache(REDIS_URL, ttl_s=60, prefix=f"cmf-test:{uuid.uuid4().hex}:")
    try:
        await redis.ping()
    except Exception as exc:
        await redis.close()
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); run `make services-up`")
    yield redis
    await redis.close()


async def test_a_token_already_reached_is_answered_at_once(
    scene: Scene,
) -> None:
    events = await scene.push(scene.payload)
    await Projector(scene.graph.store).apply(events)
    reader = lineage_process(scene, wait_s=0.05).reader
    async with lineage_client(reader) as client:
        answer = await client.get(TREE, headers={TOKEN: f"Test-env:{events[-1].seq}"})
    assert answer.status_code == 200 and len(answer.json()) == 3


async def test_a_read_waits_for_the_projection_to_reach_its_token(
    scene: Scene,
) -> None:
    events = await scene.push(scene.payload)
    watched = WatchedStore(scene.graph.store)
    reader = LineageReader(scene.graph_reader, watched, LruCache(), "cmf-lineage", wait_s=30)
    async with lineage_client(reader) as client:
        read = asyncio.create_task(client.get(TREE, headers={TOKEN: f"Test-env:{events[-1].seq}"}))
        await asyncio.wait_for(watched.asked.wait(), timeout=10)
        assert not read.done()
        await Projector(scene.graph.store).apply(events)
        answer = await asyncio.wait_for(read, timeout=10)
    assert answer.status_code == 200 and len(answer.json()) == 3


async def test_a_token_not_reached_in_time_is_a_503_with_retry_after(
    scene: Scene,
) -> None:
    events = await scene.push(scene.payload)
    await Projector(scene.graph.store).apply(events)
    reader = lineage_process(scene, wait_s=0.2).reader
    ahead = f"Test-env:{events[-1].seq + 1}"
    async with lineage_client(reader) as client:
        cmf = await client.get(TREE, headers={TOKEN: ahead})
        ours = await client.get("/api/native/v1/lineage/artifacts/1", headers={TOKEN: ahead})
    assert cmf.status_code == 503 and cmf.headers["retry-after"] == "1"
    assert "detail" in cmf.json()
    assert ours.status_code == 503 and ours.headers["retry-after"] == "1"
    assert ours.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("raw", ["Test-env", "Test-env:", ":5", "Test-env:five", "Test-env:-1"])
async def test_a_malformed_token_is_a_422(scene: Scene, raw: str) -> None:
    reader = lineage_process(scene, wait_s=0.05).reader
    async with lineage_client(reader) as client:
        answer = await client.get(TREE, headers={TOKEN: raw})
    assert answer.status_code == 422


def test_a_token_names_its_pipeline_percent_encoded() -> None:
    assert parse_token("my%20pipe%3Av2:17") == Token("my pipe:v2", 17)


async def test_a_cached_tree_is_not_served_once_a_later_push_is_applied(
    scene: Scene, cache: Cache
) -> None:
    first = first_stage(scene.payload)
    reader = lineage_process(scene, cache=cache).reader
    async with lineage_client(reader) as client:
        await Projector(scene.graph.store).apply(await scene.push(first))
        before = (await client.get(TREE)).json()
        assert (await client.get(TREE)).json() == before  # now from the cache
        assert len(before) == 2
        events = await scene.push(scene.payload)
        await Projector(scene.graph.store).apply(events)
        after = await client.get(TREE, headers={TOKEN: f"Test-env:{events[-1].seq}"})
    assert len(after.json()) == 3


async def test_a_read_after_another_pipelines_push_sees_its_use_of_a_shared_artifact(
    scene: Scene, cache: Cache
) -> None:
    """The artifact lineage crosses pipelines; a push elsewhere changes it, and reads racing
    with that push's projection never outlive it."""
    await Projector(scene.graph.store).apply(await scene.push(scene.payload))
    reader = lineage_process(scene, cache=cache).reader
    async with lineage_client(reader) as client:
        full = (await client.get("/display_lineage", params={"pipeline_name": "Test-env"})).json()
        data = next(n for n in full["nodes"] if n.get("display_name") == "data.xml:18b9")
        path = f"/lineage/{data['id'].split(':')[1]}"
        before = (await client.get(path, params={"direction": "downstream"})).json()
        assert {p for n in before["nodes"] for p in n["pipelines"]} == {"Test-env"}
        other = await scene.push(as_pipeline(scene.payload, "Other-env"), "Other-env")

        async def reads() -> None:
            for _ in range(5):
                answer = await client.get(path, params={"direction": "downstream"})
                assert answer.status_code == 200

        await asyncio.gather(reads(), Projector(scene.graph.store).apply(other), reads())
        after = (await client.get(path, params={"direction": "downstream"})).json()
    executions = [n for n in after["nodes"] if n["kind"] == "execution"]
    assert {n["pipelines"][0] for n in executions} == {"Test-env", "Other-env"}
    assert len(executions) == 2 * len(executions_of(scene.payload))


async def test_the_lru_drops_the_least_recently_used_entry() -> None:
    lru = LruCache(max_entries=2)
    await lru.set("a", b"1")
    await lru.set("b", b"2")
    assert await lru.get("a") == b"1"
    await lru.set("c", b"3")
    assert await lru.get("b") is None
    assert await lru.get("a") == b"1" and await lru.get("c") == b"3"


async def test_redis_keeps_entries_under_its_prefix() -> None:
    prefix = f"cmf-test:{uuid.uuid4().hex}:"
    redis = RedisCache(REDIS_URL, ttl_s=60, prefix=prefix)
    try:
        await redis.set("k", b"answer")
        assert await redis.get("k") == b"answer"
        assert await redis.client.get(prefix + "k") == b"answer"
        assert 0 < await redis.client.ttl(prefix + "k") <= 60
        assert await redis.get("other") is None
        await redis.client.delete(prefix + "k")
    finally:
        await redis.close()


async def test_an_unreachable_redis_is_a_miss_not_a_failure() -> None:
    redis = RedisCache("redis://127.0.0.1:9/0", ttl_s=60)
    try:
        assert await redis.get("k") is None
        await redis.set("k", b"lost")
    finally:
        await redis.close()


async def test_cache_hits_misses_and_latency_are_metrics(
    scene: Scene,
) -> None:
    await Projector(scene.graph.store).apply(await scene.push(scene.payload))
    reader = lineage_process(scene).reader
    async with lineage_client(reader) as client:
        await client.get(TREE)
        await client.get(TREE)
        metrics = (await client.get("/metrics")).text
    assert 'cmf_lineage_cache_lookups_total{result="hit"}' in metrics
    assert 'cmf_lineage_cache_lookups_total{result="miss"}' in metrics
    assert 'cmf_lineage_query_seconds_count{query="artifact-tree",source="cache"}' in metrics


async def test_concurrent_pushes_each_read_their_own_write_through_one_cache(
    scene: Scene, cache: Cache
) -> None:
    """Pipelines sharing artifacts are pushed, projected and read at once; every read with its
    push's token sees its pipeline whole, and the shared artifact's lineage, read after all
    were applied, holds every pipeline."""
    reader = lineage_process(scene, cache=cache).reader
    names = [f"Shared-{i}" for i in range(4)]

    async def one(client: httpx.AsyncClient, name: str) -> None:
        events = await scene.push(as_pipeline(scene.payload, name), name)
        tree = f"/artifact-lineage/tangled-tree/{name}"
        before = await client.get(tree)  # may be cached, may be a 404: not applied yet
        assert before.status_code in (200, 404)
        await Projector(scene.graph.store).apply(events)
        after = await client.get(tree, headers={TOKEN: f"{name}:{events[-1].seq}"})
        assert after.status_code == 200 and len(after.json()) == 3

    async with lineage_client(reader) as client:
        await asyncio.gather(*(one(client, name) for name in names))
        full = (await client.get("/display_lineage", params={"pipeline_name": names[0]})).json()
        data = next(n for n in full["nodes"] if n.get("display_name") == "data.xml:18b9")
        lineage = await client.get(
            f"/lineage/{data['id'].split(':')[1]}", params={"direction": "downstream"}
        )
    executions = [n for n in lineage.json()["nodes"] if n["kind"] == "execution"]
    assert {n["pipelines"][0] for n in executions} == set(names)
