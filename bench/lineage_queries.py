"""The lineage query benchmark: tangled trees, full ancestry and depth-20 upstream lineage.

    python -m bench.lineage_queries [--pipelines 1000] [--executions 200] [--big 1000]
                                    [--stores postgres,neo4j] [--requests 200] [--no-write]

The graph: ``--pipelines`` generator-shaped chains of ``--executions`` executions (each reads the
pipeline's Environment and the two Datasets its predecessor wrote, and writes two: 5 edges an
execution, so 1,000 x 200 = 1,000,000 edges), plus one ``--big``-execution chain for the trees
and the 1,000-deep ancestry. It is written straight into each store (the projection's own
``write_batch`` for PostgreSQL; ``CREATE`` batches for Neo4j, which a fresh graph allows), with
the consumer's progress per pipeline, so the routes read exactly what a projection leaves.
PostgreSQL is ``make services-up``'s (a fresh database, dropped after); Neo4j is a private
instance of the pinned Neo4j Community (its own home and port, stopped after), so the tests'
Neo4j is never touched.

Requests go through the lineage app in-process (``httpx.ASGITransport``): routing, the token-less
consistency check, the graph-version read, the query and JSON. "Uncached" uses a cache that never
hits, with the version from an in-process board (the embedded server's setup); "from cache"
repeats warmed queries against real Redis (version from the Redis board) and the in-process LRU
(version from the in-process board, then from the store as a lineage process without Redis
does). Timings are reported, never
asserted; the section goes to ``bench/RESULTS.md`` between the ``lineage-queries`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.results import RESULTS, update_results
from bench.run import REPO_DIR, machine
from cmf_common.committed import (
    CommittedBoard,
    CommittedKeys,
    CommittedSource,
    LocalCommitted,
    RedisCommitted,
)
from cmf_common.db import create_pool
from cmf_common.logging import configure_logging
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_common.migrations import migrate
from cmf_common.service import install_state
from cmf_lineage.api.deps import LineageState
from cmf_lineage.app import MIGRATIONS, create_app
from cmf_lineage.board import LocalBoard, RedisBoard, VersionBoard
from cmf_lineage.cache import Cache, LruCache, RedisCache
from cmf_lineage.consistency import Consistency
from cmf_lineage.display import artifact_display_name, execution_display_name
from cmf_lineage.graph import (
    ArtifactNode,
    Edge,
    ExecutionNode,
    GraphBatch,
    PipelineNode,
    StageNode,
)
from cmf_lineage.graph_reader import GraphReader
from cmf_lineage.reads import LineageReader
from cmf_lineage.settings import LineageSettings
from cmf_lineage.versions import GraphVersions
from cmf_testing.databases import create_database, drop_database, with_database
from cmf_testing.network import free_port

START, END = "<!-- lineage-queries:start -->", "<!-- lineage-queries:end -->"
PG_URL = os.environ.get("CMF_BENCH_DATABASE_URL", "postgresql://cmf:cmf@127.0.0.1:55432/cmf")
REDIS_URL = os.environ.get("CMF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NEO4J_PAGE_CACHE_MB = 1024
CONSUMER = "cmf-lineage"
BIG = "lq-big"
DEPTH = 20


def _say(message: str) -> None:
    print(f"[lineage-queries] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the graph


@dataclass
class Ids:
    next_id: int = 1

    def take(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _md5(*parts: object) -> str:
    return hashlib.md5(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def chain(pipeline: str, n: int, ids: Ids) -> tuple[GraphBatch, list[str]]:
    """One pipeline's chain as the projection would write it; returns it and each step's first
    output uri (the artifacts lineage is asked about)."""
    batch = GraphBatch()
    stage = f"{pipeline}/Step"
    batch.pipelines.append(PipelineNode(pipeline, {}, 1))
    batch.stages.append(StageNode(pipeline, stage, {}, 1))

    def artifact(type_: str, name: str, uri: str) -> None:
        batch.artifacts.append(
            ArtifactNode(
                uri=uri,
                type=type_,
                name=name,
                display_name=artifact_display_name(type_, name, uri),
                metadata_id=ids.take(),
                properties={},
                custom_properties={},
                create_time=1,
                version=1,
            )
        )
        batch.memberships.add((uri, pipeline))

    env = _md5(pipeline, "env")
    artifact("Environment", f"cmf_artifacts/python_env_{env}.txt:{env}", env)
    data = [[_md5(pipeline, j, k) for k in (0, 1)] for j in range(n + 1)]
    for j, pair in enumerate(data):
        for k, uri in enumerate(pair):
            artifact("Dataset", f"artifacts/{pipeline}/data_{j}_{k}.tsv:{uri}", uri)
    for i in range(n):
        h = _md5(pipeline, "x", i)
        # distinct first four characters within a pipeline: the tree routes address by them
        key = f"{(i * 40503) % 65536:04x}{h[4:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        batch.executions.append(
            ExecutionNode(
                uuid=key,
                uuids=[key],
                pipeline=pipeline,
                stage=stage,
                type=stage,
                name="",
                display_name=execution_display_name(stage, key),
                metadata_id=ids.take(),
                properties={},
                custom_properties={},
                version=1,
            )
        )
        for uri in (env, *data[i]):
            batch.edges.append(Edge(key, uri, INPUT, pipeline))
        for uri in data[i + 1]:
            batch.edges.append(Edge(key, uri, OUTPUT, pipeline))
    return batch, [pair[0] for pair in data[1:]]


def merged(batches: list[GraphBatch]) -> GraphBatch:
    out = GraphBatch()
    for b in batches:
        out.pipelines += b.pipelines
        out.stages += b.stages
        out.artifacts += b.artifacts
        out.memberships |= b.memberships
        out.executions += b.executions
        out.edges += b.edges
    return out


@dataclass
class Plan:
    pipelines: list[str]
    outputs: dict[str, list[str]] = field(default_factory=dict)  # pipeline -> step outputs
    edges: int = 0
    executions: int = 0
    artifacts: int = 0


def batches(args: argparse.Namespace) -> tuple[Plan, list[GraphBatch]]:
    ids = Ids()
    names = [f"lq-{i:04d}" for i in range(args.pipelines)]
    plan = Plan(pipelines=names)
    groups: list[GraphBatch] = []
    pending: list[GraphBatch] = []
    for name, n in [(BIG, args.big), *((p, args.executions) for p in names)]:
        batch, outputs = chain(name, n, ids)
        plan.outputs[name] = outputs
        plan.edges += len(batch.edges)
        plan.executions += len(batch.executions)
        plan.artifacts += len(batch.artifacts)
        pending.append(batch)
        if sum(len(b.edges) for b in pending) >= 25_000:
            groups.append(merged(pending))
            pending = []
    if pending:
        groups.append(merged(pending))
    return plan, groups


# ------------------------------------------------------------------------------ the stores


@contextlib.asynccontextmanager
async def postgres_store(plan: Plan, groups: list[GraphBatch]) -> AsyncIterator[GraphReader]:
    from cmf_lineage.store.postgres import write_batch
    from cmf_lineage.store.postgres_reads import PostgresGraphReader

    name = await create_database("cmf_bench_lineage", admin_url=PG_URL)
    pool = await create_pool(with_database(PG_URL, name), "lineage", min_size=1, max_size=4)
    try:
        await migrate(pool, "lineage", MIGRATIONS)
        started = time.perf_counter()
        for batch in groups:
            async with pool.acquire() as conn, conn.transaction():
                await write_batch(conn, batch)
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO consumer_progress (consumer, subject, seq)"
                " SELECT $1, p, 1 FROM unnest($2::text[]) AS p",
                CONSUMER,
                [BIG, *plan.pipelines],
            )
            await conn.execute("ANALYZE")
        _say(f"PostgreSQL graph written in {time.perf_counter() - started:.0f} s")
        yield PostgresGraphReader(pool)
    finally:
        await pool.close()
        await drop_database(name, PG_URL)


def _neo4j_classpath() -> str:
    cache = Path.home() / ".cache" / "cmf-server"
    found = sorted(cache.glob("neo4j-*/.complete"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit("no Neo4j install in ~/.cache/cmf-server; run `make services-up` once")
    home = found[-1].parent
    return f"{home}/classes:{home}/libs/*"


@contextlib.contextmanager
def private_neo4j(work: Path) -> Any:
    """The pinned Neo4j Community on a port and home of its own, stopped by pid afterwards."""
    port = free_port()
    home = work / "neo4j"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log = (work / "neo4j.log").open("w")
    process = subprocess.Popen(
        [
            "java",
            "-Xms1g",
            "-Xmx2g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-Dio.netty.tryReflectionSetAccessible=true",
            "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
            "-cp",
            _neo4j_classpath(),
            "Launcher",
            str(home),
            "127.0.0.1",
            str(port),
            str(NEO4J_PAGE_CACHE_MB),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the private Neo4j did not start; see {work / 'neo4j.log'}")
            time.sleep(0.5)
        yield f"bolt://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


NEO4J_LOAD = (
    "UNWIND $rows AS row CREATE (:Pipeline {name: row, properties: '{}', version: 1})",
    "UNWIND $stages AS row CREATE (:Stage {pipeline: row[0], name: row[1], properties: '{}',"
    " version: 1})",
    "UNWIND $artifacts AS row CREATE (:Artifact {uri: row.uri, type: row.type, name: row.name,"
    " display_name: row.display_name, metadata_id: row.metadata_id, properties: '{}',"
    " custom_properties: '{}', create_time: 1, version: 1, pipelines: row.pipelines})",
    "UNWIND $executions AS row CREATE (:Execution {pipeline: row.pipeline, uuid: row.uuid,"
    " uuids: [row.uuid], stage: row.stage, type: row.type, name: '',"
    " display_name: row.display_name, metadata_id: row.metadata_id, properties: '{}',"
    " custom_properties: '{}', version: 1})",
    "UNWIND $inputs AS row MATCH (a:Artifact {uri: row[2]})"
    " MATCH (x:Execution {pipeline: row[0], uuid: row[1]})"
    " CREATE (a)-[:INPUT {pipeline: row[0]}]->(x)",
    "UNWIND $outputs AS row MATCH (a:Artifact {uri: row[2]})"
    " MATCH (x:Execution {pipeline: row[0], uuid: row[1]})"
    " CREATE (x)-[:OUTPUT {pipeline: row[0]}]->(a)",
)


@contextlib.asynccontextmanager
async def neo4j_store(plan: Plan, groups: list[GraphBatch], uri: str) -> AsyncIterator[GraphReader]:
    from neo4j import AsyncGraphDatabase

    from cmf_lineage.store.neo4j import Neo4jGraphStore
    from cmf_lineage.store.neo4j_reads import Neo4jGraphReader

    driver = AsyncGraphDatabase.driver(uri, auth=("neo4j", "unused"))
    try:
        await Neo4jGraphStore(driver).setup()
        queries = Neo4jGraphReader(driver)
        await queries.setup()
        started = time.perf_counter()
        async with driver.session() as session:
            for batch in groups:
                members: dict[str, list[str]] = {}
                for a, p in batch.memberships:
                    members.setdefault(a, []).append(p)
                params = {
                    "rows": [p.name for p in batch.pipelines],
                    "stages": [[s.pipeline, s.name] for s in batch.stages],
                    "artifacts": [
                        {
                            "uri": a.uri,
                            "type": a.type,
                            "name": a.name,
                            "display_name": a.display_name,
                            "metadata_id": a.metadata_id,
                            "pipelines": sorted(members.get(a.uri, [])),
                        }
                        for a in batch.artifacts
                    ],
                    "executions": [
                        {
                            "pipeline": x.pipeline,
                            "uuid": x.uuid,
                            "stage": x.stage,
                            "type": x.type,
                            "display_name": x.display_name,
                            "metadata_id": x.metadata_id,
                        }
                        for x in batch.executions
                    ],
                    "inputs": [
                        [e.pipeline, e.execution, e.artifact]
                        for e in batch.edges
                        if e.kind == INPUT
                    ],
                    "outputs": [
                        [e.pipeline, e.execution, e.artifact]
                        for e in batch.edges
                        if e.kind == OUTPUT
                    ],
                }
                for statement in NEO4J_LOAD:
                    key = statement.split("$", 1)[1].split()[0]
                    await (await session.run(statement, {key: params[key]})).consume()
            await (
                await session.run(
                    "UNWIND $subjects AS s CREATE (:Progress {consumer: $c, subject: s, seq: 1})",
                    subjects=[BIG, *plan.pipelines],
                    c=CONSUMER,
                )
            ).consume()
            await (await session.run("CALL db.awaitIndexes(300)")).consume()
        _say(f"Neo4j graph written in {time.perf_counter() - started:.0f} s")
        yield queries
    finally:
        await driver.close()


# ------------------------------------------------------------------------------ measuring


class NoCache:
    """Never hits: every request is answered from the store."""

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


def _client(
    queries: GraphReader,
    cache: Cache,
    board: VersionBoard | None,
    committed: CommittedSource | None = None,
) -> httpx.AsyncClient:
    """The lineage app over ``queries``. With ``committed`` (the pipelines' committed seqs,
    every one already applied), reads run the read-after-write checks of a server
    (cmf_lineage.consistency): a Redis board's reads take them from Redis in the same round
    trip (``shared``), others from ``committed`` in the process (the embedded server's)."""

    class Progress:
        async def applied_seq(self, consumer: str, pipeline: str) -> int:
            return 1

    app = create_app(LineageSettings())
    versions = GraphVersions(queries, CONSUMER, board)
    on_redis = isinstance(committed, RedisCommitted)
    consistency = (
        Consistency(
            Progress(),  # type: ignore[arg-type]
            versions,
            CONSUMER,
            5.0,
            local=None if on_redis else committed,
            shared=committed if on_redis else None,
        )
        if committed is not None
        else None
    )
    reader = LineageReader(
        queries,
        Progress(),  # type: ignore[arg-type]
        cache,
        CONSUMER,
        versions=versions,
        consistency=consistency,
    )
    install_state(app, LineageState(reader=reader))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lineage")


async def _all_committed(board: CommittedBoard, plan: Plan) -> None:
    """Every pipeline of the graph pushed once (seq 1), as ``_client``'s reads expect."""
    for pipeline in [*plan.pipelines, BIG]:
        await board.post(pipeline, 1)


@dataclass
class Figure:
    store: str
    label: str
    times: list[float]
    detail: str = ""

    def pct(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _time(
    client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]], warmup: int = 3
) -> tuple[list[float], Any]:
    last: Any = None
    for path, params in requests[:warmup]:
        (await client.get(path, params=params)).raise_for_status()
    times = []
    for path, params in requests:
        started = time.perf_counter()
        answer = await client.get(path, params=params)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
        last = answer.json()
    return times, last


async def measure(
    store: str, queries: GraphReader, plan: Plan, args: argparse.Namespace
) -> list[Figure]:
    figures: list[Figure] = []
    rng = random.Random(7)
    big_last = (await queries.pipeline_graph(BIG)) or None
    assert big_last is not None
    last = max(big_last.executions, key=lambda x: x.metadata_id)
    local = LocalCommitted()
    await _all_committed(local, plan)
    async with _client(queries, NoCache(), LocalBoard(), local) as client:
        for label, path in (
            ("`/artifact-lineage/tangled-tree/{p}`", f"/artifact-lineage/tangled-tree/{BIG}"),
            (
                "`/artifact-execution-lineage/tangled-tree/{p}`",
                f"/artifact-execution-lineage/tangled-tree/{BIG}",
            ),
            (
                "`/execution-lineage/tangled-tree/{uuid4}/{p}` (full ancestry)",
                f"/execution-lineage/tangled-tree/{last.uuid[:4]}/{BIG}",
            ),
        ):
            times, body = await _time(client, [(path, {})] * args.tree_requests, warmup=5)
            detail = f"{len(body)} layers, {sum(len(layer) for layer in body)} nodes"
            figures.append(Figure(store, label, times, detail))
            _say(f"{store}: {label} p50 {statistics.median(times) * 1000:.1f} ms ({detail})")
        # upstream lineage at depth 20 of step outputs at least 20 steps into random pipelines
        requests = []
        for _ in range(args.requests):
            pipeline = rng.choice(plan.pipelines)
            outputs = plan.outputs[pipeline]
            uri = outputs[rng.randrange(DEPTH, len(outputs))]
            requests.append(
                (
                    "/api/native/v1/lineage/artifacts",
                    {"uri": uri, "direction": "upstream", "depth": DEPTH},
                )
            )
        times, body = await _time(client, requests, warmup=20)
        sizes = f"{len(body['nodes'])} nodes, {len(body['edges'])} edges"
        figures.append(Figure(store, "upstream lineage, depth 20 (uncached)", times, sizes))
        _say(f"{store}: depth 20 p95 {Figure(store, '', times).pct(0.95) * 1000:.1f} ms")
    prefix = f"cmf-bench:{uuid.uuid4().hex}:"
    keys = CommittedKeys(prefix + "committed", prefix + "committed:total")
    shared = RedisCommitted(REDIS_URL, keys)
    await _all_committed(shared, plan)
    setups: list[tuple[str, Cache, VersionBoard | None, CommittedSource]] = [
        (
            "Redis",
            RedisCache(REDIS_URL, prefix=prefix),
            RedisBoard(REDIS_URL, prefix + "v:", committed=keys),
            shared,
        ),
        ("in-process LRU", LruCache(4096), LocalBoard(), local),
        ("in-process LRU, version from the store", LruCache(4096), None, local),
    ]
    for name, cache, board, committed in setups:
        async with _client(queries, cache, board, committed) as client:
            warmed = requests[: args.cached_keys]
            await _time(client, warmed, warmup=0)
            again = [warmed[i % len(warmed)] for i in range(args.requests)]
            times, _ = await _time(client, again, warmup=0)
            figures.append(
                Figure(store, f"upstream lineage, depth 20, from the cache ({name})", times)
            )
            _say(f"{store}: cached ({name}) p95 {Figure(store, '', times).pct(0.95) * 1000:.2f} ms")
        await cache.close()
        if isinstance(board, RedisBoard):
            await board.client.delete(prefix + "v:" + CONSUMER)
        if board is not None:
            await board.close()
    await shared.client.delete(keys.seqs, keys.total)
    await shared.close()
    return figures


# ------------------------------------------------------------------------------ report

TARGETS = {
    "`/artifact-lineage/tangled-tree/{p}`": ("37 s", 300.0),
    "`/artifact-execution-lineage/tangled-tree/{p}`": ("37 s", 300.0),
    "`/execution-lineage/tangled-tree/{uuid4}/{p}` (full ancestry)": ("6.8 s", 100.0),
    "upstream lineage, depth 20 (uncached)": ("—", 100.0),
    "upstream lineage, depth 20, from the cache (Redis)": ("—", 5.0),
    "upstream lineage, depth 20, from the cache (in-process LRU)": ("—", 5.0),
    # what a lineage process with neither Redis nor the projector in-process does: shown, not
    # a target (the version board is how the target is met)
    "upstream lineage, depth 20, from the cache (in-process LRU, version from the store)": (
        "—",
        None,
    ),
}


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def render(figures: list[Figure], plan: Plan, args: argparse.Namespace, load: str) -> str:
    m = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {m['cpu']}, {m['nproc']} CPUs (nproc),"
        f" {m['ram_bytes'] / 2**30:.1f} GiB RAM, Linux {m['kernel']}; Python {m['python']};"
        f" commit {m['commit']}. Debian PostgreSQL 15 (`make services-up`, a fresh database);"
        f" Neo4j Community 5.26.30 (the pinned jars, a private instance: 2 GiB heap,"
        f" {NEO4J_PAGE_CACHE_MB} MiB page cache). {load}",
        "",
        f"Graph: {args.pipelines:,} pipelines of {args.executions:,}-execution generator chains"
        f" plus one {args.big:,}-execution chain: {plan.executions:,} executions,"
        f" {plan.artifacts:,} artifacts, {plan.edges:,} edges (each execution reads its"
        " pipeline's Environment and two Datasets and writes two). Requests go through the"
        " lineage app in-process (httpx ASGITransport), one at a time: routing, the graph-version"
        " read, the query, JSON. The version comes from an in-process board (the embedded"
        " server's setup) for the uncached requests and the in-process LRU, from the Redis"
        " board with the Redis cache, and from the store in the last row of each store."
        " Trees: "
        f"{args.tree_requests} requests each; depth-20 lineage: {args.requests} requests for"
        " step outputs at least 20 steps into random pipelines (uncached: a cache that never"
        f" hits; from the cache: {args.cached_keys} of them warmed, then asked again).",
        "",
        "| request | store | n | p50 | p95 | p99 | answer | reference | target (p95) | within |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for f in figures:
        reference, target = TARGETS.get(f.label, ("—", None))
        within = "—" if target is None else ("yes" if f.pct(0.95) * 1000 <= target else "no")
        lines.append(
            f"| {f.label} | {f.store} | {len(f.times)} | {_ms(f.pct(0.5))} | {_ms(f.pct(0.95))}"
            f" | {_ms(f.pct(0.99))} | {f.detail or '—'} | {reference} |"
            f" {'—' if target is None else f'≤ {target:g} ms'} | {within} |"
        )
    lines += [
        "",
        "How the answers are read: a tree reads the pipeline's nodes and edges (PostgreSQL: four"
        " indexed selects in one read-only snapshot; Neo4j: four statements run at once, each in"
        " a session of its own and answering in one record of collected lists, as the Python"
        " driver's cost is per record) and layers"
        " them in Python; the ancestry tree reads only the execution DAG (executions and"
        " parent pairs). Upstream lineage fetches the whole neighbourhood within the depth in"
        " one statement (a recursive CTE; a DISTINCT variable-length pattern, which Neo4j expands"
        " breadth first) and walks it in Python; downstream, which can fan out to every reader of"
        " a shared input, goes hop by hop and stops at `max_nodes`. Every request, cached or"
        " not, first takes the graph version its cache key carries: the store's version is the"
        " sum of the consumer's applied sequence per pipeline, committed with the graph (on"
        f" Neo4j a sum over {args.pipelines + 1:,} Progress nodes, and a session round trip),"
        " and reading it on every request is most of the from-cache time (the last row of"
        " each store). So the projector posts it, right"
        " after each commit, on a version board that only moves forward (a Redis key advanced"
        " by a set-if-greater script, or a value in the embedded server's process), every"
        " process using a board re-posts the store's version each second to heal a lost post,"
        " and a read"
        " without a token takes the board's value; a read with a consistency token takes the"
        " store's, once the token is applied, and posts it before answering. The board never"
        " runs ahead of the store, so an entry never holds a graph older than its key, and no"
        " read sees a graph older than one already served; a board that fails sends reads to"
        " the store (`cmf_lineage/versions.py` has the argument).",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Figure]:
    started = time.perf_counter()
    plan, groups = batches(args)
    # Millions of long-lived objects: keep the collector from scanning them while timing.
    gc.collect()
    gc.freeze()
    _say(
        f"graph: {plan.executions:,} executions, {plan.artifacts:,} artifacts,"
        f" {plan.edges:,} edges in {len(groups)} batches ({time.perf_counter() - started:.0f} s)"
    )
    return await measure_on_stores(
        args, plan, groups, measure, Path("/var/tmp/cmf-bench-lineage-queries")
    )


Measure = Callable[[str, GraphReader, Plan, argparse.Namespace], Awaitable[list[Figure]]]


async def measure_on_stores(
    args: argparse.Namespace,
    plan: Plan,
    groups: list[GraphBatch],
    timed: Measure,
    neo4j_dir: Path,
) -> list[Figure]:
    """Loads the graph into each store ``--stores`` names (Neo4j a private server in
    ``neo4j_dir``) and runs ``timed`` on it."""
    figures: list[Figure] = []
    stores = args.stores.split(",")
    if "postgres" in stores:
        async with postgres_store(plan, groups) as queries:
            figures += await timed("PostgreSQL", queries, plan, args)
    if "neo4j" in stores:
        with private_neo4j(neo4j_dir) as uri:
            async with neo4j_store(plan, groups, uri) as queries:
                figures += await timed("Neo4j", queries, plan, args)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lineage_queries", description=__doc__)
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--stores", default="postgres,neo4j")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tree-requests", type=int, default=20)
    parser.add_argument("--cached-keys", type=int, default=50)
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json=False)  # a line per request would be timed too
    load = f"1-min load average {os.getloadavg()[0]:.2f} when measuring began."
    figures = asyncio.run(run(args))
    section = render(figures, *_plan_only(args), load)
    print(section)
    if not args.no_write:
        update_results(START, END, "Lineage queries", section)
        _say(f"updated {RESULTS.relative_to(REPO_DIR)}")
    return 0


def _plan_only(args: argparse.Namespace) -> tuple[Plan, argparse.Namespace]:
    plan = Plan(pipelines=[])
    plan.executions = args.big + args.pipelines * args.executions
    plan.artifacts = (2 * args.big + 3) + args.pipelines * (2 * args.executions + 3)
    plan.edges = 5 * plan.executions
    return plan, args


if __name__ == "__main__":
    raise SystemExit(main())
