"""The embedded server's composition in this process while its PostgreSQL goes away (issue 12,
items 1 and 2): every dialect's data routes answer 503 with ``Retry-After`` and come back by
themselves, a push is all or nothing, and a delivery that moves nothing on while events wait
shows in ``/livez``, ``/health`` and ``cmf_loop_stalled``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from cmf_common.dispatch import StoreUnavailable
from cmf_gateway.app import Gateway
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_metadata.settings import MetadataSettings
from cmf_server.embedded import embedded_server
from cmf_testing.generator import push_body
from cmf_testing.postgres import Cluster
from cmf_testing.problems import assert_problem
from cmf_testing.waiting import eventually_async


def embedded_gateway(database_url: str, loop_stall_s: float = 60.0) -> Gateway:
    """The embedded server's composition (as ``cmf-server up`` without Kafka)."""
    url = SecretStr(database_url)
    return embedded_server(
        GatewaySettings(kafka_bootstrap_servers=None),
        MetadataSettings(database_url=url, loop_stall_s=loop_stall_s),
        LineageSettings(database_url=url, neo4j_uri=None, redis_url=None),
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster() as own:
        yield own


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    if not cluster.running():
        cluster.start()
    gateway = embedded_gateway(cluster.url)
    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    async with (
        gateway.own.router.lifespan_context(gateway.own),
        httpx.AsyncClient(transport=transport, base_url="http://cmf", timeout=30) as client,
    ):
        yield client
    if not cluster.running():
        cluster.start()


# One data route of each dialect and service: the reference's listings and lineage, our own,
# and upstream's v1.
REFERENCE_ROUTES = ("/api/pipelines", "/api/artifact-lineage/tangled-tree/outage")
PROBLEM_ROUTES = ("/api/native/v1/pipelines", "/api/native/v1/executions")
ENVELOPE_ROUTES = ("/api/v1/pipelines", "/v1/pipelines/outage/executions")


async def test_every_dialect_answers_503_while_postgres_is_down_and_recovers_by_itself(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    pushed = await client.post("/api/mlmd_push", json=push_body("outage", 3))
    assert pushed.json() == {"status": "success"}
    cluster.crash()

    for path in REFERENCE_ROUTES:
        answer = await client.get(path)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "1"
        assert list(answer.json()) == ["detail"]
    for path in PROBLEM_ROUTES:
        answer = await client.get(path)
        assert_problem(answer, 503, "unavailable")
        assert answer.headers["retry-after"] == "1"
    for path in ENVELOPE_ROUTES:
        answer = await client.get(path)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["status"] == "error" and answer.json()["code"] == 503
    push = await client.post("/api/mlmd_push", json=push_body("during-outage", 3))
    assert push.status_code == 503 and push.headers["retry-after"] == "1"
    health = await client.get("/health")
    assert health.status_code == 503 and health.json()["checks"]["database"]["status"] == "down"

    cluster.start()

    async def back() -> None:
        for path in (*REFERENCE_ROUTES, *PROBLEM_ROUTES, *ENVELOPE_ROUTES):
            answer = await client.get(path)
            assert answer.status_code == 200, (path, answer.text)

    await eventually_async(back, timeout=10)
    pipelines = (await client.get("/api/native/v1/pipelines")).json()
    assert [p["name"] for p in pipelines["items"]] == ["outage"], "the refused push left nothing"


def _stalled() -> float | None:
    return REGISTRY.get_sample_value("cmf_loop_stalled", {"loop": "embedded-delivery"})


async def test_a_delivery_that_moves_nothing_while_events_wait_is_not_live(
    make_database_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector's store says it is unavailable although it is not (the shape of a bug that
    looks like an outage): the delivery waits it out, beating, and would have looked alive for
    ever; past LOOP_STALL_S it is stalled, and moves again once the store does."""

    async def unavailable(*_: object, **__: object) -> None:
        raise StoreUnavailable("PostgreSQL: ConnectionDoesNotExistError")

    monkeypatch.setattr(PostgresGraphStore, "apply", unavailable)
    gateway = embedded_gateway(make_database_url(), loop_stall_s=1.0)
    transport = httpx.ASGITransport(app=gateway)
    async with (
        gateway.own.router.lifespan_context(gateway.own),
        httpx.AsyncClient(transport=transport, base_url="http://cmf") as client,
    ):
        pushed = await client.post("/api/mlmd_push", json=push_body("stalled", 3))
        assert pushed.json()["status"] == "success"

        async def stalled() -> None:
            live = await client.get("/livez")
            assert live.status_code == 503, live.text
            assert "moved nothing on" in live.json()["detail"]

        await eventually_async(stalled, timeout=10)
        health = await client.get("/health")
        assert health.json()["checks"]["loops"]["status"] == "down"
        assert "moved nothing on" in health.json()["checks"]["loops"]["detail"]
        assert _stalled() == 1.0
        monkeypatch.undo()

        async def moving() -> None:
            assert (await client.get("/livez")).status_code == 200
            assert _stalled() == 0.0

        await eventually_async(moving, timeout=10)
