"""The projection benchmark (issue 5): lineage projection throughput into Neo4j and into
PostgreSQL, and push-to-projected lag.

    python -m bench.projection [--pipelines 50] [--pushes 30] [--executions 100]
                               [--window 75] [--duration 130] [--rate 200]
                               [--only throughput|lag] [--stores neo4j,postgres] [--no-write]

Throughput: the real push (``cmf_metadata.push.push``, in this process) merges ``--pipelines`` x
``--pushes`` generator pushes of ``--executions`` executions each (``cmf_testing.generator``, 4
stages, a new seed per push) into a fresh metadata database; ``OutboxRelay`` publishes their
events to a fresh topic (6 partitions, as ``cmf.metadata.v1``). Then, for each store, on a clean
graph (Neo4j: every node deleted; PostgreSQL: a fresh database as ``LINEAGE_DATABASE_URL``),
``cmf-server worker lineage`` runs from offset 0 (``EVENTS_TOPIC`` the topic,
``LINEAGE_CONSUMER_GROUP`` a fresh group) and this process reads its /metrics every second:
``cmf_lineage_graph_writes_total`` (``GraphBatch.writes()``: nodes + edges + memberships merged,
counted after the graph transaction committed; the runner commits the offsets next). The figure
is the writes of the whole window from the worker's first write to its last sample, divided by
the window's length: ``--window`` seconds, or until the topic is consumed; the slowest 10-s
stretch of the window shows that it was sustained.

Lag: ``cmf-server up`` (metadata on a fresh database, Kafka configured), ``cmf-server worker
relay`` and ``cmf-server worker lineage`` (one store) as processes; this process pushes
10-execution pipelines (20 in turn, a new seed each push) at ``--rate`` pushes per minute for
``--duration`` seconds and, for each push, from its response on, polls the store's
``applied_seq(consumer, pipeline)`` every 10 ms until it reaches the sequence of the push's
``X-CMF-Consistency-Token``; the lag is that moment minus the response's arrival. p50/p99 over
every push, once per store.

Figures are reported, never asserted: a markdown section on stdout and in ``bench/RESULTS.md``
(between the ``projection`` markers); logs and raw figures go to ``bench/out/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import neo4j
from neo4j import AsyncGraphDatabase

from bench.results import RESULTS, update_results
from bench.run import OUT_DIR, REPO_DIR, machine
from bench.stack import (
    ADMIN_URL,
    BOOTSTRAP,
    NEO4J_PASSWORD,
    NEO4J_URI,
    NEO4J_USER,
    CpuMeter,
    Process,
    fresh_database,
    fresh_topic,
    load_average,
    metric_sum,
    ms,
    others_using_neo4j,
    progress,
    quantile,
    running,
    server_version,
    topic_size,
    until,
    wait_for_low_load,
)
from cmf_common.db import create_pool
from cmf_common.kafka import KafkaPublisher
from cmf_common.migrations import migrate
from cmf_common.relay import OutboxRelay
from cmf_lineage.graph import GraphStore
from cmf_lineage.store import MIGRATIONS as LINEAGE_MIGRATIONS
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_lineage.store.postgres import PostgresGraphStore
from cmf_metadata.app import MIGRATIONS
from cmf_metadata.push import push
from cmf_testing.databases import with_database
from cmf_testing.generator import push_body, push_body_bytes

START, END = "<!-- projection:start -->", "<!-- projection:end -->"
NAME = "projection"
TARGET_WRITES_S = 5_000
TARGET_LAG_P99_S = 1.0
STAGES = 4
LAG_PIPELINES = 20
LAG_EXECUTIONS = 10
POLL_S = 0.010
PUSHERS = 4
STORES = ("neo4j", "postgres")
WRITES = "cmf_lineage_graph_writes_total"
CONSUMED = "cmf_consumer_messages_total"


def _say(message: str) -> None:
    progress(NAME, message)


# --- the events -------------------------------------------------------------------------------


@dataclass
class Dataset:
    pipelines: int
    pushes: int
    executions_per_push: int
    events: int
    push_s: float
    relay_s: float


async def produce(topic: str, metadata_url: str, args: argparse.Namespace) -> Dataset:
    """Real pushes into the metadata database, their events relayed to ``topic``."""
    pool = await create_pool(metadata_url, "metadata", max_size=PUSHERS)
    try:
        await migrate(pool, "metadata", MIGRATIONS)
        started = time.perf_counter()
        total, done = args.pipelines * args.pushes, 0

        async def pipeline(p: int) -> None:
            nonlocal done
            for k in range(args.pushes):
                body = push_body(f"bench-proj-{p:03d}", args.executions, stages=STAGES, seed=k)
                outcome = await push(
                    pool,
                    pipeline_name=body["pipeline_name"],
                    json_payload=body["json_payload"],
                    exec_uuid=None,
                )
                if outcome.seq is None:
                    raise RuntimeError(f"push {p}/{k} answered {outcome.status}")
                done += 1
                if done % 100 == 0:
                    _say(f"pushed {done} of {total}")

        # Four pipelines at a time (the pool's size), each one's pushes in order.
        for first in range(0, args.pipelines, PUSHERS):
            await asyncio.gather(
                *(pipeline(p) for p in range(first, min(first + PUSHERS, args.pipelines)))
            )
        push_s = time.perf_counter() - started
        kafka = KafkaPublisher(BOOTSTRAP)
        await kafka.start()
        try:
            relay = OutboxRelay(pool, kafka, topic=topic, batch_rows=10_000)
            started = time.perf_counter()
            while await relay.relay_once():
                pass
            relay_s = time.perf_counter() - started
        finally:
            await kafka.stop()
        events = await topic_size(topic)
        return Dataset(args.pipelines, args.pushes, args.executions, events, push_s, relay_s)
    finally:
        await pool.close()


# --- the stores -------------------------------------------------------------------------------


async def clean_neo4j() -> None:
    """Delete every node (the graph is shared: first wait a little for others' lineage runs)."""
    for _ in range(8):
        others = others_using_neo4j()
        if not others:
            break
        _say(f"waiting for other lineage processes before wiping Neo4j: {others[0]}")
        await asyncio.sleep(15)
    driver = AsyncGraphDatabase.driver(NEO4J_URI, auth=(NEO4J_USER, NEO4J_PASSWORD))
    try:
        for attempt in range(1, 6):
            try:
                await Neo4jGraphStore(driver).delete_everything()
                return
            except neo4j.exceptions.TransientError as exc:  # e.g. a deadlock with a test
                if attempt == 5:
                    raise
                _say(f"wiping Neo4j failed ({exc.code}); again in {attempt * 5} s")
                await asyncio.sleep(attempt * 5)
    finally:
        await driver.close()


@contextlib.asynccontextmanager
async def store_env(store: str, prefix: str) -> AsyncIterator[tuple[dict[str, str], str | None]]:
    """The lineage worker's store settings on a clean graph, and its database (PostgreSQL)."""
    if store == "neo4j":
        await clean_neo4j()
        try:
            env = {"NEO4J_URI": NEO4J_URI, "NEO4J_USER": NEO4J_USER}
            yield {**env, "NEO4J_PASSWORD": NEO4J_PASSWORD}, None
        finally:
            await clean_neo4j()
        return
    async with fresh_database(prefix) as db:
        yield {"LINEAGE_DATABASE_URL": with_database(ADMIN_URL, db)}, db


@contextlib.asynccontextmanager
async def open_store(store: str, database: str | None) -> AsyncIterator[GraphStore]:
    """The same store, opened in this process, to read ``applied_seq`` as a reader would."""
    if store == "neo4j":
        driver = AsyncGraphDatabase.driver(NEO4J_URI, auth=(NEO4J_USER, NEO4J_PASSWORD))
        try:
            yield Neo4jGraphStore(driver)
        finally:
            await driver.close()
        return
    assert database is not None
    pool = await create_pool(with_database(ADMIN_URL, database), "lineage", max_size=2)
    try:
        await migrate(pool, "lineage", LINEAGE_MIGRATIONS)
        yield PostgresGraphStore(pool)
    finally:
        await pool.close()


def _worker(store: str, topic: str, group: str, env: dict[str, str]) -> Process:
    return Process(
        f"lineage-{store}",
        ["worker", "lineage"],
        {
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "EVENTS_TOPIC": topic,
            "LINEAGE_CONSUMER_GROUP": group,
            **env,
        },
    )


# --- throughput -------------------------------------------------------------------------------


@dataclass
class ThroughputRun:
    store: str
    window_s: float
    writes: float
    messages: float
    drained: bool
    slowest_10s: float
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # t, writes, msgs
    load_before: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def writes_s(self) -> float:
        return self.writes / self.window_s if self.window_s else 0.0


async def throughput_run(store: str, topic: str, events: int, window_s: float) -> ThroughputRun:
    group = f"bench-lineage-{uuid.uuid4().hex[:8]}"
    async with store_env(store, "proj_graph") as (env, database):
        await wait_for_low_load(NAME)
        load_before = load_average()
        worker = _worker(store, topic, group, env)
        meter = CpuMeter([database] if database else [])
        with running(worker):
            meter.pids = {"worker": worker.proc.pid} if worker.proc else {}
            meter.start()
            samples: list[tuple[float, float, float]] = []
            first: float | None = None
            while True:
                metrics = worker.metrics()
                now = time.monotonic()
                sample = (now, metric_sum(metrics, WRITES), metric_sum(metrics, CONSUMED))
                samples.append(sample)
                meter.sample()
                if first is None and sample[1] > 0:
                    first = now
                drained = sample[2] >= events
                if drained or (first is not None and now - first >= window_s):
                    break
                await asyncio.sleep(max(0.0, now + 1.0 - time.monotonic()))
            cpu = meter.stop()
    # From the first sample with a write (start-up and the first partial second left out).
    window = samples[next(i for i, s in enumerate(samples) if s[1] > 0) :]
    t0, w0, m0 = window[0]
    t1, w1, m1 = window[-1]
    slowest = min(
        (
            (b[1] - a[1]) / (b[0] - a[0])
            for i, a in enumerate(window)
            for b in window[i + 10 : i + 11]
        ),
        default=0.0,
    )
    return ThroughputRun(
        store, t1 - t0, w1 - w0, m1 - m0, drained, slowest, window, load_before, cpu
    )


# --- lag --------------------------------------------------------------------------------------


@dataclass
class LagRun:
    store: str
    pushes: int
    push_failures: int
    lags_s: list[float] = field(default_factory=list)
    push_s: list[float] = field(default_factory=list)
    unresolved: int = 0
    load_before: float = 0.0
    poll_errors: list[str] = field(default_factory=list)


class Waiter:
    """Polls ``applied_seq`` for the pipelines with pushes waiting to be projected."""

    def __init__(self, store: GraphStore, consumer: str) -> None:
        self.store = store
        self.consumer = consumer
        self.pending: dict[str, list[tuple[int, float]]] = {}  # pipeline -> (seq, responded)
        self.lags: list[float] = []
        self.poll_errors: list[str] = []

    def expect(self, pipeline: str, seq: int, responded: float) -> None:
        self.pending.setdefault(pipeline, []).append((seq, responded))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for pipeline in [p for p, waiting in self.pending.items() if waiting]:
                try:
                    applied = await self.store.applied_seq(self.consumer, pipeline)
                except Exception as exc:  # e.g. a node deleted under the read by someone else
                    self.poll_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                now = time.perf_counter()
                waiting = self.pending[pipeline]
                self.lags += [now - responded for seq, responded in waiting if seq <= applied]
                self.pending[pipeline] = [w for w in waiting if w[0] > applied]
            await asyncio.sleep(POLL_S)

    def outstanding(self) -> int:
        return sum(len(w) for w in self.pending.values())


async def drive(
    base_url: str, waiter: Waiter, rate: float, duration_s: float, prefix: str, first_seed: int
) -> tuple[list[float], int]:
    interval = 60.0 / rate
    count = int(duration_s / interval)
    seconds: list[float] = []
    failures = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        begin = time.perf_counter()
        for i in range(count):
            delay = begin + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pipeline = f"{prefix}-{i % LAG_PIPELINES:02d}"
            body = push_body_bytes(pipeline, LAG_EXECUTIONS, seed=first_seed + i)
            started = time.perf_counter()
            response = await client.post(
                "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
            )
            responded = time.perf_counter()
            seconds.append(responded - started)
            token = response.headers.get("x-cmf-consistency-token")
            if response.status_code != 200 or token is None:
                failures += 1
                continue
            name, _, seq = token.rpartition(":")
            waiter.expect(unquote(name), int(seq), responded)
    return seconds, failures


async def lag_run(store: str, rate: float, duration_s: float) -> LagRun:
    group = f"bench-lineage-{uuid.uuid4().hex[:8]}"
    async with (
        fresh_database("proj_lag_meta") as meta_db,
        fresh_topic("projection-lag") as topic,
        store_env(store, "proj_lag_graph") as (env, database),
    ):
        meta_url = with_database(ADMIN_URL, meta_db)
        server = Process(
            "projection-lag-server",
            ["up"],
            {"DATABASE_URL": meta_url, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "EVENTS_TOPIC": topic},
        )
        relay = Process(
            "projection-lag-relay",
            ["worker", "relay"],
            {
                "METADATA_DATABASE_URL": meta_url,
                "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                "EVENTS_TOPIC": topic,
            },
        )
        worker = _worker(store, topic, group, env)
        with running(server), running(relay), running(worker):
            async with open_store(store, database) as graph:
                waiter = Waiter(graph, group)
                stop = asyncio.Event()
                task = asyncio.create_task(waiter.run(stop))
                try:
                    # Warm-up, not counted: connections, the consumer's assignment.
                    await drive(server.url, waiter, 600, 5, "bench-warmup", 10_000)
                    await until(lambda: waiter.outstanding() == 0, 60)
                    waiter.lags.clear()
                    await wait_for_low_load(NAME)
                    load_before = load_average()
                    _say(f"{store}: pushing {rate:g}/min for {duration_s:g} s")
                    push_s, failures = await drive(
                        server.url, waiter, rate, duration_s, "bench-lag", 0
                    )
                    await until(lambda: waiter.outstanding() == 0, 60)
                finally:
                    stop.set()
                    await task
    return LagRun(
        store,
        len(push_s),
        failures,
        waiter.lags,
        push_s,
        waiter.outstanding(),
        load_before,
        waiter.poll_errors,
    )


# --- report -----------------------------------------------------------------------------------


def render(
    info: dict[str, Any],
    data: Dataset | None,
    tput: list[ThroughputRun],
    lags: list[LagRun],
    args: argparse.Namespace,
) -> str:
    label = {"neo4j": "Neo4j", "postgres": "PostgreSQL"}
    lines = [
        f"Measured {info['date']} on {info['cpu']}, {info['nproc']} CPUs (nproc), "
        f"{info['ram_bytes'] / 1024**3:.1f} GiB RAM, Linux {info['kernel']}; Python "
        f"{info['python']}; commit {info['commit']}. PostgreSQL {info['pg']} (Debian's), "
        "Kafka 4.3.1 (one KRaft node, 512 MiB heap), Neo4j Community 5.26 (512 MiB heap, "
        "128 MiB page cache), the workers and the benchmark all share the machine's 2 cores "
        "(`make services-up`), over loopback.",
        "",
        "| figure | store | ours | target | within target |",
        "|---|---|---:|---:|---|",
    ]
    for run in tput:
        lines.append(
            f"| projection throughput, graph writes/s over {run.window_s:.0f} s "
            f"(slowest 10 s: {run.slowest_10s:,.0f}/s) | {label[run.store]} "
            f"| {run.writes_s:,.0f}/s | ≥ {TARGET_WRITES_S:,}/s sustained 60 s "
            f"| {_verdict(run)} |"
        )
    for lag in lags:
        p50, p99 = quantile(lag.lags_s, 0.5), quantile(lag.lags_s, 0.99)
        lines.append(
            f"| push-to-projected lag p50 / p99, {len(lag.lags_s)} pushes "
            f"| {label[lag.store]} | {ms(p50)} / {ms(p99)} "
            f"| p99 ≤ {TARGET_LAG_P99_S * 1000:,.0f} ms "
            f"| {'yes' if p99 <= TARGET_LAG_P99_S and not lag.unresolved else '**no**'} |"
        )
    if data is not None and tput:
        per_push = tput[0].writes / max(tput[0].messages, 1) * 4
        lines += [
            "",
            f"Throughput: events of {data.pipelines * data.pushes:,} real pushes "
            f"({data.pipelines} pipelines x {data.pushes} pushes of {data.executions_per_push} "
            f"executions in {STAGES} stages; merged in {data.push_s:.0f} s, relayed in "
            f"{data.relay_s:.1f} s): {data.events:,} events on a 6-partition topic, 4 per push "
            f"(pipeline, stages, artifacts, executions; ~{per_push:,.0f} graph writes per push). "
            "`cmf-server worker lineage` with its defaults (500 records per poll; the "
            "dispatcher hands each run of same-type events to the store as one transaction, "
            "which here means one transaction per event), from offset 0 of a fresh consumer "
            "group, on a clean graph. Per store: "
            + "; ".join(
                f"{label[r.store]} {r.writes:,.0f} writes from {r.messages:,.0f} events in "
                f"{r.window_s:.0f} s ({r.writes / max(r.messages, 1):,.0f} writes a "
                f"transaction{', the topic consumed' if r.drained else ''}; load "
                f"{r.load_before:.2f}; CPU: worker {r.cpu_s.get('worker', 0):.0f} s, "
                + (
                    f"Neo4j {r.cpu_s.get('neo4j', 0):.0f} s"
                    if r.store == "neo4j"
                    else f"its PostgreSQL backends {r.cpu_s.get('postgres', 0):.0f} s"
                )
                + f", Kafka {r.cpu_s.get('kafka', 0):.0f} s, machine "
                f"{r.cpu_s.get('machine', 0):.0f} s of {2 * r.window_s:.0f} s)"
                for r in tput
            )
            + ".",
        ]
    for lag in lags:
        lines += [
            "",
            f"Lag, {label[lag.store]}: `cmf-server up`, `worker relay` and `worker lineage` as "
            f"processes; {lag.pushes} pushes of {LAG_EXECUTIONS} executions at {args.rate:g}/min "
            f"for {args.duration:g} s ({LAG_PIPELINES} pipelines in turn; {lag.push_failures} "
            f"failed; push p50 {ms(quantile(lag.push_s, 0.5))}); from the push's response to "
            f"`applied_seq` reaching its token (polled every {POLL_S * 1000:.0f} ms; load "
            f"{lag.load_before:.2f}): p50 {ms(quantile(lag.lags_s, 0.5))}, p90 "
            f"{ms(quantile(lag.lags_s, 0.9))}, p99 {ms(quantile(lag.lags_s, 0.99))}, max "
            f"{ms(max(lag.lags_s))}"
            + (f"; {lag.unresolved} never projected" if lag.unresolved else "")
            + (
                f"; {len(lag.poll_errors)} polls failed ({lag.poll_errors[0]})"
                if lag.poll_errors
                else ""
            )
            + ".",
        ]
    return "\n".join(lines)


def _verdict(run: ThroughputRun) -> str:
    if run.window_s < 60:
        return "— (window < 60 s)"
    return "yes" if run.slowest_10s >= TARGET_WRITES_S else "**no**"


async def main_async(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC)
    stores = [s for s in args.stores.split(",") if s]
    data: Dataset | None = None
    tput: list[ThroughputRun] = []
    lags: list[LagRun] = []
    failed: list[str] = []
    if args.only in (None, "throughput"):
        async with fresh_database("proj_meta") as meta_db, fresh_topic("projection") as topic:
            _say(f"pushing {args.pipelines * args.pushes} pipelines' pushes")
            data = await produce(topic, with_database(ADMIN_URL, meta_db), args)
            _say(f"{data.events:,} events on {topic}")
            for store in stores:
                try:
                    run = await throughput_run(store, topic, data.events, args.window)
                except Exception as exc:  # one store failing must not waste the other's run
                    _say(f"{store}: the throughput run failed: {type(exc).__name__}: {exc}")
                    failed.append(f"{store} throughput: {type(exc).__name__}: {exc}"[:300])
                    continue
                _say(
                    f"{store}: {run.writes:,.0f} writes in {run.window_s:.1f} s ="
                    f" {run.writes_s:,.0f}/s (slowest 10 s {run.slowest_10s:,.0f}/s);"
                    f" {run.messages:,.0f} events; load {run.load_before:.2f}; cpu {run.cpu_s}"
                )
                tput.append(run)
    if args.only in (None, "lag"):
        for store in stores:
            try:
                run_lag = await lag_run(store, args.rate, args.duration)
            except Exception as exc:
                _say(f"{store}: the lag run failed: {type(exc).__name__}: {exc}")
                failed.append(f"{store} lag: {type(exc).__name__}: {exc}"[:300])
                continue
            _say(
                f"{store}: lag p50 {ms(quantile(run_lag.lags_s, 0.5))}"
                f" p99 {ms(quantile(run_lag.lags_s, 0.99))} over {len(run_lag.lags_s)} pushes"
            )
            lags.append(run_lag)
    info = machine()
    info["date"] = f"{stamp:%Y-%m-%d %H:%M} UTC"
    info["pg"] = await server_version()
    section = render(info, data, tput, lags, args)
    if failed:
        section += "\n\nFailed: " + "; ".join(failed) + "."
    print(section)
    OUT_DIR.mkdir(exist_ok=True)
    raw = {
        "machine": info,
        "args": vars(args),
        "dataset": asdict(data) if data else None,
        "throughput": [asdict(r) for r in tput],
        "lag": [asdict(r) for r in lags],
        "failed": failed,
    }
    (OUT_DIR / "projection.json").write_text(json.dumps(raw, indent=1))
    if not args.no_write:
        update_results(START, END, "Lineage projection", section)
        _say(f"updated {RESULTS.relative_to(REPO_DIR)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.projection", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--pushes", type=int, default=30, help="per pipeline")
    parser.add_argument("--executions", type=int, default=100, help="per push")
    parser.add_argument("--window", type=float, default=75.0, help="seconds of projection")
    parser.add_argument("--rate", type=float, default=200.0, help="pushes per minute")
    parser.add_argument("--duration", type=float, default=130.0, help="seconds of pushes")
    parser.add_argument("--only", choices=("throughput", "lag"), default=None)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main_async(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
