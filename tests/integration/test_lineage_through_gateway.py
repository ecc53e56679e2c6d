"""Lineage reads through the gateway of `cmf-server up`: every lineage route the route table sends
to the lineage service answers the pushed graph, with a consistency token at once and without one
once projected; a read after a token read never answers from before it. Once on the embedded
server (projector in-process, its version board in-process), once on the distributed stack (the
relay and a lineage worker over Kafka, the graph in Neo4j, the version board and cache in Redis).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from lineage_reads import TOKEN, get, push, read_each_route_right_after_each_push
from support import (
    KAFKA_BOOTSTRAP,
    ServerProcess,
    drop_database,
    free_port,
    neo4j_env,
    new_database,
    new_topic,
    start_server,
    start_worker,
)

from cmf_testing.fixtures import cmf_fixture
from cmf_testing.generator import push_body
from cmf_testing.waiting import eventually

pytestmark = pytest.mark.neo4j

REDIS_URL = os.environ.get("CMF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """`cmf-server up` without Kafka or Redis; a client of its gateway."""
    env = {"LINEAGE_CONSISTENCY_WAIT_S": "1"}
    with (
        start_server(tmp_path_factory.mktemp("embedded"), free_port(), env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        yield client


def test_every_lineage_route_answers_a_push_at_once_with_its_token(
    embedded: httpx.Client,
) -> None:
    token = push(embedded, cmf_fixture("push_example.json"))
    tree = get(embedded, "/artifact-lineage/tangled-tree/Test-env", token)
    assert len(tree) == 3
    assert get(embedded, "/api/artifact-lineage/tangled-tree/Test-env", token) == tree
    mixed = get(embedded, "/api/artifact-execution-lineage/tangled-tree/Test-env", token)
    assert len(mixed) > len(tree)  # executions between the artifacts' layers
    display = get(embedded, "/display_lineage", token, pipeline_name="Test-env")
    data = next(n for n in display["nodes"] if n.get("display_name") == "data.xml:18b9")
    artifact_id = data["id"].split(":")[1]
    seed = get(embedded, f"/lineage/{artifact_id}", token, direction="downstream")
    assert [n for n in seed["nodes"] if n["kind"] == "execution"]
    assert get(embedded, f"/api/lineage/{artifact_id}", token, direction="downstream") == seed
    ours = get(
        embedded, f"/api/native/v1/lineage/artifacts/{artifact_id}", token, direction="downstream"
    )
    assert ours == seed
    ancestry = get(embedded, "/execution-lineage/tangled-tree/72d0/Test-env", token)
    assert ancestry == [
        [{"id": "Prepare_6e89", "parents": []}],
        [{"id": "Train_72d0", "parents": ["Prepare_6e89"]}],
    ]
    assert get(embedded, "/api/execution-lineage/tangled-tree/72d0/Test-env", token) == ancestry


def test_reads_without_a_token_see_a_push_once_projected(embedded: httpx.Client) -> None:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    push(embedded, push_body(name, 4))
    path = f"/artifact-lineage/tangled-tree/{name}"

    def projected() -> Any:
        answer = embedded.get(path)
        assert answer.status_code == 200, answer.status_code
        # Four steps: a layer for the Datasets each wrote and one for the first's inputs.
        assert len(answer.json()) == 5, answer.json()
        return answer.json()

    tree = eventually(projected, timeout=30)
    assert get(embedded, path) == tree


def test_a_read_after_a_token_read_never_answers_from_before_it(embedded: httpx.Client) -> None:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    first = push(embedded, push_body(name, 2))
    path = f"/artifact-lineage/tangled-tree/{name}"
    before = get(embedded, path, first)
    assert get(embedded, path) == before  # now cached under the board's version
    again = push(embedded, push_body(name, 3, seed=1))  # more executions in the same pipeline
    after = get(embedded, path, again)
    assert after != before
    assert get(embedded, path) == after


def test_a_token_not_reached_is_a_503_through_the_gateway(embedded: httpx.Client) -> None:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    pipeline, _, seq = push(embedded, push_body(name, 1)).rpartition(":")
    ahead = {TOKEN: f"{pipeline}:{int(seq) + 100}"}
    cmf = embedded.get(f"/artifact-lineage/tangled-tree/{name}", headers=ahead)
    assert cmf.status_code == 503 and cmf.headers["retry-after"] == "1"
    ours = embedded.get("/api/native/v1/lineage/artifacts/1", headers=ahead)
    assert ours.status_code == 503
    assert ours.headers["content-type"] == "application/problem+json"


def test_every_lineage_route_answers_a_push_at_once_without_a_token(
    embedded: httpx.Client,
) -> None:
    read_each_route_right_after_each_push(embedded)


def test_with_redis_down_pushes_succeed_and_reads_stay_consistent(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Redis unreachable: the push's post is refused (kept to retry), reads ask the metadata
    service for the committed sequences."""
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "LINEAGE_CONSISTENCY_WAIT_S": "5"}
    with (
        start_server(tmp_path_factory.mktemp("redis-down"), free_port(), env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        read_each_route_right_after_each_push(client, pushes=5)


def _an_artifact_id(client: httpx.Client, pipeline: str, token: str | None) -> str:
    """The metadata id of one of the pipeline's artifacts, from /display_lineage."""
    display = get(client, "/api/display_lineage", token, pipeline_name=pipeline)
    return str(next(n for n in display["nodes"] if n["kind"] == "artifact")["id"].split(":")[1])


# ------------------------------------------------------------------------------ distributed


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    """`cmf-server up` with Kafka, Neo4j and Redis; `worker relay`; `worker lineage` (Neo4j,
    Redis). Yields a client of the gateway and the lineage consumer group."""
    tmp = tmp_path_factory.mktemp("distributed")
    topic = new_topic(partitions=3)
    metadata_db = new_database()
    group = f"gw-{uuid.uuid4().hex[:8]}"
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        "EVENTS_TOPIC": topic,
        "REDIS_URL": REDIS_URL,
        "LINEAGE_CONSUMER_GROUP": group,
        "LINEAGE_CONSISTENCY_WAIT_S": "30",
        **neo4j_env(),
    }
    processes: list[ServerProcess] = []
    try:
        processes.append(start_server(tmp, free_port(), {**common, "DATABASE_URL": metadata_db}))
        for kind in ("relay", "lineage"):
            folder = tmp / kind
            folder.mkdir()
            processes.append(
                start_worker(kind, folder, {**common, "METADATA_DATABASE_URL": metadata_db})
            )
        with httpx.Client(base_url=processes[0].base_url, timeout=60) as client:
            yield client, group
    finally:
        for process in reversed(processes):
            process.stop()
        _forget_board(group, topic)
        drop_database(metadata_db)


def test_reads_through_the_gateway_follow_the_workers_projection_via_redis(
    distributed: tuple[httpx.Client, str],
) -> None:
    client, group = distributed
    name = f"gw-{uuid.uuid4().hex[:8]}"
    push(client, push_body(name, 3))
    path = f"/artifact-lineage/tangled-tree/{name}"

    def projected() -> Any:
        answer = client.get(path)
        assert answer.status_code == 200, answer.status_code
        assert len(answer.json()) == 4, answer.json()  # every event of the push is applied
        return answer.json()

    first = eventually(projected, timeout=60)
    token = push(client, push_body(name, 5, seed=1))
    pinned = get(client, path, token)
    assert pinned != first
    assert get(client, path) == pinned  # the token read posted its version to Redis
    artifact_id = _an_artifact_id(client, name, token)
    lineage = get(client, f"/api/native/v1/lineage/artifacts/{artifact_id}", token)
    assert get(client, f"/lineage/{artifact_id}") == lineage
    assert _board_holds(group)


def test_every_lineage_route_answers_a_push_at_once_through_kafka(
    distributed: tuple[httpx.Client, str],
) -> None:
    """The relay and the lineage worker between the push and the graph; the committed
    sequences on Redis."""
    client, _ = distributed
    read_each_route_right_after_each_push(client)


def _forget_board(group: str, topic: str) -> None:
    """The version board's keys have no expiry; drop the ones this test's consumer group and
    topic made."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(f"cmf:lineage:version:{group}")
        client.delete(*(f"cmf:committed:{topic}{end}" for end in ("", ":total")))
    finally:
        client.close()


def _board_holds(group: str) -> bool:
    """Whether the version board holds a version for ``group`` (the worker posted it)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return bool(client.exists(f"cmf:lineage:version:{group}"))
    finally:
        client.close()
