"""Read-after-write without a token (cmf_lineage.consistency): a read waits for every
acknowledged push of the pipelines it covers, whichever board holds the committed sequences (the
in-process one, Redis's, or the metadata service when the board fails), answers 503 with
Retry-After in its route's dialect when the projection does not get there in time, and never waits
for a pipeline nobody pushed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from lineage_support import Scene, lineage_client, lineage_process
from test_reads import REDIS_URL

from cmf_common.committed import (
    CommittedKeys,
    CommittedRead,
    CommittedUnavailable,
    LocalCommitted,
    RedisCommitted,
)
from cmf_lineage.board import RedisBoard
from cmf_lineage.projector import Projector

TREE = "/artifact-lineage/tangled-tree/Test-env"
ROUTES = (
    TREE,
    "/api/artifact-execution-lineage/tangled-tree/Test-env",
    "/display_lineage?pipeline_name=Test-env",
    "/v1/pipelines/Test-env/artifacts/lineage",
    "/v1/pipelines/Test-env/hierarchical-lineage",
)
# CMFQuery's graph questions cover every pipeline, as a walk does (the captured push's model).
MODEL = "artifacts/model/model.pkl:cd24e3c0c20c51b12879a98838cfea55:2"
CMFQUERY = tuple(
    f"/v1/artifacts/name/{MODEL}/{question}"
    for question in ("ancestors", "parents", "executions", "producer-execution")
)


class Sequences:
    """The metadata service's answers, as a test sets them; ``down`` makes it fail."""

    def __init__(self, seqs: dict[str, int]) -> None:
        self.seqs = seqs
        self.down = False
        self.asked = 0

    async def read(self, pipelines: Sequence[str]) -> CommittedRead:
        self.asked += 1
        if self.down:
            raise CommittedUnavailable("metadata is down")
        return CommittedRead({p: self.seqs.get(p, 0) for p in pipelines}, None)

    async def read_all(self) -> tuple[dict[str, int], int]:
        self.asked += 1
        if self.down:
            raise CommittedUnavailable("metadata is down")
        return dict(self.seqs), sum(self.seqs.values())


async def test_every_pipeline_route_waits_for_an_acknowledged_push_without_a_token(
    scene: Scene,
) -> None:
    events = await scene.push(scene.payload)
    committed = LocalCommitted()
    await committed.post("Test-env", events[-1].seq)  # acknowledged, not yet projected
    reader = lineage_process(scene, wait_s=30, local=committed).reader
    async with lineage_client(reader) as client:
        reads = [asyncio.create_task(client.get(route)) for route in ROUTES]
        await asyncio.sleep(0.2)
        assert not any(read.done() for read in reads)
        await Projector(scene.graph.store).apply(events)
        answers = await asyncio.wait_for(asyncio.gather(*reads), timeout=10)
    for route, answer in zip(ROUTES, answers, strict=True):
        assert answer.status_code == 200, (route, answer.text)
    assert len(answers[0].json()) == 3
    assert answers[3].json()["data"] == answers[0].json()


async def test_a_walk_waits_for_every_pipeline(scene: Scene) -> None:
    events = await scene.push(scene.payload)
    await Projector(scene.graph.store).apply(events)
    committed = LocalCommitted()
    await committed.post("Test-env", events[-1].seq)
    reader = lineage_process(scene, wait_s=0.3, local=committed).reader
    async with lineage_client(reader) as client:
        display = (await client.get("/display_lineage?pipeline_name=Test-env")).json()
        artifact = next(n for n in display["nodes"] if n["kind"] == "artifact")["id"]
        walk = f"/lineage/{artifact.split(':')[1]}"
        assert (await client.get(walk)).status_code == 200
        for route in CMFQUERY:
            answer = await client.get(route)
            assert answer.status_code == 200 and answer.json()["status"] == "success", route
        await committed.post("Another", 4)  # a push of another pipeline, not projected
        behind = await client.get(walk)
        ours = await client.get(f"/api/native/v1/lineage/artifacts/{artifact.split(':')[1]}")
        questions = [await client.get(route) for route in CMFQUERY]
        tree = await client.get(TREE)  # covers Test-env only: answered
    assert behind.status_code == 503 and behind.headers["retry-after"] == "1"
    assert behind.headers["content-type"] == "application/problem+json"
    assert ours.status_code == 503
    for route, answer in zip(CMFQUERY, questions, strict=True):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1", route
        assert answer.json()["status"] == "error" and answer.json()["code"] == 503, route
    assert tree.status_code == 200


async def test_a_stopped_projection_is_a_503_with_retry_after_in_each_dialect(scene: Scene) -> None:
    events = await scene.push(scene.payload)
    committed = LocalCommitted()
    await committed.post("Test-env", events[-1].seq)
    reader = lineage_process(scene, wait_s=0.3, local=committed).reader
    async with lineage_client(reader) as client:
        started = time.monotonic()
        cmf = await client.get(TREE)
        took = time.monotonic() - started
        seed = await client.get("/display_lineage?pipeline_name=Test-env")
        upstream = await client.get("/v1/pipelines/Test-env/artifacts/lineage")
    assert 0.3 <= took < 5
    for answer in (cmf, seed, upstream):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1", answer.text
    assert "detail" in cmf.json()
    assert seed.headers["content-type"] == "application/problem+json"
    assert upstream.json()["status"] == "error" and upstream.json()["code"] == 503


async def test_a_pipeline_nobody_pushed_is_a_404_at_once(scene: Scene) -> None:
    metadata = Sequences({})
    reader = lineage_process(scene, wait_s=30, local=LocalCommitted()).reader
    asking = lineage_process(scene, wait_s=30, metadata=metadata).reader
    for each in (reader, asking):
        async with lineage_client(each) as client:
            started = time.monotonic()
            answer = await client.get("/artifact-lineage/tangled-tree/Nobody")
            assert answer.status_code == 404
            assert time.monotonic() - started < 2
    assert metadata.asked == 1


@pytest.fixture
async def redis_keys() -> AsyncIterator[CommittedKeys]:
    keys = CommittedKeys.of(f"cmf-test-{uuid.uuid4().hex}")
    yield keys
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.delete(keys.seqs, keys.total)
    finally:
        await client.aclose()


async def test_redis_holds_the_committed_seqs_the_read_takes_with_its_version(
    scene: Scene, redis_keys: CommittedKeys
) -> None:
    events = await scene.push(scene.payload)
    posted = RedisCommitted(REDIS_URL, redis_keys)
    board = RedisBoard(REDIS_URL, f"cmf-test:{uuid.uuid4().hex}:", committed=redis_keys)
    metadata = Sequences({})
    try:
        await posted.post("Test-env", events[-1].seq)
        await posted.post("Test-env", 1)  # never back
        assert (await posted.read(["Test-env", "Nobody"])).seqs == {
            "Test-env": events[-1].seq,
            "Nobody": None,
        }
        process = lineage_process(scene, board, wait_s=30, shared=posted, metadata=metadata)
        await process.versions.sync()
        async with lineage_client(process.reader) as client:
            read = asyncio.create_task(client.get(TREE))
            await asyncio.sleep(0.2)
            assert not read.done()
            await process.projector.apply(events)
            assert (await asyncio.wait_for(read, timeout=10)).status_code == 200
            assert (await client.get(TREE)).status_code == 200
            display = (await client.get("/display_lineage?pipeline_name=Test-env")).json()
            artifact = next(n for n in display["nodes"] if n["kind"] == "artifact")["id"]
            assert (await client.get(f"/lineage/{artifact.split(':')[1]}")).status_code == 200
        assert metadata.asked == 0  # everything came from Redis
    finally:
        await board.close()
        await posted.close()


async def test_with_redis_down_a_read_asks_the_metadata_service(scene: Scene) -> None:
    events = await scene.push(scene.payload)
    dead = "redis://127.0.0.1:1/0"
    keys = CommittedKeys.of("cmf-test-down")
    board = RedisBoard(dead, committed=keys, timeout_s=0.2)
    metadata = Sequences({"Test-env": events[-1].seq})
    try:
        reader = lineage_process(scene, board, wait_s=30, metadata=metadata).reader
        async with lineage_client(reader) as client:
            read = asyncio.create_task(client.get(TREE))
            await asyncio.sleep(0.3)
            assert not read.done()
            await Projector(scene.graph.store).apply(events)
            assert (await asyncio.wait_for(read, timeout=10)).status_code == 200
            metadata.down = True  # neither the board nor the metadata service: no answer
            assert (await client.get(TREE)).status_code == 503
    finally:
        await board.close()
