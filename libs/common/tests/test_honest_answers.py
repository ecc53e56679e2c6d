"""What the shared frame tells a user: no server internals (issue 12 item 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from cmf_common.health import run_check
from cmf_common.service import service_app
from cmf_common.settings import ServiceSettings


async def test_a_failed_check_says_what_failed_without_the_exception_class() -> None:
    async def refused() -> None:
        raise ConnectionRefusedError("the database is not answering")

    result = await run_check(refused, 1.0)
    assert result.status == "down"
    assert result.detail == "the database is not answering"


async def test_a_failed_check_without_a_message_still_says_it_failed() -> None:
    async def silent() -> None:
        raise KeyError

    result = await run_check(silent, 1.0)
    assert result.detail is not None
    assert "KeyError" not in result.detail


def _app(*, api_docs: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    return service_app(
        settings=ServiceSettings(api_docs=api_docs),
        title="t",
        lifespan=lifespan,
        checks=lambda _: {},
    )


async def _get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_cdn_backed_docs_pages_are_off_by_default(path: str) -> None:
    assert (await _get(_app(), path)).status_code == 404
    assert (await _get(_app(), "/openapi.json")).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_true_serves_the_docs_pages(path: str) -> None:
    assert (await _get(_app(api_docs=True), path)).status_code == 200
