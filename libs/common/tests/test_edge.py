"""The edge middleware of every app (cmf_common.edge): cross-origin writes, the Host check, the
body-read deadline and the 500 that leaves the connection usable, in each dialect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from cmf_common.dialects import ProblemRoute, ReferenceRoute
from cmf_common.envelope import EnvelopeRoute
from cmf_common.errors import PROBLEM_JSON
from cmf_common.service import service_app
from cmf_common.settings import ServiceSettings

HOST = "cmf.test:8080"
FOREIGN = "http://evil.example"


@dataclass
class Ran:
    """Which routes ran."""

    paths: list[str] = field(default_factory=list)
    hanging: asyncio.Event = field(default_factory=asyncio.Event)  # a request waits for ever


def _app(ran: Ran, **settings: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = service_app(
        settings=ServiceSettings(**settings), title="t", lifespan=lifespan, checks=lambda _: {}
    )
    for prefix, route_class in (
        ("/cmf", ReferenceRoute),
        ("/api/native/v1", ProblemRoute),
        ("/v1", EnvelopeRoute),
        ("/api/v1", EnvelopeRoute),
    ):
        router = APIRouter(route_class=route_class)

        @router.api_route("/things", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def things(request: Request) -> JSONResponse:
            ran.paths.append(request.url.path)
            return JSONResponse({"bytes": len(await request.body())})

        @router.get("/fails")
        async def fails() -> JSONResponse:
            raise RuntimeError("a bug")

        @router.get("/hangs")
        async def hangs() -> JSONResponse:
            ran.hanging.set()
            await asyncio.Event().wait()
            raise AssertionError("never")

        app.include_router(router, prefix=prefix)
    return app


@dataclass
class Exchange:
    status: int
    headers: dict[str, str]
    body: bytes
    receives: int  # how often the app asked for the request body

    def json(self) -> Any:
        return json.loads(self.body)


async def _call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"{}",
    receive: Callable[[], Any] | None = None,
) -> Exchange:
    """One request straight through the ASGI interface, counting the app's ``receive`` calls;
    the app must return normally (an exception would reach the server)."""
    scope = _scope(method, path, headers, body)
    receives = 0
    sent: list[dict[str, Any]] = []

    async def default_receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def counting_receive() -> Any:
        nonlocal receives
        receives += 1
        return await (receive or default_receive)()

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, counting_receive, send)
    return _exchange(sent, receives)


def _scope(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> dict[str, Any]:
    raw = {"host": HOST, "content-length": str(len(body)), **(headers or {})}
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in raw.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("cmf.test", 8080),
    }


def _exchange(sent: list[dict[str, Any]], receives: int) -> Exchange:
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert not sent[-1].get("more_body", False), "the response is not complete"
    return Exchange(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        content,
        receives,
    )


def _in_dialect(prefix: str, answer: Exchange, status: int) -> None:
    assert answer.status == status
    body = answer.json()
    if prefix == "/api/native/v1":
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert body["status"] == status and body["code"]
    elif prefix in ("/v1", "/api/v1"):
        assert body["status"] == "error" and body["code"] == status
        assert set(body) >= {"data", "message", "errors", "meta"}
    else:
        assert set(body) == {"detail"}


PREFIXES = ["/cmf", "/api/native/v1", "/v1", "/api/v1"]
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("method", WRITES)
async def test_a_write_from_a_foreign_origin_is_refused_before_its_body_is_read(
    prefix: str, method: str
) -> None:
    ran = Ran()
    answer = await _call(_app(ran), method, f"{prefix}/things", {"origin": FOREIGN})
    _in_dialect(prefix, answer, 403)
    assert answer.receives == 0
    assert ran.paths == []
    assert answer.headers["connection"] == "close"  # its body is left unread


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_write_a_browser_marks_cross_site_without_origin_is_refused(prefix: str) -> None:
    ran = Ran()
    answer = await _call(_app(ran), "POST", f"{prefix}/things", {"sec-fetch-site": "cross-site"})
    _in_dialect(prefix, answer, 403)
    assert ran.paths == []


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_write_without_origin_is_a_non_browser_client_and_passes(prefix: str) -> None:
    ran = Ran()
    answer = await _call(_app(ran), "POST", f"{prefix}/things", body=b"abc")
    assert (answer.status, answer.json()) == (200, {"bytes": 3})


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": f"http://{HOST}"},  # the page the server itself served
        {"origin": "https://cmf.test"},  # behind a proxy that ends TLS, Host without a port
        {"origin": "https://ui.example", "sec-fetch-site": "same-origin"},  # the browser says so
        {"origin": f"http://{HOST}", "sec-fetch-site": "none"},  # typed in the address bar
    ],
)
async def test_a_same_origin_write_passes(headers: dict[str, str]) -> None:
    ran = Ran()
    raw_host = "cmf.test" if headers["origin"] == "https://cmf.test" else HOST
    answer = await _call(_app(ran), "POST", "/cmf/things", {"host": raw_host, **headers})
    assert answer.status == 200
    assert ran.paths == ["/cmf/things"]


async def test_an_origin_of_the_same_host_on_another_port_is_foreign() -> None:
    answer = await _call(_app(Ran()), "POST", "/cmf/things", {"origin": "http://cmf.test:9999"})
    assert answer.status == 403


async def test_a_null_origin_is_foreign() -> None:
    answer = await _call(_app(Ran()), "POST", "/cmf/things", {"origin": "null"})
    assert answer.status == 403


@pytest.mark.parametrize("allowed", ["http://evil.example", " http://evil.example/ ,x", "*"])
async def test_an_origin_in_cors_origins_may_write(allowed: str) -> None:
    app = _app(Ran(), cors_origins=allowed)
    assert (await _call(app, "POST", "/cmf/things", {"origin": FOREIGN})).status == 200


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_read_from_a_foreign_origin_passes(prefix: str) -> None:
    answer = await _call(_app(Ran()), "GET", f"{prefix}/things", {"origin": FOREIGN}, b"")
    assert answer.status == 200


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_host_not_allowed_is_misdirected_421(prefix: str) -> None:
    ran = Ran()
    app = _app(ran, allowed_hosts="cmf.test")
    answer = await _call(app, "GET", f"{prefix}/things", {"host": "rebound.example:8080"}, b"")
    _in_dialect(prefix, answer, 421)
    assert ran.paths == []


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_missing_host_is_400_when_hosts_are_checked(prefix: str) -> None:
    app = _app(Ran(), allowed_hosts="cmf.test")
    answer = await _call(app, "GET", f"{prefix}/things", {"host": "bad host/"}, b"")
    _in_dialect(prefix, answer, 400)


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("cmf.test", "CMF.test:8080"),
        (".example.org", "example.org"),
        (".example.org", "a.b.example.org:443"),
        ("::1", "[::1]:8080"),
        ("*", "anything"),
    ],
)
async def test_allowed_hosts_match_by_name(allowed: str, host: str) -> None:
    app = _app(Ran(), allowed_hosts=allowed)
    assert (await _call(app, "GET", "/cmf/things", {"host": host}, b"")).status == 200


async def test_without_allowed_hosts_any_host_passes() -> None:
    answer = await _call(_app(Ran()), "GET", "/cmf/things", {"host": "anything:1"}, b"")
    assert answer.status == 200


# The 500 that leaves the connection usable (issue 12 item 4; over a socket:
# tests/integration/test_http_edge_errors.py)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_an_unexpected_error_is_a_complete_500_in_the_dialect_and_raises_nothing(
    prefix: str,
) -> None:
    answer = await _call(_app(Ran()), "GET", f"{prefix}/fails", body=b"")
    if prefix == "/cmf":  # the reference server's 500 has no body of its own: problem+json
        assert (answer.status, answer.json()["code"]) == (500, "internal")
    else:
        _in_dialect(prefix, answer, 500)
    assert "connection" not in answer.headers  # keep-alive: the response is whole


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_request_cut_off_by_the_servers_stop_is_a_503_to_retry_not_a_500(
    prefix: str,
) -> None:
    """uvicorn cancels a request that outlives its graceful shutdown (a big push, say) and
    answered it 500; the client is told the truth: 503, try again, and the connection ends."""
    ran = Ran()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    task = asyncio.create_task(_app(ran)(_scope("GET", f"{prefix}/hangs"), receive, send))
    await asyncio.wait_for(ran.hanging.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answer = _exchange(sent, 0)
    _in_dialect(prefix, answer, 503)
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["connection"] == "close"


# The body-read deadline (over a socket: tests/integration/test_http_edge.py)


def _trickle(pieces: int, every_s: float, size: int = 1) -> Callable[[], Any]:
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        await asyncio.sleep(every_s)
        sent += 1
        return {"type": "http.request", "body": b"x" * size, "more_body": sent < pieces}

    return receive


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_body_slower_than_the_minimum_rate_gets_408_in_the_dialect(prefix: str) -> None:
    ran = Ran()
    app = _app(ran, http_body_timeout_s=0.3, http_body_min_rate=1000)
    answer = await _call(
        app, "POST", f"{prefix}/things", body=b"x" * 100, receive=_trickle(100, 0.05)
    )
    _in_dialect(prefix, answer, 408)
    assert answer.headers["connection"] == "close"


async def test_a_body_at_the_minimum_rate_is_read_whole() -> None:
    app = _app(Ran(), http_body_timeout_s=0.2, http_body_min_rate=1000)
    # 10 pieces of 200 bytes 50 ms apart: 0.5 s in all, past the 0.2 s, at 4,000 bytes/s.
    answer = await _call(
        app, "POST", "/cmf/things", body=b"x" * 2000, receive=_trickle(10, 0.05, 200)
    )
    assert (answer.status, answer.json()) == (200, {"bytes": 2000})
