"""Helpers the lineage tests share (a module, not conftest, so imports are unambiguous)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from neo4j import AsyncDriver, AsyncGraphDatabase

from cmf_common.committed import CommittedSource
from cmf_common.events import Envelope
from cmf_common.service import install_state
from cmf_lineage.api.deps import LineageState
from cmf_lineage.app import create_app
from cmf_lineage.board import VersionBoard
from cmf_lineage.cache import Cache, LruCache
from cmf_lineage.consistency import Consistency
from cmf_lineage.graph import GraphStore
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.projector import Projector
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.versions import GraphVersions
from cmf_testing import neo4j as shared_neo4j

Pusher = Callable[..., Awaitable[list[Envelope]]]

CONSUMER = "cmf-lineage"


@dataclass
class GraphUnderTest:
    """One store of the contract suite, and how to empty it between phases of a test."""

    store: GraphStore
    reset: Callable[[], Awaitable[None]]


@dataclass
class Scene:
    """A store under test, its read side, and the real push that feeds it the fixture payload."""

    graph: GraphUnderTest
    graph_reader: GraphReader
    push: Pusher
    payload: dict[str, Any]


@dataclass
class LineageProcess:
    """What one lineage process holds: its graph versions, its projector and its reader."""

    versions: GraphVersions
    projector: Projector
    reader: LineageReader


def lineage_process(
    scene: Scene,
    board: VersionBoard | None = None,
    cache: Cache | None = None,
    *,
    wait_s: float = 5.0,
    sync_every_s: float = 1.0,
    retry_s: float = 1.0,
    local: CommittedSource | None = None,
    shared: CommittedSource | None = None,
    metadata: CommittedSource | None = None,
) -> LineageProcess:
    """A lineage process over ``scene``'s store, as the service's lifespan wires one: the
    projector posts on ``board`` and the reader waits for what the committed sources say."""
    store = scene.graph.store
    versions = GraphVersions(
        scene.graph_reader, CONSUMER, board, sync_every_s=sync_every_s, retry_s=retry_s
    )
    consistency = Consistency(
        store, versions, CONSUMER, wait_s, local=local, shared=shared, metadata=metadata
    )
    reader = LineageReader(
        scene.graph_reader,
        store,
        cache or LruCache(),
        CONSUMER,
        wait_s=wait_s,
        versions=versions,
        consistency=consistency,
    )
    return LineageProcess(versions, Projector(store, versions=versions), reader)


def as_pipeline(payload: dict[str, Any], name: str) -> dict[str, Any]:
    text = json.dumps(payload).replace('"Test-env', f'"{name}').replace("Test-env:", f"{name}:")
    return dict(json.loads(text))


def executions_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for s in payload["Pipeline"][0]["stages"] for e in s["executions"]]


@asynccontextmanager
async def empty_neo4j() -> AsyncIterator[AsyncDriver]:
    """A driver to the shared Neo4j, its graph emptied before and after; the test fails when
    Neo4j is not reachable."""
    driver = AsyncGraphDatabase.driver(shared_neo4j.claim(), auth=shared_neo4j.NEO4J_AUTH)
    try:
        await driver.verify_connectivity()
    except Exception as exc:
        await driver.close()
        pytest.fail(
            f"Neo4j is not reachable at {shared_neo4j.NEO4J_URI} ({exc}); run `make services-up`"
        )
    await Neo4jGraphStore(driver).delete_everything()
    try:
        yield driver
        await Neo4jGraphStore(driver).delete_everything()
    finally:
        await driver.close()


def lineage_client(reader: LineageReader) -> httpx.AsyncClient:
    """A client of the lineage app, in-process, answering through ``reader``."""
    app = create_app(LineageSettings())
    install_state(app, LineageState(reader=reader))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lineage")


def first_stage(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its pipeline's first stage only."""
    first = dict(payload)
    first["Pipeline"] = [dict(payload["Pipeline"][0], stages=payload["Pipeline"][0]["stages"][:1])]
    return first
