"""What the artifact service's route tests share: the captured push, its artifacts' uris
rewritten to the md5s of bytes the tests hold, and the two services run in-process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_artifacts.app import create_service
from cmf_artifacts.settings import ArtifactSettings
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings
from cmf_testing.fixtures import cmf_fixture

PIPELINE = "Test-env"


@dataclass(frozen=True)
class Recorded:
    """An artifact of the test pipeline: its recorded name, type, uri and bytes."""

    name: str
    type: str
    uri: str
    content: bytes


def pipeline_with_bytes() -> tuple[dict[str, Any], dict[str, Recorded]]:
    """The captured push payload, each artifact's uri (and the names carrying it) the md5 of
    bytes made up for it; and those artifacts by type-and-path (``"Model"``, ``"Dataset
    artifacts/data.xml"``…)."""
    decoded = cmf_fixture("push_example_decoded.json")
    text = json.dumps(decoded)
    contents: dict[str, bytes] = {}
    for artifact in _artifacts(decoded):
        uri = artifact["uri"]
        if artifact["type"] == "Metrics" or uri in contents:
            continue
        contents[uri] = f"the bytes of {artifact['name']}\n".encode() * 100
    for uri, content in contents.items():
        text = text.replace(uri, hashlib.md5(content).hexdigest())
    payload: dict[str, Any] = json.loads(text)
    recorded: dict[str, Recorded] = {}
    for artifact in _artifacts(payload):
        old = next(
            (u for u, c in contents.items() if hashlib.md5(c).hexdigest() == artifact["uri"]), None
        )
        content = contents[old] if old is not None else b""
        key = f"{artifact['type']} {artifact['name'].split(':', 1)[0]}"
        recorded[key] = Recorded(artifact["name"], artifact["type"], artifact["uri"], content)
    return payload, recorded


def _artifacts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        event["artifact"]
        for pipeline in payload["Pipeline"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
        for event in execution["events"]
    ]


def push_body(payload: dict[str, Any], pipeline: str = PIPELINE) -> dict[str, Any]:
    return {"exec_uuid": None, "pipeline_name": pipeline, "json_payload": json.dumps(payload)}


@dataclass(frozen=True)
class Running:
    metadata: httpx.AsyncClient
    artifacts: httpx.AsyncClient


def artifact_settings(database_url: str, root: Path, **overrides: Any) -> ArtifactSettings:
    return ArtifactSettings(database_url=SecretStr(database_url), artifacts_dir=root, **overrides)


class Later:
    """An ASGI app given its app after it is handed out (the two apps ask each other)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@asynccontextmanager
async def running(settings: ArtifactSettings) -> AsyncIterator[Running]:
    """The metadata and artifact services on ``settings``' database, in-process, the artifact
    service resolving artifacts through the metadata app (as the embedded server wires them)."""
    assert settings.database_url is not None
    later = Later()
    async with AsyncExitStack() as stack:
        artifacts_client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=later), base_url="http://artifacts")
        )
        metadata = create_metadata(
            MetadataSettings(
                database_url=settings.database_url,
                files_dir=settings.artifacts_dir / "f",
                principal_secret=settings.principal_secret,
            ),
            artifacts=artifacts_client,
        )
        metadata_client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=metadata.app), base_url="http://metadata"
            )
        )
        artifacts = create_service(settings, metadata=metadata_client)
        later.app = artifacts.app
        await stack.enter_async_context(metadata.started())
        await stack.enter_async_context(artifacts.started())
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=artifacts.app), base_url="http://artifacts"
            )
        )
        yield Running(metadata_client, client)
