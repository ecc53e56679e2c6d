"""Distributed mode's artifact events over the real Kafka: ``cmf-server up`` with Kafka (so
nothing is delivered in-process) stores a blob, ``cmf-server worker artifacts-relay`` publishes
its ``cmf.artifacts.blob.stored.v1`` from the artifact service's outbox, and ``cmf-server
worker lineage`` (consuming the metadata topic and the artifact topic in one group) marks the
artifact stored in its PostgreSQL graph, beside the pushed pipeline the metadata relay carries.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import (
    KAFKA_BOOTSTRAP,
    ServerProcess,
    drop_database,
    free_port,
    new_database,
    new_topic,
    start_server,
    start_worker,
)

from cmf_testing.databases import run_blocking
from cmf_testing.generator import push_body
from cmf_testing.waiting import eventually


def _query(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return run_blocking(run())


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, str]]:
    """The server, its database (metadata and artifact schemas) and the lineage database."""
    events, blobs = new_topic(partitions=2), new_topic(partitions=2)
    server_db, lineage_db = new_database(), new_database()
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        "EVENTS_TOPIC": events,
        "ARTIFACT_EVENTS_TOPIC": blobs,
    }
    started: list[ServerProcess] = []
    try:
        server = start_server(tmp_path, free_port(), {**common, "DATABASE_URL": server_db})
        started.append(server)
        for name, env in (
            ("relay", {"METADATA_DATABASE_URL": server_db}),
            ("artifacts-relay", {"ARTIFACTS_DATABASE_URL": server_db}),
            (
                "lineage",
                {
                    "LINEAGE_DATABASE_URL": lineage_db,
                    "LINEAGE_CONSUMER_GROUP": f"blobs-{uuid.uuid4().hex[:8]}",
                },
            ),
        ):
            folder = tmp_path / name
            folder.mkdir()
            started.append(start_worker(name, folder, {**common, **env}))
        yield server, server_db, lineage_db
    finally:
        for process in reversed(started):
            process.stop()
        drop_database(server_db)
        drop_database(lineage_db)


def test_a_stored_blob_reaches_the_lineage_graph_through_kafka(
    stack: tuple[ServerProcess, str, str],
) -> None:
    server, server_db, lineage_db = stack
    body = b"the bytes of an artifact\n" * 1000
    digest = hashlib.md5(body).hexdigest()
    pushed = httpx.post(
        f"{server.base_url}/api/mlmd_push", json=push_body("Blob-Kafka", 3), timeout=60
    )
    assert pushed.json() == {"status": "success"}, pushed.text
    stored = httpx.put(f"{server.base_url}/api/native/v1/blobs/{digest}", content=body, timeout=30)
    assert stored.status_code == 201, stored.text

    def marked() -> None:
        rows = _query(lineage_db, "SELECT digest, size, sha256 FROM lineage.blobs")
        assert [(r["digest"], r["size"], r["sha256"]) for r in rows] == [
            (digest, len(body), hashlib.sha256(body).hexdigest())
        ]
        executions = _query(lineage_db, "SELECT count(*) AS n FROM lineage.executions")
        assert executions[0]["n"] == 3

    eventually(marked, timeout=60, interval=0.5)
    # The artifact outbox row was published (not delivered in-process: Kafka is configured),
    # and the blob event made no per-digest progress row, only the consumer's count.
    published = _query(
        server_db,
        "SELECT count(*) AS n FROM artifacts.outbox o"
        " JOIN artifacts.outbox_published p ON p.subject = o.subject AND o.seq <= p.published_seq",
    )
    assert published[0]["n"] == 1
    progress = _query(lineage_db, "SELECT subject FROM lineage.consumer_progress")
    assert {r["subject"] for r in progress} == {"Blob-Kafka"}
    counted = _query(lineage_db, "SELECT applied FROM lineage.blob_progress")
    assert [r["applied"] for r in counted] == [1]
