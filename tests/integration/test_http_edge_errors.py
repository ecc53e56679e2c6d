"""A 500 over a real socket leaves the keep-alive connection usable (issue 12 item 4), with the
HTTP server every ``cmf-server`` process runs (cmf_server.serving) and the shared app frame.

A real server has no route that fails on purpose, so this app is the frame with one that does,
served in a thread of the test.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from raw_http import Connection
from support import free_port

from cmf_common.dialects import ProblemRoute
from cmf_common.service import service_app
from cmf_common.settings import ServiceSettings
from cmf_server.serving import edge_protocol
from cmf_testing.waiting import eventually


def _failing_app(settings: ServiceSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = service_app(settings=settings, title="t", lifespan=lifespan, checks=lambda _: {})
    router = APIRouter(route_class=ProblemRoute)

    @router.post("/api/native/v1/fails")
    async def fails() -> JSONResponse:
        raise RuntimeError("a bug")

    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    settings = ServiceSettings(log_level="CRITICAL")
    chosen = free_port()
    config = uvicorn.Config(
        _failing_app(settings),
        host="127.0.0.1",
        port=chosen,
        http=edge_protocol(settings),
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: _assert(server.started), timeout=10)
    try:
        yield chosen
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _assert(condition: bool) -> None:
    assert condition


def test_after_a_500_the_same_connection_answers_the_next_request(port: int) -> None:
    with Connection(port) as conn:
        for _ in range(3):
            failed = conn.request("POST", "/api/native/v1/fails", b"{}")
            assert failed.status == 500
            assert failed.headers["content-type"] == "application/problem+json"
            assert not failed.closes
        assert conn.request("GET", "/livez").status == 200
