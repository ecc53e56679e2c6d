"""The gateway's HTTP transport (distributed mode), on loopback sockets: the gateway served as
``cmf-server serve gateway`` serves it, in front of a stand-in service that records what
reaches it. What passes through (method, raw path, query, bodies both ways, the forwarding
headers, request ids, trace context) and what does not (hop-by-hop headers, non-canonical and
unmatched paths); each failure of the service in the route's dialect (503 refused, 504 slow,
502 malformed); an answer cut midway ends the connection before its end."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from gateway_apps import counted, every_app
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.errors import PROBLEM_JSON
from cmf_gateway.distributed import create_distributed_gateway
from cmf_gateway.settings import GatewaySettings
from cmf_server.serving import edge_protocol
from cmf_testing.network import free_port

MD5 = "0123456789abcdef0123456789abcdef"
BLOB = f"/api/native/v1/blobs/{MD5}"
PIPELINES = "/api/native/v1/pipelines"
MiB = 1 << 20


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    """The services' apps, built and never started: the gateway's table."""
    return every_app()


@dataclass
class Seen:
    method: str
    raw_path: bytes
    query: dict[str, list[str]]
    headers: list[tuple[bytes, bytes]]
    client: tuple[str, int] | None = None  # the gateway's end of the connection
    received: int = 0
    complete: bool = False  # its whole body arrived
    ended: bool = False  # the service is done with it

    def header(self, name: str) -> list[str]:
        return [v.decode() for k, v in self.headers if k == name.encode()]


@dataclass
class StandIn:
    """A service that records each request and answers as its ``behave`` query asks: ``echo``
    (what it saw, as JSON), ``slow`` (after ``s`` seconds), ``big`` (``n`` bytes), ``refuse``
    (413 before reading any of the body, as a service's own body limit does)."""

    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            for reply in ("lifespan.startup.complete", "lifespan.shutdown.complete"):
                await receive()
                await send({"type": reply})
            return
        query = parse_qs(scope["query_string"].decode())
        client = tuple(scope["client"]) if scope.get("client") else None
        seen = Seen(scope["method"], scope["raw_path"], query, list(scope["headers"]), client)
        self.seen.append(seen)
        try:
            await self.answer(seen, query, receive, send)
        finally:
            seen.ended = True

    async def answer(
        self, seen: Seen, query: dict[str, list[str]], receive: Receive, send: Send
    ) -> None:
        behave = query.get("behave", ["echo"])[0]
        if behave == "refuse":
            body = b'{"detail":"too large"}'
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            seen.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                seen.complete = True
                break
        if behave == "slow":
            await asyncio.sleep(float(query["s"][0]))
        if behave == "big":
            size, chunk = int(query["n"][0]), b"x" * (256 * 1024)
            headers = [(b"content-length", str(size).encode()), (b"x-stand-in", b"big")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            while size > 0:
                part = chunk[: min(size, len(chunk))]
                size -= len(part)
                await send({"type": "http.response.body", "body": part, "more_body": size > 0})
            return
        body = json.dumps({"received": seen.received}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"x-stand-in", b"yes"),
            (b"x-request-id", b"the-service-s-own"),
            (b"keep-alive", b"timeout=5"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(app: ASGIApp, port: int, **config: Any) -> AsyncIterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, **config
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the server did not start"
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@dataclass
class Stack:
    url: str
    port: int
    stand_in: StandIn


Make = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def stack(apps: dict[str, FastAPI]) -> AsyncIterator[Make]:
    """Makes a gateway whose services all are one stand-in (or ``upstream_url``)."""
    async with AsyncExitStack() as stacks:

        async def make(upstream_url: str | None = None, **settings: Any) -> Stack:
            stand_in = StandIn()
            if upstream_url is None:
                upstream_port = free_port()
                await stacks.enter_async_context(serving(stand_in, upstream_port, lifespan="on"))
                upstream_url = f"http://127.0.0.1:{upstream_port}"
            gateway_settings = GatewaySettings(
                metadata_url=upstream_url,
                lineage_url=upstream_url,
                artifacts_url=upstream_url,
                **{"auth": "off-i-know", **settings},  # the proxy, not access
            )
            gateway = create_distributed_gateway(gateway_settings, apps)
            port = free_port()
            protocol = edge_protocol(gateway_settings, gateway.table.dialect_of)
            await stacks.enter_async_context(serving(gateway, port, http=protocol, lifespan="on"))
            return Stack(f"http://127.0.0.1:{port}", port, stand_in)

        yield make


async def raw(port: int, head: bytes) -> tuple[int, dict[str, str]]:
    """One request written as bytes (its path exactly as given); its answer's status and
    headers (the answer carries a ``Content-Length``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    finally:
        writer.close()
    lines = answer.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers


def get(path: str, port: int, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


async def test_a_request_and_its_answer_pass_through(stack: Make) -> None:
    s = await stack()
    async with httpx.AsyncClient(base_url=s.url) as client:
        answer = await client.get(
            f"{PIPELINES}?limit=5&name=a%2Fb",
            headers={
                "Connection": "keep-alive, x-private",
                "X-Private": "hop",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "Origin": "http://127.0.0.1",
                "X-Request-ID": "req-42",
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-stand-in"] == "yes"
    assert answer.headers.get_list("x-request-id") == ["req-42"]
    assert "keep-alive" not in answer.headers
    # The gateway's HTTP server dates and names every answer; the service's are not repeated.
    assert len(answer.headers.get_list("date")) == 1
    assert answer.headers.get_list("server") == ["uvicorn"]
    (seen,) = s.stand_in.seen
    assert (seen.method, seen.raw_path) == ("GET", PIPELINES.encode())
    assert seen.query == {"limit": ["5"], "name": ["a/b"]}
    assert seen.header("x-request-id") == ["req-42"]
    (traceparent,) = seen.header("traceparent")
    assert traceparent[3:35] == "0af7651916cd43dd8448eb211c80319c"  # the client's trace
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]
    assert seen.header("x-forwarded-host") == [f"127.0.0.1:{s.port}"]
    assert seen.header("host") == [f"127.0.0.1:{s.port}"]
    assert seen.header("x-private") == [] and seen.header("origin") == []


async def test_a_request_without_an_id_gets_one_the_service_and_the_answer_share(
    stack: Make,
) -> None:
    s = await stack()
    async with httpx.AsyncClient(base_url=s.url) as client:
        answer = await client.get(PIPELINES)
    (seen,) = s.stand_in.seen
    assert len(seen.header("x-request-id")) == 1
    assert answer.headers.get_list("x-request-id") == seen.header("x-request-id")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_bodies_stream_both_ways(stack: Make, chunked: bool) -> None:
    s = await stack()
    size = 24 * MiB

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield b"y" * MiB

    headers = {} if chunked else {"Content-Length": str(size)}
    async with httpx.AsyncClient(base_url=s.url, timeout=30) as client:
        sent = await client.put(BLOB, content=body(), headers=headers)
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"received": size}
        got = 0
        async with client.stream("GET", f"{BLOB}?behave=big&n={size}") as answer:
            assert answer.headers["content-length"] == str(size)
            async for chunk in answer.aiter_raw():
                got += len(chunk)
    assert got == size
    assert s.stand_in.seen[0].complete


DIALECTS = [
    (PIPELINES, "problem"),  # our own API: problem+json
    ("/api/pipelines", "cmf"),  # the reference's {"detail"}
    ("/v1/pipelines/p/stages", "envelope"),  # upstream's v1 envelope
]


def assert_dialect(answer: httpx.Response, dialect: str, status: int) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    if dialect == "problem":
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert body["status"] == status
    elif dialect == "cmf":
        assert set(body) == {"detail"}
    else:
        assert body["status"] == "error" and body["code"] == status


@pytest.mark.parametrize(("path", "dialect"), DIALECTS)
async def test_a_service_that_refuses_connections_is_503_with_retry_after(
    stack: Make, path: str, dialect: str
) -> None:
    s = await stack(upstream_url=f"http://127.0.0.1:{free_port()}")
    async with httpx.AsyncClient(base_url=s.url) as client:
        answer = await client.get(path)
    assert_dialect(answer, dialect, 503)
    assert answer.headers["retry-after"] == "1"


@pytest.mark.parametrize(("path", "dialect"), DIALECTS)
async def test_a_slow_service_is_504(stack: Make, path: str, dialect: str) -> None:
    s = await stack(gateway_timeout_s=0.3)
    async with httpx.AsyncClient(base_url=s.url) as client:
        answer = await client.get(path, params={"behave": "slow", "s": "1"})
    assert_dialect(answer, dialect, 504)


async def test_a_transfer_route_has_the_long_timeout(stack: Make) -> None:
    s = await stack(gateway_timeout_s=0.2, gateway_transfer_timeout_s=10)
    async with httpx.AsyncClient(base_url=s.url) as client:
        pull = await client.get(
            "/api/artifact_pull", params={"behave": "slow", "s": "0.6", "pipeline_name": "p"}
        )
        read = await client.get(PIPELINES, params={"behave": "slow", "s": "0.6"})
    assert pull.status_code == 200, pull.text
    assert read.status_code == 504


@asynccontextmanager
async def raw_service(answer: bytes) -> AsyncIterator[str]:
    """A TCP server that reads a request head and writes ``answer``, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@pytest.mark.parametrize(("path", "dialect"), DIALECTS)
async def test_a_malformed_answer_is_502(stack: Make, path: str, dialect: str) -> None:
    async with raw_service(b"this is no HTTP\r\n\r\n") as url:
        s = await stack(upstream_url=url)
        async with httpx.AsyncClient(base_url=s.url) as client:
            answer = await client.get(path)
    assert_dialect(answer, dialect, 502)


async def test_an_answer_cut_midway_ends_the_connection_before_its_end(stack: Make) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
    async with raw_service(head + b"z" * 1000) as url:
        s = await stack(upstream_url=url)
        async with httpx.AsyncClient(base_url=s.url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(BLOB)


TRICKY = [
    "/api/native/v1/../native/v1/pipelines",
    "/api/native/v1/%2e%2e/v1/pipelines",
    "/api/native/v1/%2E%2E/v1/pipelines",
    "/api/native/v1/./pipelines",
    "//api/native/v1/pipelines",
    "/api/native/v1//pipelines",
    f"/api/native/v1/blobs/{MD5}%2F..",
    f"/api/native/v1/blobs/a%2fb{MD5}",
    "/api/native/v1/blobs/a%5Cb",
    "/api/native/v1/no-such-route",
]


async def test_paths_no_route_matches_canonically_never_reach_a_service(stack: Make) -> None:
    s = await stack()
    for path in TRICKY:
        status, headers = await raw(s.port, get(path, s.port))
        assert status in (400, 404), (path, status)
        assert headers["content-type"] == PROBLEM_JSON, path
    assert s.stand_in.seen == []


async def test_a_client_gone_mid_upload_leaves_the_service_an_incomplete_body(
    stack: Make,
) -> None:
    s = await stack()
    head = (
        f"PUT {BLOB} HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nContent-Length: {10 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", s.port)) as sock:
        sock.sendall(head + b"q" * MiB)
        await until(lambda: bool(s.stand_in.seen) and s.stand_in.seen[0].received > 0)
    await until(lambda: s.stand_in.seen[0].ended)
    (seen,) = s.stand_in.seen
    assert not seen.complete
    assert seen.received < 10 * MiB


async def until(condition: Callable[[], bool]) -> None:
    """Wait (10 s at most) until ``condition()`` holds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the deadline")


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    assert headers["transfer-encoding"] == "chunked"
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")
    return body


def _expecting(port: int, path: str, size: int) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {size}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()


async def test_expect_100_continue_waits_for_the_service_then_the_body_streams(
    stack: Make,
) -> None:
    s = await stack()
    size = 3 * MiB
    reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
    try:
        writer.write(_expecting(s.port, BLOB, size))
        await writer.drain()
        status, _ = await _head(reader)
        assert status == 100
        (seen,) = s.stand_in.seen
        assert seen.header("expect") == ["100-continue"] and seen.received == 0
        writer.write(b"z" * size)
        await writer.drain()
        status, headers = await _head(reader)
        body = await _body(reader, headers)
    finally:
        writer.close()
    assert status == 200 and json.loads(body) == {"received": size}


async def test_expect_100_continue_gets_the_services_refusal_before_any_body(
    stack: Make,
) -> None:
    s = await stack()
    reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
    try:
        writer.write(_expecting(s.port, f"{BLOB}?behave=refuse", 64 * MiB))
        await writer.drain()
        status, headers = await _head(reader)  # no 100 Continue first
        body = await _body(reader, headers)
    finally:
        writer.close()
    assert status == 413 and json.loads(body) == {"detail": "too large"}
    assert headers["connection"] == "close"  # the body it announced is not read
    (seen,) = s.stand_in.seen
    assert seen.received == 0 and not seen.complete


async def test_requests_reuse_one_kept_alive_connection_to_the_service(stack: Make) -> None:
    s = await stack()
    async with httpx.AsyncClient(base_url=s.url) as client:
        for _ in range(3):
            assert (await client.get(PIPELINES)).status_code == 200
        head = await client.head(PIPELINES)
    assert head.status_code == 200 and head.content == b""
    clients = {seen.client for seen in s.stand_in.seen[:3]}
    assert len(clients) == 1 and None not in clients


async def test_a_chunked_body_past_the_gateways_limit_is_a_413(stack: Make) -> None:
    s = await stack(max_query_body_bytes=64 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield b" " * 16 * 1024

    async with httpx.AsyncClient(base_url=s.url, timeout=30) as client:
        answer = await client.post("/api/mlmd_pull", content=body())
    assert answer.status_code == 413, answer.text
    assert set(answer.json()) == {"detail"}  # the reference's dialect
    assert not s.stand_in.seen[0].complete


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (f"{PIPELINES}?limit=2", PIPELINES),
        (BLOB, "/api/native/v1/blobs/{digest}"),
        ("/api/mlmd_pull/p", "/api/mlmd_pull/{pipeline_name}"),
        ("/v1/pipelines/p/stages", "/v1/pipelines/{pipeline_name}/stages"),
    ],
)
async def test_a_forwarded_request_is_counted_under_its_route_template(
    stack: Make, path: str, template: str
) -> None:
    s = await stack()
    async with httpx.AsyncClient(base_url=s.url) as client:
        before = (await client.get("/metrics")).text
        assert (await client.get(path)).status_code == 200
        after = (await client.get("/metrics")).text
    labels = {"service": "gateway", "route": template, "method": "GET", "status": "200"}
    assert counted(after, **labels) == counted(before, **labels) + 1
    assert counted(after, route="unmatched") == counted(before, route="unmatched")
    seconds = re.findall(
        rf'cmf_http_request_duration_seconds_count\{{[^\n]*route="{re.escape(template)}"', after
    )
    assert seconds, "its latency is recorded under the same template"
