"""Distributed mode when things go wrong, with the metadata and artifact services and the
gateway as processes of their own (from ``cmf_server.topology``) on the real PostgreSQL (a role
per service) and S3 (SeaweedFS): a service that stops answering is a 504 at the gateway's
timeout, one that is down a 503; a service killed mid-upload leaves no object behind, one
killed mid-download ends the answer early; a large body crosses the gateway with its memory
flat; the gateway's HTTP edge holds (header size, host, origin) and the services' body limits
reach the client; paths in tricky forms never reach a service; one /openapi.json; each
service's role is refused the other's schema.

No Kafka or Neo4j: it needs no lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Iterator

import aioboto3
import asyncpg
import httpx
import pytest
from distributed_stack import UNSIGNED, Roles, Stack, running_stack, service_roles
from raw_http import Connection

from cmf_common.errors import PROBLEM_JSON
from cmf_server import topology
from cmf_testing.rss import RssPeak
from cmf_testing.s3 import TEST_S3, own_bucket
from cmf_testing.waiting import eventually

MiB = 1 << 20
NAMES = (topology.METADATA, topology.ARTIFACTS, topology.GATEWAY)
GATEWAY_TIMEOUT_S = 3.0
PIPELINES = "/api/native/v1/pipelines"


@pytest.fixture(scope="module")
def roles() -> Iterator[Roles]:
    with service_roles((topology.METADATA, topology.ARTIFACTS)) as made:
        yield made


@pytest.fixture(scope="module")
def bucket() -> Iterator[str]:
    with own_bucket("cmf-faults") as name:
        yield name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, roles: Roles, bucket: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("faults")
    settings = {
        "METADATA_DATABASE_URL": roles.urls[topology.METADATA],
        "ARTIFACTS_DATABASE_URL": roles.urls[topology.ARTIFACTS],
        "FILES_DIR": str(tmp / "files"),
        "PRINCIPAL_SECRET": "a-test-secret-of-32-characters!!",
        "LOG_LEVEL": "WARNING",
        **TEST_S3.env(bucket),
    }
    extra = {
        topology.METADATA: {**UNSIGNED, "MAX_BODY_BYTES": str(MiB)},
        topology.ARTIFACTS: UNSIGNED,
        topology.GATEWAY: {
            # Tokens are test_auth*'s; here the transport (docs/access.md).
            "AUTH": "off-i-know",
            # No lineage process here: its routes answer 503, /health says it is down.
            "LINEAGE_URL": "http://127.0.0.1:9",
            "GATEWAY_TIMEOUT_S": str(GATEWAY_TIMEOUT_S),
            "GATEWAY_TRANSFER_TIMEOUT_S": "20",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CORS_ORIGINS": "http://ui.example",
            "HTTP_MAX_HEADER_BYTES": "8192",
        },
    }
    with running_stack(tmp, NAMES, settings, extra) as running:
        yield running


async def _stored_keys(bucket: str) -> list[str]:
    async with aioboto3.Session().client("s3", **TEST_S3.client_args()) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        return [item["Key"] for item in listed.get("Contents", [])]


def blob(size: int, seed: bytes) -> tuple[bytes, str]:
    data = (hashlib.sha256(seed).digest() * (size // 32 + 1))[:size]
    return data, hashlib.md5(data).hexdigest()


def answers_200(url: str) -> None:
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 200, answer.text


def test_a_service_that_stops_answering_is_a_504_at_the_gateway_timeout(stack: Stack) -> None:
    metadata = stack.processes[topology.METADATA].process
    # A cold service on a loaded machine may take longer than the timeout at first.
    eventually(lambda: answers_200(f"{stack.gateway}{PIPELINES}"), timeout=60)
    metadata.send_signal(signal.SIGSTOP)
    try:
        answer = httpx.get(f"{stack.gateway}{PIPELINES}", timeout=30)
        assert answer.status_code == 504, answer.text
        assert answer.headers["content-type"] == PROBLEM_JSON
        stuck = httpx.get(f"{stack.gateway}/api/pipelines", timeout=30)
        assert stuck.status_code == 504 and set(stuck.json()) == {"detail"}
    finally:
        metadata.send_signal(signal.SIGCONT)
    eventually(lambda: answers_200(f"{stack.gateway}{PIPELINES}"), timeout=30)


def test_a_service_that_is_down_is_a_503_and_health_says_which(stack: Stack) -> None:
    answer = httpx.get(f"{stack.gateway}/api/native/v1/lineage/artifacts/1")
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    health = httpx.get(f"{stack.gateway}/health", timeout=10)
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "degraded"
    assert body["checks"]["lineage"]["status"] == "down"
    assert body["checks"]["metadata"]["status"] == "ok"
    assert body["checks"]["storage"]["status"] == "ok"
    assert body["checks"]["relay"]["status"] == "disabled"
    assert body["checks"]["artifacts-relay"]["status"] == "disabled"


def test_a_service_killed_mid_upload_leaves_no_object(stack: Stack, bucket: str) -> None:
    data, md5 = blob(48 * MiB, b"killed-up")
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for start in range(0, len(data), MiB):
            if sent == 16 * MiB:
                stack.kill(topology.ARTIFACTS)
            sent += MiB
            yield data[start : start + MiB]

    try:
        answer = httpx.put(
            f"{stack.gateway}/api/native/v1/blobs/{md5}",
            content=body(),
            headers={"Content-Length": str(len(data))},
            timeout=60,
        )
        assert answer.status_code == 502, answer.text
        assert answer.headers["content-type"] == PROBLEM_JSON
    except httpx.TransportError:
        pass  # the gateway closed the connection after its 502, with the body still coming
    finally:
        if topology.ARTIFACTS not in stack.processes:
            stack.start(topology.ARTIFACTS)
    head = httpx.head(f"{stack.gateway}/api/native/v1/blobs/{md5}")
    assert head.status_code == 404
    assert not [key for key in asyncio.run(_stored_keys(bucket)) if md5[2:] in key]


def test_a_service_killed_mid_download_ends_the_answer_early(stack: Stack) -> None:
    data, md5 = blob(64 * MiB, b"killed-down")
    url = f"{stack.gateway}/api/native/v1/blobs/{md5}"
    assert httpx.put(url, content=data, timeout=60).status_code in (200, 201)
    got = 0
    try:
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("GET", url, timeout=30) as answer,
        ):
            assert answer.headers["content-length"] == str(len(data))
            for chunk in answer.iter_raw():
                got += len(chunk)
                if got >= 4 * MiB and topology.ARTIFACTS in stack.processes:
                    stack.kill(topology.ARTIFACTS)
    finally:
        if topology.ARTIFACTS not in stack.processes:
            stack.start(topology.ARTIFACTS)
    assert got < len(data)


def test_a_large_body_crosses_the_gateway_both_ways_with_flat_memory(stack: Stack) -> None:
    size = 128 * MiB
    piece = os.urandom(MiB)
    digest = hashlib.md5()
    for _ in range(size // MiB):
        digest.update(piece)
    md5 = digest.hexdigest()
    url = f"{stack.gateway}/api/native/v1/blobs/{md5}"
    gateway = stack.processes[topology.GATEWAY].process.pid
    with RssPeak(gateway) as up:
        answer = httpx.put(
            url,
            content=iter([piece] * (size // MiB)),
            headers={"Content-Length": str(size)},
            timeout=120,
        )
    assert answer.status_code == 201, answer.text
    got = hashlib.md5()
    with RssPeak(gateway) as down, httpx.stream("GET", url, timeout=120) as pulled:
        for chunk in pulled.iter_raw():
            got.update(chunk)
    assert got.hexdigest() == md5
    assert up.growth < 48 * MiB and down.growth < 48 * MiB, (up.growth, down.growth)


def test_the_gateway_holds_the_http_edge_and_relays_the_services_limits(stack: Stack) -> None:
    gateway = stack.gateway
    big = httpx.get(f"{gateway}{PIPELINES}", headers={"X-Big": "x" * 10_000})
    assert big.status_code == 431
    elsewhere = httpx.get(f"{gateway}{PIPELINES}", headers={"Host": "evil.example"})
    assert elsewhere.status_code == 421
    foreign = httpx.post(
        f"{gateway}/api/mlmd_push", json={}, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403, foreign.text
    allowed = httpx.post(
        f"{gateway}/api/mlmd_push",
        json={"json_payload": "{}"},
        headers={"Origin": "http://ui.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert allowed.status_code not in (403, 502, 503), allowed.text
    assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
    oversized = httpx.post(
        f"{gateway}/api/mlmd_push",
        content=b"{" + b" " * (2 * MiB) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert oversized.status_code == 413, oversized.text
    assert "detail" in oversized.json()


def _expecting(method: str, path: str, size: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
        "Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n\r\n"
    ).encode()


def test_expect_100_continue_through_the_gateway_gets_the_services_continue(
    stack: Stack,
) -> None:
    data, md5 = blob(2 * MiB, b"expect-continue")
    with Connection(stack.layout.ports[topology.GATEWAY], timeout=60) as connection:
        connection.send(_expecting("PUT", f"/api/native/v1/blobs/{md5}", len(data)))
        interim = connection.answer()
        assert interim.status == 100, interim
        connection.send(data)
        stored = connection.answer()
    assert stored.status == 201, stored.body[:300]
    pulled = httpx.get(f"{stack.gateway}/api/native/v1/blobs/{md5}", timeout=60)
    assert hashlib.md5(pulled.content).hexdigest() == md5


def test_expect_100_continue_gets_the_services_refusal_and_sends_no_body(stack: Stack) -> None:
    # The metadata service's MAX_BODY_BYTES is 1 MiB here: it refuses the push by its
    # Content-Length, and no 100 Continue comes first.
    with Connection(stack.layout.ports[topology.GATEWAY], timeout=60) as connection:
        connection.send(_expecting("POST", "/api/mlmd_push", 2 * MiB))
        refused = connection.answer()
        assert refused.status == 413, refused
        assert refused.closes and "detail" in refused.body.decode()
        assert connection.closed_by_server()


def test_requests_through_the_gateway_are_counted_under_their_route_template(
    stack: Stack,
) -> None:
    def count(text: str, route: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if (
                line.startswith("cmf_http_requests_total{")
                and 'service="gateway"' in line
                and f'route="{route}"' in line
                and 'status="200"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    metrics = f"{stack.gateway}/metrics"
    before = httpx.get(metrics).text
    for path in (PIPELINES, "/api/pipelines"):
        assert httpx.get(f"{stack.gateway}{path}", timeout=30).status_code == 200
    after = httpx.get(metrics).text
    assert count(after, PIPELINES) == count(before, PIPELINES) + 1
    assert count(after, "/api/pipelines") == count(before, "/api/pipelines") + 1


def _served(stack: Stack) -> float:
    """Requests the services have answered (their /metrics, less the /metrics calls)."""
    total = 0.0
    for name in (topology.METADATA, topology.ARTIFACTS):
        text = httpx.get(f"{stack.url(name)}/metrics").text
        for line in text.splitlines():
            if line.startswith("cmf_http_requests_total{") and 'route="/metrics"' not in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize(
    "path",
    [
        "/api/native/v1/%2e%2e/native/v1/pipelines",
        "/api/native/v1/../v1/pipelines",
        "//api/native/v1/pipelines",
        "/api//mlmd_pull/p",
        "/api/mlmd_pull/a%2Fb",
        "/api/native/v1/blobs/%2e%2e%2f%2e%2e%2fmetrics",
        "/api/native/v1/nothing",
        "/api/nothing/at/all",
    ],
)
def test_tricky_paths_never_reach_a_service(stack: Stack, path: str) -> None:
    before = _served(stack)
    with Connection(stack.layout.ports[topology.GATEWAY]) as connection:
        answer = connection.request("GET", path)
    assert answer.status in (400, 404), (path, answer)
    assert _served(stack) == before, path


def test_one_openapi_describes_every_service(stack: Stack) -> None:
    document = httpx.get(f"{stack.gateway}/openapi.json").json()
    for path in (
        "/api/mlmd_push",
        "/api/native/v1/blobs/{digest}",
        "/v1/pipelines/{pipeline_name}/stages",
    ):
        assert path in document["paths"], path
    assert "/health" in document["paths"]


def test_each_service_role_sees_only_its_own_schema(stack: Stack, roles: Roles) -> None:
    async def refused(role_of: str, schema: str) -> None:
        conn = await asyncpg.connect(roles.urls[role_of], timeout=10)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 LIMIT 1", schema
            )
            assert tables, f"the {schema} schema has tables (its service migrated it)"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f'SELECT 1 FROM "{schema}"."{tables[0]["tablename"]}" LIMIT 1')
        finally:
            await conn.close()

    asyncio.run(refused(topology.METADATA, topology.ARTIFACTS))
    asyncio.run(refused(topology.ARTIFACTS, topology.METADATA))
