"""The projector's handler of the artifact service's ``cmf.artifacts.blob.stored.v1``, on both
graph stores: the artifact whose uri is a stored blob's digest reads as stored, whichever
stream arrives first; applying again, or a redelivery, changes nothing; blob events count into
the graph version, not into the per-pipeline progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from lineage_support import GraphUnderTest, Pusher

from cmf_common.artifact_events import SOURCE, BlobStored
from cmf_common.db import create_pool
from cmf_common.dispatch import PermanentError
from cmf_common.events import Envelope
from cmf_common.migrations import migrate
from cmf_lineage.graph_reader import GraphReader, StoredBlob
from cmf_lineage.projector import Projector
from cmf_lineage.rebuild import rebuild_neo4j, rebuild_postgres
from cmf_lineage.store import MIGRATIONS as LINEAGE_MIGRATIONS
from cmf_lineage.store.memory import MemoryGraphStore
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.store.neo4j_reads import Neo4jGraphReader
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_lineage.store.postgres_reads import PostgresGraphReader

CONSUMER = "cmf-lineage"


def blob_event(digest: str, size: int, sha256: str | None) -> Envelope:
    """The event the artifact service's outbox carries for a stored blob (subject: digest)."""
    return Envelope(
        id=str(uuid.uuid4()),
        type=BlobStored.TYPE,
        source=SOURCE,
        subject=digest,
        time="2026-12-01T00:00:00+00:00",
        seq=1,
        data=BlobStored(digest, size, sha256).to_data(),
    )


def _uris(payload: dict[str, Any]) -> list[str]:
    return sorted(
        {
            ev["artifact"]["uri"]
            for s in payload["Pipeline"][0]["stages"]
            for x in s["executions"]
            for ev in x["events"]
        }
    )


async def test_a_stored_blob_marks_its_artifact_in_either_order(
    graph: GraphUnderTest, graph_reader: GraphReader, push_events: Pusher, payload: dict[str, Any]
) -> None:
    store = graph.store
    metadata = await push_events(payload)
    uris = _uris(payload)
    stored, other = uris[0], uris[1]
    blob = blob_event(stored, 1234, "ab" * 32)
    stray = blob_event("0" * 32 + ".dir", 10, None)  # no artifact's: a directory's file

    # The blob first, then the push.
    await Projector(store).apply([blob, stray])
    await Projector(store).apply(metadata)
    first = await graph_reader.stored_blobs([*uris, stray.subject])
    assert first == {
        stored: StoredBlob(1234, "ab" * 32),
        stray.subject: StoredBlob(10, None),
    }
    graph_first = await store.snapshot()

    # The push first, then the blob: the same graph and the same marks.
    await graph.reset()
    await Projector(store).apply(metadata)
    assert await graph_reader.stored_blobs(uris) == {}
    await Projector(store).apply([blob, stray])
    assert await graph_reader.stored_blobs([*uris, stray.subject]) == first
    assert (await store.snapshot()).differences(graph_first) == []
    assert other not in await graph_reader.stored_blobs([other])


async def test_blob_events_are_idempotent_and_keep_a_known_sha256(
    graph: GraphUnderTest, graph_reader: GraphReader
) -> None:
    store = graph.store
    digest = "1" * 32
    uploaded = blob_event(digest, 5, "cd" * 32)
    assert await store.apply(CONSUMER, [uploaded]) is not None
    assert await store.apply(CONSUMER, [uploaded]) is None  # a redelivery: skipped
    # Another event for the digest (the service catalogued it again, found in its store): the
    # sha256 learnt from the upload stays; two of one digest in one batch make one blob.
    found = blob_event(digest, 5, None)
    batch = await store.apply(CONSUMER, [found, blob_event(digest, 5, None)])
    assert batch is not None and len(batch.blobs) == 1
    assert await graph_reader.stored_blobs([digest]) == {digest: StoredBlob(5, "cd" * 32)}


async def test_blob_events_raise_the_graph_version_but_record_no_pipeline_progress(
    graph: GraphUnderTest, graph_reader: GraphReader, push_events: Pusher, payload: dict[str, Any]
) -> None:
    store = graph.store
    metadata = await push_events(payload)
    await Projector(store).apply(metadata)
    before = await graph_reader.graph_version(CONSUMER)
    assert before == metadata[-1].seq
    blobs = [blob_event(f"{i:032x}", i, None) for i in range(3)]
    await Projector(store).apply(blobs)
    assert await graph_reader.graph_version(CONSUMER) == before + 3
    for blob in blobs:
        assert await store.applied_seq(CONSUMER, blob.subject) == 0
    assert await store.applied_seq(CONSUMER, "Test-env") == metadata[-1].seq


async def test_a_malformed_blob_event_is_refused_as_permanent(graph: GraphUnderTest) -> None:
    bad = blob_event("2" * 32, 1, None)
    bad = Envelope(**{**bad.__dict__, "data": {"digest": "2" * 32}})
    with pytest.raises(PermanentError):
        await graph.store.apply(CONSUMER, [bad])


async def test_a_rebuild_keeps_the_blobs(
    graph: GraphUnderTest, make_database_url: Callable[[], str]
) -> None:
    """A rebuild re-projects the metadata export, which does not carry what the artifact
    service's events wrote: the blobs (and their count in the version) are kept."""
    digest = "3" * 32

    async def nothing() -> AsyncIterator[Envelope]:
        return
        yield

    if isinstance(graph.store, Neo4jGraphStore):
        await graph.store.apply(CONSUMER, [blob_event(digest, 7, None)])
        await rebuild_neo4j(graph.store, nothing, CONSUMER)
        reader: GraphReader = Neo4jGraphReader(graph.store.driver)
        assert await reader.stored_blobs([digest]) == {digest: StoredBlob(7, None)}
        assert await reader.graph_version(CONSUMER) == 1
        return
    url = make_database_url()
    pool = await create_pool(url, "lineage", max_size=2)
    try:
        await migrate(pool, "lineage", LINEAGE_MIGRATIONS)
        await PostgresGraphStore(pool).apply(CONSUMER, [blob_event(digest, 7, None)])
    finally:
        await pool.close()
    await rebuild_postgres(url, nothing, CONSUMER)
    pool = await create_pool(url, "lineage", max_size=2)
    try:
        reader = PostgresGraphReader(pool)
        assert await reader.stored_blobs([digest]) == {digest: StoredBlob(7, None)}
        assert await reader.graph_version(CONSUMER) == 1
    finally:
        await pool.close()


async def test_the_memory_store_keeps_blobs_as_the_real_stores_do() -> None:
    memory = MemoryGraphStore()
    digest = "4" * 32
    await memory.apply(CONSUMER, [blob_event(digest, 9, "ef" * 32)])
    await memory.apply(CONSUMER, [blob_event(digest, 9, None)])
    assert memory.blobs[digest].sha256 == "ef" * 32
    assert memory.progress == {}
