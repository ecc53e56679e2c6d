"""What the event-backbone benchmarks (``bench.relay``, ``bench.projection``) share: fresh
databases on the shared PostgreSQL, fresh Kafka topics, ``cmf-server`` processes (``up`` and
``worker relay|lineage``) with their /metrics, percentiles, and the RESULTS.md sections.

Every resource made here is removed on exit: databases dropped, topics deleted, processes
stopped by their own pid (SIGTERM, then SIGKILL only if they do not exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.run import OUT_DIR, _cmf_server, spawn, terminate, wait_ready
from cmf_testing import databases
from cmf_testing.network import free_port

ADMIN_URL = os.environ.get("CMF_BENCH_DATABASE_URL", "postgresql://cmf:cmf@127.0.0.1:55432/cmf")
BOOTSTRAP = os.environ.get("CMF_BENCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
NEO4J_URI = os.environ.get("CMF_BENCH_NEO4J_URI", "bolt://127.0.0.1:7687")
NEO4J_USER = os.environ.get("CMF_BENCH_NEO4J_USER", "neo4j")
NEO4J_PASSWORD = os.environ.get("CMF_BENCH_NEO4J_PASSWORD", "cmf")
# The production topic has 6 partitions (scripts/services.sh); fresh topics get as many.
PARTITIONS = 6
# Settings of ours that must not leak from the shell into the processes we start.
OURS = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "EVENTS_TOPIC", "NEO4J_", "LINEAGE_CONSUMER")


def progress(name: str, message: str) -> None:
    print(f"[{name}] {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def fresh_database(prefix: str, template: str | None = None) -> AsyncIterator[str]:
    """A new database on the shared PostgreSQL (a copy of ``template`` if given), dropped after."""
    async with databases.fresh_database(
        f"cmf_bench_{prefix}", template=template, admin_url=ADMIN_URL
    ) as name:
        yield name


async def server_version() -> str:
    return await databases.server_version(ADMIN_URL)


@contextlib.asynccontextmanager
async def fresh_topic(prefix: str, partitions: int = PARTITIONS) -> AsyncIterator[str]:
    """A new topic (and its ``.dlq``), deleted after."""
    name = f"bench.{prefix}.{uuid.uuid4().hex[:8]}"
    client = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await client.start()
    try:
        await client.create_topics(
            [NewTopic(name, partitions, 1), NewTopic(f"{name}.dlq", 1, 1)], timeout_ms=30_000
        )
        yield name
    finally:
        with contextlib.suppress(Exception):
            await client.delete_topics([name, f"{name}.dlq"], timeout_ms=30_000)
        await client.close()


async def topic_size(topic: str, partitions: int = PARTITIONS) -> int:
    """How many records ``topic`` holds (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


# --- cmf-server processes ---------------------------------------------------------------------


def _clean_env(env: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not any(s in k for s in OURS)}
    base.update({"LOG_JSON": "true", "LOG_LEVEL": "INFO"})
    base.update(env)
    return base


@dataclass
class Process:
    """``cmf-server <args>`` in its own session, logging to ``bench/out/<name>-<time>.log``."""

    name: str
    args: Sequence[str]
    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0, ready: str = "/livez") -> None:
        OUT_DIR.mkdir(exist_ok=True)
        self.log_path = OUT_DIR / f"{self.name}-{time.strftime('%H%M%S')}.log"
        args = [*self.args, "--host", "127.0.0.1", "--port", str(self.port)]
        if self.args[0] == "up":
            self.data_dir = Path(tempfile.mkdtemp(prefix="cmf-bench-", dir="/var/tmp"))
            args += ["--data-dir", str(self.data_dir)]
        self.proc = spawn([_cmf_server(), *args], _clean_env(self.env), self.log_path)
        if wait_ready(
            self.proc,
            self.url + ready,
            timeout_s,
            lambda code: f"{self.name} exited ({code}):\n{self.tail()}",
        ):
            return
        self.stop()
        raise RuntimeError(f"{self.name} was not ready in {timeout_s:g} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def metrics(self) -> dict[str, float]:
        """The process's /metrics: ``name{labels}`` -> value."""
        text = httpx.get(self.url + "/metrics", timeout=5.0).text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    found[key] = float(value)
        return found

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        if self.data_dir is not None:
            import shutil

            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    process.start()
    try:
        yield process
    finally:
        process.stop()


def metric_sum(metrics: Mapping[str, float], name: str) -> float:
    """The sum of a metric's samples over its labels."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


# --- figures ----------------------------------------------------------------------------------


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 < q < 1) of ``samples``, interpolated (numpy's default)."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def ms(seconds: float) -> str:
    value = seconds * 1000
    if abs(value) >= 100:
        return f"{value:,.0f} ms"
    return f"{value:.1f} ms" if abs(value) >= 10 else f"{value:.2f} ms"


class CpuMeter:
    """CPU seconds used between ``start`` and ``stop``: this process, the PostgreSQL backends of
    one database, the Kafka broker, the Neo4j server, and the whole machine (busy)."""

    KAFKA_PID = Path("/var/tmp/cmf-server-services/kafka/kafka.pid")
    NEO4J_PID = Path("/var/tmp/cmf-server-services/neo4j/neo4j.pid")

    def __init__(self, databases: Sequence[str] = (), pids: Mapping[str, int] | None = None):
        self.databases = tuple(databases)
        self.pids = dict(pids or {})
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self._seen: dict[tuple[str, int], float] = {}  # last reading of each process

    def _procs(self) -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {"bench": [psutil.Process()]}
        for name, pid in self.pids.items():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                found[name] = [root, *root.children(recursive=True)]
        for name, path in (("kafka", self.KAFKA_PID), ("neo4j", self.NEO4J_PID)):
            with contextlib.suppress(OSError, ValueError, psutil.Error):
                found[name] = [psutil.Process(int(path.read_text().split()[0]))]
        backends = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] == "postgres" and any(
                f" {d} " in f"{cmdline} " for d in self.databases
            ):
                backends.append(proc)
        found["postgres"] = backends
        return found

    def _read(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, procs in self._procs().items():
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    self._seen[(name, proc.pid)] = t.user + t.system
            totals[name] = sum(v for (n, _), v in self._seen.items() if n == name)
        machine = psutil.cpu_times()
        totals["machine"] = (
            machine.user + machine.system + machine.nice + machine.irq + machine.softirq
        )
        return totals

    def start(self) -> None:
        """From now on; a process that appears later counts from its own start."""
        self._seen = {}
        self.before = self._read()

    def sample(self) -> None:
        """Call during the run too, so short-lived processes are seen before they exit."""
        self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        self.used = {k: round(after[k] - self.before.get(k, 0.0), 2) for k in after}
        return self.used


def load_average() -> float:
    return os.getloadavg()[0]


async def wait_for_low_load(name: str, limit: float = 1.5, patience_s: float = 30.0) -> float:
    """Wait (up to ``patience_s``) until the 1-minute load average is under ``limit``."""
    deadline = time.monotonic() + patience_s
    while load_average() > limit and time.monotonic() < deadline:
        progress(name, f"load average {load_average():.2f} > {limit}; waiting")
        await asyncio.sleep(15)
    return load_average()


async def until(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    """Whether ``condition`` became true within ``timeout_s`` (checked every ``step_s``)."""
    for _ in range(max(1, int(timeout_s / step_s))):
        if condition():
            return True
        await asyncio.sleep(step_s)
    return condition()


def others_using_neo4j() -> list[str]:
    """Other processes that look like lineage tests or benchmarks (they may wipe the graph)."""
    mine = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        mine |= {p.pid for p in psutil.Process().children(recursive=True)}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] not in mine and "python" in cmdline and "lineage" in cmdline:
            found.append(cmdline[:160])
    return found
