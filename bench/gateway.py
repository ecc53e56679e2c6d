"""The gateway in distributed mode against calling the service directly (issue 16): the latency
it adds at 50 requests/s, the throughput it keeps at saturation, and 1 GiB up and down.

Runs, from ``cmf_server.topology``'s command lines, ``cmf-server serve metadata``, ``serve
artifacts`` (its blobs in a fresh bucket of the test S3 server, SeaweedFS) and ``serve gateway``
in front of them, each service on a fresh database of the shared PostgreSQL. The lineage
service is not run (its URL points nowhere): none of these routes is its.

- **Added latency**: ``GET /api/native/v1/pipelines?limit=20`` (a page read from PostgreSQL) sent
  at a steady ``--rate`` (50/s) for ``--seconds``, on one kept-alive connection, alternately to
  the metadata service and through the gateway (``--rounds`` times each); the p50 of each, and
  the difference; and the gateway process's CPU time (user and system) per request meanwhile,
  which the machine's load changes less than it changes latency.
- **Saturated throughput**: ``--clients`` connections sending that request back to back for
  ``--seconds``, direct and through the gateway.
- **1 GiB** (``--size-mib``): ``PUT`` and ``GET /api/native/v1/blobs/{md5}`` with httpx,
  through the gateway and straight to the artifact service, the gateway's RSS sampled.

The load generator is a small HTTP/1.1 client on raw asyncio streams (httpx would spend more CPU
per request than the gateway, on the same 2 cores). The 1-minute load average is recorded before
each part: the machine is shared. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import aioboto3
import httpx
import psutil

from bench.results import update_results
from bench.run import machine
from bench.stack import Process, fresh_database, ms, quantile
from bench.streaming import MiB, make_file, s3_client, transfer
from cmf_server import topology
from cmf_testing import databases
from cmf_testing.generator import push_body
from cmf_testing.rss import RssPeak
from cmf_testing.s3 import TEST_S3, bucket_name, drop_bucket, require_s3

PAGE = "/api/native/v1/pipelines?limit=20"
ADMIN_URL = os.environ.get("CMF_BENCH_DATABASE_URL", "postgresql://cmf:cmf@127.0.0.1:55432/cmf")


def say(message: str) -> None:
    print(f"[gateway] {message}", flush=True)


def load() -> float:
    return os.getloadavg()[0]


class RawClient:
    """One kept-alive HTTP/1.1 connection; ``get`` answers (status, seconds)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def get(self, path: str) -> tuple[int, float]:
        assert self.reader is not None and self.writer is not None
        started = time.perf_counter()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        status = int(head[9:12])
        if b"connection: close" in head.lower():
            await self.close()
            await self.open()
        return status, time.perf_counter() - started


def _cpu_s(process: psutil.Process) -> float:
    """The CPU seconds (user and system) ``process`` has used."""
    times = process.cpu_times()
    return float(times.user + times.system)


def _port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def paced(url: str, rate: float, seconds: float) -> list[float]:
    """``PAGE`` every ``1/rate`` s for ``seconds`` on one connection; each latency."""
    client = await RawClient(*_port(url)).open()
    latencies: list[float] = []
    try:
        for _ in range(10):  # warm the connection and the server's caches
            await client.get(PAGE)
        interval = 1.0 / rate
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status, elapsed = await client.get(PAGE)
            assert status == 200, status
            latencies.append(elapsed)
    finally:
        await client.close()
    return latencies


async def saturated(url: str, clients: int, seconds: float) -> float:
    """Requests/s of ``clients`` connections sending ``PAGE`` back to back."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        client = await RawClient(*_port(url)).open()
        try:
            while time.perf_counter() < deadline:
                status, _ = await client.get(PAGE)
                assert status == 200, status
                done += 1
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return done / (time.perf_counter() - started)


@contextmanager
def distributed(bucket: str, metadata_db: str, artifacts_db: str) -> Iterator[dict[str, Process]]:
    """The metadata and artifact services and the gateway, as topology runs them."""
    common = {"LOG_LEVEL": "WARNING", "REQUIRE_PRINCIPAL": "false"}
    metadata = Process(
        "metadata",
        topology.process(topology.METADATA).command,
        {**common, "METADATA_DATABASE_URL": metadata_db},
    )
    artifacts = Process(
        "artifacts",
        topology.process(topology.ARTIFACTS).command,
        {**common, "ARTIFACTS_DATABASE_URL": artifacts_db, **TEST_S3.env(bucket)},
    )
    metadata.env = {**metadata.env, "ARTIFACTS_URL": artifacts.url}
    artifacts.env = {**artifacts.env, "METADATA_URL": metadata.url}
    gateway = Process(
        "gateway",
        topology.process(topology.GATEWAY).command,
        {
            **common,
            "METADATA_URL": metadata.url,
            "ARTIFACTS_URL": artifacts.url,
            "LINEAGE_URL": "http://127.0.0.1:9",
            # The transport alone (bench.tokens measures the token check).
            "AUTH": "off-i-know",
        },
    )
    processes = {"metadata": metadata, "artifacts": artifacts, "gateway": gateway}
    with ExitStack() as stack:
        for process in processes.values():
            process.start()
            stack.callback(process.stop)
        yield processes


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    require_s3()
    bucket = bucket_name("cmf-bench-gateway")
    figures: dict[str, Any] = {}
    async with (
        fresh_database("gw_metadata") as metadata_name,
        fresh_database("gw_artifacts") as artifacts_name,
    ):
        metadata_db = databases.with_database(ADMIN_URL, metadata_name)
        artifacts_db = databases.with_database(ADMIN_URL, artifacts_name)
        with distributed(bucket, metadata_db, artifacts_db) as processes:
            direct, gateway = processes["metadata"].url, processes["gateway"].url
            async with httpx.AsyncClient(timeout=120) as http:
                for i in range(20):
                    body = push_body(f"bench-gateway-{i}", 10, seed=i)
                    pushed = await http.post(f"{gateway}/api/mlmd_push", json=body)
                    assert pushed.json() == {"status": "success"}, pushed.text
            say(f"{args.rate:g} req/s for {args.seconds:g} s, {args.rounds} rounds each")
            figures["load_latency"] = load()
            ours: list[float] = []
            theirs: list[float] = []
            assert processes["gateway"].proc is not None
            gateway_process = psutil.Process(processes["gateway"].proc.pid)
            cpu_s = 0.0
            for _ in range(args.rounds):
                theirs += await paced(direct, args.rate, args.seconds)
                before = _cpu_s(gateway_process)
                ours += await paced(gateway, args.rate, args.seconds)
                cpu_s += _cpu_s(gateway_process) - before
            figures["cpu_gateway"] = cpu_s / (len(ours) + 10 * args.rounds)  # the warm-up's too
            figures.update(
                p50_direct=quantile(theirs, 0.5),
                p50_gateway=quantile(ours, 0.5),
                p99_direct=quantile(theirs, 0.99),
                p99_gateway=quantile(ours, 0.99),
                requests=len(ours),
            )
            say(f"saturated: {args.clients} connections, {args.seconds:g} s each")
            figures["load_saturated"] = load()
            rates_direct, rates_gateway = [], []
            for _ in range(args.rounds):
                rates_direct.append(await saturated(direct, args.clients, args.seconds))
                rates_gateway.append(await saturated(gateway, args.clients, args.seconds))
            figures.update(rps_direct=max(rates_direct), rps_gateway=max(rates_gateway))

            size = args.size_mib * MiB
            # Two files: the second upload must not find its blob stored already.
            say(f"writing two {args.size_mib} MiB files")
            (path, md5), (other, other_md5) = make_file(size), make_file(size)
            try:
                figures["load_transfer"] = load()
                artifacts = processes["artifacts"].url
                say(f"{args.size_mib} MiB straight to the artifact service")
                figures["up_direct"], figures["down_direct"] = await transfer(
                    artifacts, md5, path, size
                )
                say(f"{args.size_mib} MiB through the gateway")
                assert processes["gateway"].proc is not None
                with RssPeak(processes["gateway"].proc.pid, every_s=0.05) as rss:
                    figures["up_gateway"], figures["down_gateway"] = await transfer(
                        gateway, other_md5, other, size
                    )
                figures["rss_gateway"] = rss.growth
            finally:
                path.unlink(missing_ok=True)
                other.unlink(missing_ok=True)
    async with s3_client(aioboto3.Session()) as s3:
        await drop_bucket(s3, bucket)
    figures["size"] = size
    return figures


def render(figures: dict[str, Any], args: argparse.Namespace) -> str:
    info = machine()
    size = figures["size"]

    def rate(seconds: float) -> str:
        return f"{size / MiB / seconds:,.0f} MiB/s"

    added = figures["p50_gateway"] - figures["p50_direct"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['cpu']}, "
        f"{info['nproc']} CPUs, Python {info['python']}; commit {info['commit']}. "
        "`cmf-server serve metadata`, `serve artifacts` and `serve gateway` (distributed mode, "
        "each service on a fresh database of the shared PostgreSQL, the blobs in a fresh "
        "SeaweedFS bucket), the load generator, PostgreSQL and SeaweedFS share the 2 cores; "
        f"1-minute load average before each part: {figures['load_latency']:.2f} (latency), "
        f"{figures['load_saturated']:.2f} (saturation), {figures['load_transfer']:.2f} (1 GiB).",
        "",
        f"| `GET {PAGE}` | direct to the metadata service | through the gateway "
        "| gateway − direct | target |",
        "|---|---:|---:|---:|---:|",
        f"| p50 at {args.rate:g} req/s ({figures['requests']:,} requests each) "
        f"| {ms(figures['p50_direct'])} | {ms(figures['p50_gateway'])} | {ms(added)} | ≤ 1 ms |",
        f"| p99 at {args.rate:g} req/s | {ms(figures['p99_direct'])} "
        f"| {ms(figures['p99_gateway'])} | {ms(figures['p99_gateway'] - figures['p99_direct'])} "
        "| |",
        f"| the gateway's CPU per request at {args.rate:g} req/s | "
        f"| {figures['cpu_gateway'] * 1000:.2f} ms | | |",
        f"| saturated, {args.clients} connections (req/s) | {figures['rps_direct']:,.0f} "
        f"| {figures['rps_gateway']:,.0f} "
        f"| {figures['rps_gateway'] / figures['rps_direct']:.0%} of direct | ≥ 60% |",
        "",
        f"| {args.size_mib} MiB (`/api/native/v1/blobs/{{md5}}`) | direct to the artifact service "
        "| through the gateway | gateway / direct | target |",
        "|---|---:|---:|---:|---:|",
        f"| up (`PUT`) | {rate(figures['up_direct'])} | {rate(figures['up_gateway'])} "
        f"| {figures['up_direct'] / figures['up_gateway']:.0%} | ≥ 80% |",
        f"| down (`GET`) | {rate(figures['down_direct'])} | {rate(figures['down_gateway'])} "
        f"| {figures['down_direct'] / figures['down_gateway']:.0%} | ≥ 80% |",
        f"| the gateway's RSS growth during both | | {figures['rss_gateway'] / MiB:.0f} MiB | | |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args))
    section = render(figures, args)
    print(section)
    if not args.no_write:
        update_results(
            "<!-- gateway:start -->", "<!-- gateway:end -->", "Gateway (distributed mode)", section
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
