"""The relay benchmark (issue 4): outbox relay throughput, and commit-to-publish latency.

    python -m bench.relay [--events 200000] [--runs 3] [--batch-rows 20000]
                          [--subjects-per-round 1000] [--duration 150] [--rate 200]
                          [--only throughput|latency] [--no-write]

Throughput: a template database on the shared PostgreSQL (``make services-up``) gets the metadata
schema and ``--events`` outbox events of ~1 KB (as published: the envelope's JSON), written with
``cmf_common.outbox.add_events`` by 1,000 subjects (pipelines), 25 events per call, a few
thousand calls per transaction, interleaved the way concurrent pushes leave them; then
``VACUUM ANALYZE`` (what autovacuum does to a table after a bulk insert). Each run copies it
into a fresh database, makes a fresh topic (6 partitions, as ``cmf.metadata.v1``) and times
``OutboxRelay.run`` with ``KafkaPublisher``, in this process, from its start until every row is
published (the relay's own ``cmf_relay_published_total``); the topic's end offsets then must
add up to ``--events``. The figure is the median of ``--runs`` runs with the knobs given (then
one run with the relay's defaults, 2000 rows and 100 subjects a round, for comparison). Where
the time goes comes from the same runs: the time spent in ``publish`` (the producer's sends and
the broker's acks) and the relay's SQL statements by verb (``cmf_db_query_duration_seconds``),
and the CPU seconds of the relay, its PostgreSQL backends and the broker.

Latency: ``cmf-server up`` (metadata on a fresh database, ``KAFKA_BOOTSTRAP_SERVERS`` set, so no
in-process delivery) and ``cmf-server worker relay`` (``EVENTS_TOPIC`` a fresh topic) run as
their own processes; this process pushes 10-execution pipelines (``cmf_testing.generator``, 20
pipelines in turn, a new seed each push, so every push adds executions) at ``--rate`` pushes per
minute for ``--duration`` seconds, and a consumer of the topic (no group, every partition from
the start) stamps each record when it arrives. Per event: arrival minus the envelope's ``time``
(the outbox row's ``time``, set by ``add_events``, the push transaction's last statement before
its COMMIT), so the figure includes the commit itself. p50/p99 over every event.

Figures are reported, never asserted: a markdown section on stdout and in ``bench/RESULTS.md``
(between the ``relay`` markers); logs and raw figures go to ``bench/out/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from bench.results import RESULTS, update_results
from bench.run import OUT_DIR, REPO_DIR, machine
from bench.stack import (
    ADMIN_URL,
    BOOTSTRAP,
    PARTITIONS,
    CpuMeter,
    Process,
    fresh_database,
    fresh_topic,
    load_average,
    median,
    ms,
    progress,
    quantile,
    running,
    server_version,
    topic_size,
    until,
    wait_for_low_load,
)
from cmf_common.db import create_pool
from cmf_common.events import Envelope, NewEvent, event_type, uuid7
from cmf_common.kafka import KafkaPublisher
from cmf_common.metadata_events import SOURCE
from cmf_common.migrations import migrate
from cmf_common.outbox import add_events
from cmf_common.ports import Message
from cmf_common.relay import OutboxRelay
from cmf_metadata.app import MIGRATIONS
from cmf_testing.databases import with_database
from cmf_testing.generator import push_body_bytes

START, END = "<!-- relay:start -->", "<!-- relay:end -->"
NAME = "relay"
TARGET_EVENTS_S = 10_000
TARGET_P99_S = 0.200
EVENT_BYTES = 1024
SUBJECTS = 1000
EVENTS_PER_CALL = 25  # one add_events call: the events of one push of one pipeline
CALLS_PER_TRANSACTION = 2000
LATENCY_PIPELINES = 20
LATENCY_EXECUTIONS = 10
# OutboxRelay's own defaults for batch_rows and subjects_per_round, what a deployment runs.
_RELAY_DEFAULTS = inspect.signature(OutboxRelay).parameters
DEFAULT_KNOBS = (
    int(_RELAY_DEFAULTS["batch_rows"].default),
    int(_RELAY_DEFAULTS["subjects_per_round"].default),
)


def _say(message: str) -> None:
    progress(NAME, message)


# --- throughput -------------------------------------------------------------------------------


def _event_data(subject: str, k: int, pad: int) -> dict[str, Any]:
    """An artifact-upserted-like body; ``pad`` characters of note make the envelope ~1 KB."""
    uri = f"{random.getrandbits(128):032x}"
    return {
        "pipeline": subject,
        "artifacts": [
            {
                "id": k,
                "uri": uri,
                "type": "Dataset",
                "name": f"artifacts/step{k}/part0.tsv:{uri}",
                "properties": {
                    "Commit": uri,
                    "git_repo": "/srv/repo/cmf_git_remote.git",
                    "url": f"{subject}:/srv/cmf_local_storage/files/md5/{uri[:2]}/{uri[2:]}",
                },
                "custom_properties": {"note": "x" * pad},
                "create_time_since_epoch": 1_795_723_831_678 + k,
                "last_update_time_since_epoch": 1_795_723_831_678 + k,
            }
        ],
    }


def _envelope_bytes(subject: str, pad: int) -> int:
    sample = Envelope(
        id=str(uuid7()),
        type=event_type("artifact", "upserted"),
        source=SOURCE,
        subject=subject,
        time=datetime.now(UTC).isoformat(),
        seq=123_456,
        data=_event_data(subject, 123_456, pad),
    )
    return len(sample.to_json())


def _pad_for(subject: str) -> int:
    return max(0, EVENT_BYTES - _envelope_bytes(subject, 0))


async def fill_template(url: str, events: int) -> int:
    """The metadata schema and ``events`` outbox rows; returns their mean envelope size."""
    pool = await create_pool(url, "metadata", max_size=2)
    try:
        await migrate(pool, "metadata", MIGRATIONS)
        subjects = [f"bench-relay-{i:04d}" for i in range(SUBJECTS)]
        pads = {s: _pad_for(s) for s in subjects}
        written, k, started = 0, 0, time.perf_counter()
        while written < events:
            async with pool.acquire() as conn, conn.transaction():
                for _ in range(CALLS_PER_TRANSACTION):
                    if written >= events:
                        break
                    subject = subjects[k % SUBJECTS]
                    count = min(EVENTS_PER_CALL, events - written)
                    batch = [
                        NewEvent(
                            event_type("artifact", "upserted"),
                            _event_data(subject, k * EVENTS_PER_CALL + j, pads[subject]),
                        )
                        for j in range(count)
                    ]
                    await add_events(conn, subject=subject, source=SOURCE, events=batch)
                    written += count
                    k += 1
            _say(f"filled {written:,} of {events:,} ({time.perf_counter() - started:.0f} s)")
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE outbox")
            await conn.execute("VACUUM ANALYZE outbox_sequences")
            sizes = await conn.fetch(
                "SELECT id, subject, seq, type, source, time, data FROM outbox"
                " ORDER BY random() LIMIT 200"
            )
        return round(
            sum(
                len(
                    Envelope(
                        str(r["id"]),
                        r["type"],
                        r["source"],
                        r["subject"],
                        r["time"].isoformat(),
                        r["seq"],
                        r["data"],
                    ).to_json()
                )
                for r in sizes
            )
            / len(sizes)
        )
    finally:
        await pool.close()


class TimedPublisher:
    """The relay's publisher, with the time spent in ``publish`` added up."""

    def __init__(self, inner: KafkaPublisher) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    async def publish(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        try:
            await self.inner.publish(messages)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _sql_seconds() -> dict[str, float]:
    return {
        verb: _sample("cmf_db_query_duration_seconds_sum", {"verb": verb, "outcome": "ok"})
        for verb in ("BEGIN", "SELECT", "INSERT", "UPDATE", "DELETE", "COMMIT")
    }


@dataclass
class ThroughputRun:
    events: int
    seconds: float
    published_on_topic: int
    rounds: int
    publish_s: float
    sql_s: dict[str, float]
    load_before: float
    cpu_s: dict[str, float] = field(default_factory=dict)
    batch_rows: int = 0
    subjects_per_round: int = 0

    @property
    def events_s(self) -> float:
        return self.events / self.seconds


async def throughput_run(
    template: str, events: int, batch_rows: int, subjects_per_round: int
) -> ThroughputRun:
    async with (
        fresh_database("relay_run", template=template) as db,
        fresh_topic("relay") as topic,
    ):
        pool = await create_pool(with_database(ADMIN_URL, db), "metadata", min_size=2, max_size=4)
        kafka = KafkaPublisher(BOOTSTRAP)
        await kafka.start()
        publisher = TimedPublisher(kafka)
        try:
            relay = OutboxRelay(
                pool,
                publisher,
                topic=topic,
                batch_rows=batch_rows,
                subjects_per_round=subjects_per_round,
            )
            load_before = load_average()
            published_before = _sample("cmf_relay_published_total")
            sql_before = _sql_seconds()
            meter = CpuMeter([db])
            meter.start()
            stop = asyncio.Event()
            started = time.perf_counter()
            task = asyncio.create_task(relay.run(stop))
            while _sample("cmf_relay_published_total") - published_before < events:
                if task.done():
                    task.result()
                    raise RuntimeError("the relay stopped before publishing everything")
                await asyncio.sleep(0.05)  # collecting the registry costs CPU
            seconds = time.perf_counter() - started
            cpu = meter.stop()
            stop.set()
            await asyncio.wait_for(task, timeout=60)
            sql = {k: v - sql_before[k] for k, v in _sql_seconds().items()}
        finally:
            await kafka.stop()
            await pool.close()
        on_topic = await topic_size(topic)
    return ThroughputRun(
        events,
        seconds,
        on_topic,
        publisher.calls,
        publisher.seconds,
        sql,
        load_before,
        cpu,
        batch_rows,
        subjects_per_round,
    )


async def throughput(
    events: int, runs: int, batch_rows: int, subjects_per_round: int
) -> tuple[list[ThroughputRun], int]:
    async with fresh_database("relay_template") as template:
        _say(f"filling a template database with {events:,} events")
        mean_bytes = await fill_template(with_database(ADMIN_URL, template), events)
        _say(f"mean envelope {mean_bytes} bytes")
        done = []
        plan = [(batch_rows, subjects_per_round)] * runs
        if (batch_rows, subjects_per_round) != DEFAULT_KNOBS:
            plan.append(DEFAULT_KNOBS)  # once, for comparison
        for i, (rows, subjects) in enumerate(plan):
            await wait_for_low_load(NAME)
            run = await throughput_run(template, events, rows, subjects)
            _say(
                f"run {i + 1} ({rows}/{subjects}): {run.events:,} events in {run.seconds:.2f} s"
                f" = {run.events_s:,.0f}/s; on the topic {run.published_on_topic:,};"
                f" publish {run.publish_s:.2f} s in {run.rounds} rounds;"
                f" sql {', '.join(f'{k} {v:.2f} s' for k, v in run.sql_s.items() if v)}"
                f" (load {run.load_before:.2f}); cpu {run.cpu_s}"
            )
            done.append(run)
        return done, mean_bytes


# --- latency ----------------------------------------------------------------------------------


@dataclass
class LatencyRun:
    pushes: int
    push_failures: int
    events: int
    expected: int
    latencies_s: list[float] = field(default_factory=list)
    push_s: list[float] = field(default_factory=list)
    load_before: float = 0.0
    relay_histogram: dict[str, float] = field(default_factory=dict)


class Collector:
    """Reads every partition of ``topic`` from the start, stamping each record on arrival."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.arrivals: list[tuple[float, bytes]] = []
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None
        )

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batches.values():
                self.arrivals.extend((now, r.value) for r in records if r.value is not None)

    async def stop(self) -> None:
        await self.consumer.stop()


async def drive_pushes(
    base_url: str, rate_per_min: float, duration_s: float, prefix: str, first_seed: int
) -> tuple[list[float], int, dict[str, int]]:
    """Push 10-execution pipelines on a fixed schedule; returns the push times, failures and
    each pipeline's last consistency-token sequence."""
    interval = 60.0 / rate_per_min
    count = int(duration_s / interval)
    bodies = [(f"{prefix}-{i % LATENCY_PIPELINES:02d}", i + first_seed) for i in range(count)]
    seconds: list[float] = []
    failures = 0
    last_seq: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        begin = time.perf_counter()
        for i, (pipeline, seed) in enumerate(bodies):
            delay = begin + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = push_body_bytes(pipeline, LATENCY_EXECUTIONS, seed=seed)
            started = time.perf_counter()
            response = await client.post(
                "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
            )
            seconds.append(time.perf_counter() - started)
            token = response.headers.get("x-cmf-consistency-token")
            if response.status_code != 200 or token is None:
                failures += 1
                continue
            _, _, seq = token.rpartition(":")
            last_seq[pipeline] = max(last_seq.get(pipeline, 0), int(seq))
    return seconds, failures, last_seq


async def latency(rate: float, duration_s: float) -> LatencyRun:
    async with fresh_database("relay_latency") as db, fresh_topic("relay-latency") as topic:
        url = with_database(ADMIN_URL, db)
        server = Process(
            "relay-latency-server",
            ["up"],
            {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "EVENTS_TOPIC": topic},
        )
        relay = Process(
            "relay-latency-worker",
            ["worker", "relay"],
            {
                "METADATA_DATABASE_URL": url,
                "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                "EVENTS_TOPIC": topic,
            },
        )
        collector = Collector(topic)
        with running(server), running(relay):
            await collector.start()
            stop = asyncio.Event()
            task = asyncio.create_task(collector.run(stop))
            try:
                # Warm-up, not counted: connections, prepared statements, the producer.
                _, _, warm = await drive_pushes(server.url, 600, 5, "bench-warmup", 10_000)
                expected_warm = sum(warm.values())
                await until(lambda: len(collector.arrivals) >= expected_warm, 30)
                warm_count = len(collector.arrivals)
                await wait_for_low_load(NAME)
                load_before = load_average()
                warm_metrics = relay.metrics()
                _say(f"pushing {rate:g}/min for {duration_s:g} s")
                push_s, failures, last = await drive_pushes(
                    server.url, rate, duration_s, "bench-latency", 0
                )
                expected = sum(last.values())
                await until(lambda: len(collector.arrivals) - warm_count >= expected, 60)
            finally:
                stop.set()
                await task
                await collector.stop()
            metrics = relay.metrics()
        histogram = {  # the measured pushes' events alone
            k: v - warm_metrics.get(k, 0.0)
            for k, v in metrics.items()
            if k.startswith("cmf_relay_commit_to_publish")
        }
    latencies = []
    for arrived, value in collector.arrivals[warm_count:]:
        envelope = orjson.loads(value)
        latencies.append(arrived - datetime.fromisoformat(envelope["time"]).timestamp())
    return LatencyRun(
        pushes=len(push_s),
        push_failures=failures,
        events=len(latencies),
        expected=expected,
        latencies_s=latencies,
        push_s=push_s,
        load_before=load_before,
        relay_histogram=histogram,
    )


def _relay_share_within(histogram: dict[str, float], bound: str) -> str:
    """From the relay's own histogram: the share of events published within ``bound`` s."""
    total = sum(v for k, v in histogram.items() if k.endswith("_count"))
    within = sum(v for k, v in histogram.items() if f'le="{bound}"' in k)
    return f"{within / total:.1%}" if total else "—"


# --- report -----------------------------------------------------------------------------------


def _tuned(runs: list[ThroughputRun], args: argparse.Namespace) -> list[ThroughputRun]:
    knobs = (args.batch_rows, args.subjects_per_round)
    return [r for r in runs if (r.batch_rows, r.subjects_per_round) == knobs][: args.runs]


def render(
    info: dict[str, Any],
    tput: tuple[list[ThroughputRun], int] | None,
    lat: LatencyRun | None,
    args: argparse.Namespace,
) -> str:
    lines = [
        f"Measured {info['date']} on {info['cpu']}, {info['nproc']} CPUs (nproc), "
        f"{info['ram_bytes'] / 1024**3:.1f} GiB RAM, Linux {info['kernel']}; Python "
        f"{info['python']}; commit {info['commit']}. PostgreSQL {info['pg']} (Debian's), "
        "Kafka 4.3.1 (one KRaft node, 512 MiB heap), the relay and the benchmark all share the "
        "machine's 2 cores (`make services-up`), over loopback.",
        "",
        "| figure | ours | target | within target |",
        "|---|---:|---:|---|",
    ]
    if tput is not None:
        runs, mean_bytes = _tuned(tput[0], args), tput[1]
        rate = median([r.events_s for r in runs])
        lines.append(
            f"| relay throughput, {runs[0].events:,} events of {mean_bytes:,} bytes, median of "
            f"{len(runs)} | {rate:,.0f} events/s | ≥ {TARGET_EVENTS_S:,} events/s "
            f"| {'yes' if rate >= TARGET_EVENTS_S else '**no**'} |"
        )
    if lat is not None:
        p50, p99 = quantile(lat.latencies_s, 0.5), quantile(lat.latencies_s, 0.99)
        lines.append(
            f"| commit-to-publish p50 / p99 (to a consumer's receipt), {lat.events:,} events "
            f"| {ms(p50)} / {ms(p99)} | p99 ≤ {TARGET_P99_S * 1000:.0f} ms "
            f"| {'yes' if p99 <= TARGET_P99_S else '**no**'} |"
        )
    lines.append("")
    if tput is not None:
        runs, mean_bytes = _tuned(tput[0], args), tput[1]
        lines.append(
            f"Throughput: `OutboxRelay` (`batch_rows={args.batch_rows}`, "
            f"`subjects_per_round={args.subjects_per_round}`) with `KafkaPublisher` "
            "(idempotent, `acks=all`, `linger_ms=5`), in the benchmark's process, draining a "
            f"fresh copy of an outbox of {runs[0].events:,} unpublished events of "
            f"{SUBJECTS:,} pipelines into a fresh {PARTITIONS}-partition topic. Runs: "
            + "; ".join(
                f"{r.events_s:,.0f}/s ({r.seconds:.1f} s, {r.rounds} rounds, "
                f"{r.published_on_topic:,} on the topic, load {r.load_before:.2f})"
                for r in runs
            )
            + "."
        )
        defaults = [r for r in tput[0] if r not in runs]
        if defaults:
            d = defaults[0]
            lines[-1] += (
                f" With the defaults (`batch_rows={d.batch_rows}`, `subjects_per_round="
                f"{d.subjects_per_round}`), once: {d.events_s:,.0f}/s ({d.seconds:.1f} s, "
                f"{d.rounds} rounds, load {d.load_before:.2f}), claiming (`SELECT`) "
                f"{d.sql_s.get('SELECT', 0):.1f} s of it."
            )
        mid = sorted(runs, key=lambda r: r.events_s)[len(runs) // 2]
        sql = mid.sql_s
        lines += [
            "",
            f"Where the median run's {mid.seconds:.1f} s go: `publish` (the {mid.events:,} "
            "records handed to the producer as whole record batches, one run of batches per "
            f"partition, then awaiting the broker's acks) {mid.publish_s:.1f} s; claiming "
            "(`SELECT`: the waiting subjects and their advisory locks, their bounds, then their "
            f"rows by `seq` range) {sql.get('SELECT', 0):.1f} s; marking published (`INSERT … "
            f"ON CONFLICT`, one mark per subject) {sql.get('INSERT', 0):.2f} s; the rest "
            "(BEGIN/COMMIT, reading the rows, building the envelopes' JSON around the stored "
            "payload, the loop) "
            f"{mid.seconds - mid.publish_s - sum(sql.values()):.1f} s. CPU used meanwhile: "
            f"the relay's process {mid.cpu_s.get('bench', 0):.1f} s "
            f"({mid.cpu_s.get('bench', 0) / mid.events * 1e6:.0f} µs an event), its "
            f"PostgreSQL backends {mid.cpu_s.get('postgres', 0):.1f} s, the Kafka broker "
            f"{mid.cpu_s.get('kafka', 0):.1f} s; the whole machine (other work included) "
            f"{mid.cpu_s.get('machine', 0):.1f} s of the {2 * mid.seconds:.1f} s its 2 cores "
            "had.",
        ]
    if lat is not None:
        push_p50 = quantile(lat.push_s, 0.5)
        lines += [
            "",
            f"Latency: `cmf-server up` (metadata on a fresh database, Kafka configured) and "
            f"`cmf-server worker relay` (defaults: `batch_rows={DEFAULT_KNOBS[0]}`, "
            f"`subjects_per_round={DEFAULT_KNOBS[1]}`, woken by NOTIFY) as "
            f"processes; {lat.pushes} pushes of {LATENCY_EXECUTIONS} executions at "
            f"{args.rate:g}/min for {args.duration:g} s ({LATENCY_PIPELINES} pipelines in turn; "
            f"{lat.push_failures} failed; push p50 {ms(push_p50)}); {lat.events:,} events "
            f"received of {lat.expected:,} committed; per event, from its outbox `time` (set "
            "just before the push's COMMIT) to its arrival at a consumer of the topic "
            f"(load {lat.load_before:.2f}): p50 {ms(quantile(lat.latencies_s, 0.5))}, "
            f"p90 {ms(quantile(lat.latencies_s, 0.9))}, p99 "
            f"{ms(quantile(lat.latencies_s, 0.99))}, max {ms(max(lat.latencies_s))}. The "
            "relay's own `cmf_relay_commit_to_publish_seconds` (to the broker's ack) put "
            f"{_relay_share_within(lat.relay_histogram, '0.05')} of them within 50 ms and "
            f"{_relay_share_within(lat.relay_histogram, '0.2')} within 200 ms.",
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC)
    tput = lat = None
    if args.only in (None, "throughput"):
        tput = await throughput(args.events, args.runs, args.batch_rows, args.subjects_per_round)
    if args.only in (None, "latency"):
        lat = await latency(args.rate, args.duration)
    info = machine()
    info["date"] = f"{stamp:%Y-%m-%d %H:%M} UTC"
    info["pg"] = await server_version()
    section = render(info, tput, lat, args)
    print(section)
    OUT_DIR.mkdir(exist_ok=True)
    raw: dict[str, Any] = {"machine": info, "args": vars(args)}
    if tput is not None:
        raw["throughput"] = {"runs": [asdict(r) for r in tput[0]], "mean_bytes": tput[1]}
    if lat is not None:
        raw["latency"] = asdict(lat)
    (OUT_DIR / "relay.json").write_text(json.dumps(raw, indent=1))
    if not args.no_write:
        update_results(START, END, "Outbox relay", section)
        _say(f"updated {RESULTS.relative_to(REPO_DIR)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_KNOBS[0])
    parser.add_argument("--subjects-per-round", type=int, default=DEFAULT_KNOBS[1])
    parser.add_argument("--rate", type=float, default=200.0, help="pushes per minute")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of pushes")
    parser.add_argument("--only", choices=("throughput", "latency"), default=None)
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main_async(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
