"""Service tests: the metadata app in-process on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from cmf_common.service import Service, install_state, state_of
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import create_service
from cmf_metadata.files import LocalFileStore
from cmf_metadata.settings import MetadataSettings


@pytest.fixture
def service(single_connection_pool: Any, fresh_database_url: str) -> Service[MetadataState]:
    """The metadata service over the test's connection (its lifespan does not run)."""
    settings = MetadataSettings(
        database_url=SecretStr(fresh_database_url), max_body_bytes=2 * 1024**2
    )
    metadata = create_service(settings)
    install_state(metadata.app, MetadataState.on(settings, single_connection_pool))
    return metadata


@pytest.fixture
def app(service: Service[MetadataState]) -> FastAPI:
    return service.app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metadata") as http:
        yield http


@pytest.fixture(scope="session")
def push_body(fixtures_dir: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((fixtures_dir / "push_example.json").read_text())
    return body


@pytest.fixture(scope="session")
def payload(fixtures_dir: Path) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads((fixtures_dir / "push_example_decoded.json").read_text())
    return decoded


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    """The folder of the test's own file store."""
    return tmp_path / "files"


@pytest.fixture
def store(app: FastAPI, files_root: Path) -> LocalFileStore:
    """The app's uploaded files kept in ``files_root`` (use with ``usefixtures("store")``)."""
    local = LocalFileStore(files_root)
    state_of(app, MetadataState).file_store = local
    return local
