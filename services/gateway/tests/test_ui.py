"""The web UI's static files under /ui/: the redirect from /, the single-page fallback, the cache
headers by kind of file, and the page that says how to build a missing bundle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cmf_gateway.app import create_gateway
from cmf_gateway.settings import GatewaySettings

INDEX = "<!doctype html><title>CMF Server</title><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    return root


async def client_of(ui_dir: Path) -> httpx.AsyncClient:
    gateway = create_gateway(GatewaySettings(ui_dir=ui_dir), {})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://ui")


@pytest.fixture
async def client(dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_of(dist) as client:
        yield client


async def test_root_redirects_to_the_ui(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 302 and answer.headers["location"] == "/ui/"


async def test_index_is_revalidated_every_time(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/")
    assert answer.status_code == 200 and answer.text == INDEX
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["content-type"].startswith("text/html")


async def test_hashed_assets_are_cached_for_a_year(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/assets/index-abc123.js")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_any_view_inside_the_ui_answers_the_app(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/p/My%20Pipeline/executions?stage=x")
    assert answer.status_code == 200 and answer.text == INDEX


async def test_a_missing_asset_is_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/assets/gone.js")
    assert answer.status_code == 404


async def test_the_favicon_is_served(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/favicon.svg")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg")


async def test_a_path_out_of_the_bundle_answers_the_app_not_the_file(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/ui/%2e%2e/secret.txt")
    assert "outside" not in answer.text


async def test_without_a_bundle_the_ui_says_how_to_build_it(tmp_path: Path) -> None:
    async with await client_of(tmp_path / "nothing") as client:
        answer = await client.get("/ui/")
    assert answer.status_code == 503 and "make ui" in answer.text
