"""The artifact service against S3 straight: 1 GiB up and down, a re-upload of a stored blob,
and many small blobs from concurrent clients (issue 13).

Runs ``cmf-server up`` (its own embedded PostgreSQL) with its artifacts in a fresh bucket of
the test S3 server (SeaweedFS, from ``make services-up``), and compares, in the same run and
against the same server:

- 1 GiB (``--size-mib``) streamed up (``PUT /api/native/v1/blobs/{md5}``) and down (``GET``)
  through the service, with httpx, against aioboto3's managed transfers (``upload_fileobj`` /
  ``download_fileobj``, its default 8 MiB parts, 10 in flight) straight to S3; the service's
  RSS is sampled every 50 ms during each;
- a re-upload of that stored blob: ``HEAD`` (the client then sends nothing), and a ``PUT`` with
  ``Expect: 100-continue`` over a raw socket (the answer comes before the body, which is never
  sent);
- ``--small`` (1,000) blobs of 10 KB from 16 concurrent clients, through the service and with
  aioboto3 ``put_object`` straight to S3;
- with ``--sweep 8x2,16x4,…``, the upload again on a fresh server per ``S3_PART_BYTES`` (MiB) x
  ``S3_PARTS_IN_FLIGHT`` setting, each into a bucket of its own, to choose the defaults by.

The machine is shared: the 1-minute load average is reported at the start and the end.

Figures are reported, never asserted: a section on stdout and in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
import httpx

from bench.results import update_results
from bench.run import machine
from bench.stack import Process, median, ms, running
from bench.streaming import (
    TIMEOUT,
    MiB,
    blob_url,
    download_aiohttp,
    make_file,
    s3_client,
    upload,
)
from cmf_testing.rss import RssPeak
from cmf_testing.s3 import TEST_S3, bucket_name, drop_bucket, require_s3


def say(message: str) -> None:
    print(f"[artifacts] {message}", flush=True)


async def expect_continue_put(url: str, path: str, size: int) -> tuple[int, float]:
    """``PUT`` with ``Expect: 100-continue`` over a raw socket: the status and the seconds to
    it. The body is sent only after a ``100 Continue``, which never comes for a stored blob."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n"
        "Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    elapsed = time.perf_counter() - started
    writer.close()
    return int(status_line.split()[1]), elapsed


async def small_blobs(count: int, size: int) -> list[tuple[str, bytes]]:
    blobs = []
    for _ in range(count):
        data = os.urandom(size)
        blobs.append((hashlib.md5(data).hexdigest(), data))
    return blobs


async def concurrently(items: list[Any], clients: int, work: Callable[[Any], Any]) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def client() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


def service_env(bucket: str, part_mib: int, in_flight: int) -> dict[str, str]:
    return {
        **TEST_S3.env(bucket),
        "S3_PART_BYTES": str(part_mib * MiB),
        "S3_PARTS_IN_FLIGHT": str(in_flight),
    }


async def sweep(
    path: Path, md5: str, size: int, settings: list[tuple[int, int]]
) -> list[dict[str, Any]]:
    """The upload on a fresh server per (part MiB, parts in flight), each its own bucket."""
    rows = []
    session = aioboto3.Session()
    for part_mib, in_flight in settings:
        bucket = bucket_name("cmf-sweep")
        server = Process("artifacts-sweep", ["up"], service_env(bucket, part_mib, in_flight))
        with running(server):
            assert server.proc is not None
            say(f"sweep: {part_mib} MiB parts, {in_flight} in flight")
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                with RssPeak(server.proc.pid, every_s=0.05) as rss:
                    seconds = await upload(http, server.url, path, md5, size)
            rows.append(
                {
                    "part_mib": part_mib,
                    "in_flight": in_flight,
                    "up": seconds,
                    "rss": rss.growth,
                    "load": os.getloadavg()[0],
                }
            )
        async with s3_client(session) as s3:
            await drop_bucket(s3, bucket)
    return rows


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    require_s3()
    bucket = bucket_name("cmf-bench")
    size = args.size_mib * MiB
    session = aioboto3.Session()
    say(f"writing a {args.size_mib} MiB file")
    path, md5 = make_file(size)
    figures: dict[str, Any] = {"size": size, "bucket": bucket, "load_start": os.getloadavg()[0]}
    server = Process("artifacts", ["up"], service_env(bucket, args.part_mib, args.in_flight))
    try:
        with running(server):
            assert server.proc is not None
            url = blob_url(server.url, md5)
            async with (
                httpx.AsyncClient(timeout=TIMEOUT) as http,
                aiohttp.ClientSession() as reader,
                s3_client(session) as s3,
            ):
                up_s, down_s, direct_up_s, direct_down_s, rss_up, rss_down = [], [], [], [], [], []
                for round_ in range(args.rounds):
                    # A stored blob is not sent again, so each round uploads a new one.
                    blob, blob_md5 = (path, md5) if round_ == 0 else make_file(size)
                    try:
                        say(f"round {round_ + 1}: {args.size_mib} MiB up and down, the service")
                        with RssPeak(server.proc.pid, every_s=0.05) as rss:
                            up_s.append(await upload(http, server.url, blob, blob_md5, size))
                        rss_up.append(rss.growth)
                        with RssPeak(server.proc.pid, every_s=0.05) as rss:
                            down_s.append(
                                await download_aiohttp(reader, server.url, blob_md5, size)
                            )
                        rss_down.append(rss.growth)
                        say(f"round {round_ + 1}: the same straight to S3 with aioboto3")
                        direct_up_s.append(await _direct_up(s3, bucket, blob))
                        direct_down_s.append(await _direct_down(s3, bucket, size))
                    finally:
                        if blob != path:
                            blob.unlink(missing_ok=True)
                figures.update(
                    up=median(up_s),
                    down=median(down_s),
                    direct_up=median(direct_up_s),
                    direct_down=median(direct_down_s),
                    rss_up=max(rss_up),
                    rss_down=max(rss_down),
                    rounds=args.rounds,
                )

                say("re-upload of the stored blob")
                heads, continues = [], []
                for _ in range(20):
                    started = time.perf_counter()
                    answer = await http.head(url)
                    heads.append(time.perf_counter() - started)
                    assert answer.status_code == 200
                    status, elapsed = await expect_continue_put(
                        server.url, f"/api/native/v1/blobs/{md5}", size
                    )
                    assert status == 200, status
                    continues.append(elapsed)
                figures.update(reupload_head=median(heads), reupload_expect=median(continues))

                say(f"{args.small} blobs of {args.small_kib} KiB, {args.clients} clients")
                blobs = await small_blobs(args.small, args.small_kib * 1024)

                async def through(item: tuple[str, bytes]) -> None:
                    answer = await http.put(
                        f"{server.url}/api/native/v1/blobs/{item[0]}", content=item[1]
                    )
                    assert answer.status_code == 201, answer.text

                figures["small_service"] = await concurrently(blobs, args.clients, through)
                direct = await small_blobs(args.small, args.small_kib * 1024)

                async def straight(item: tuple[str, bytes]) -> None:
                    await s3.put_object(Bucket=bucket, Key=f"small/{item[0]}", Body=item[1])

                figures["small_direct"] = await concurrently(direct, args.clients, straight)
                await drop_bucket(s3, bucket)
        if args.sweep:
            figures["sweep"] = await sweep(path, md5, size, args.sweep)
    finally:
        path.unlink(missing_ok=True)
    figures["load_end"] = os.getloadavg()[0]
    return figures


DIRECT_KEY = "direct/blob"


async def _direct_up(s3: Any, bucket: str, path: Path) -> float:
    """Seconds for aioboto3's managed upload of ``path`` (8 MiB parts, 10 in flight)."""
    started = time.perf_counter()
    with path.open("rb") as handle:
        await s3.upload_fileobj(handle, bucket, DIRECT_KEY)
    return time.perf_counter() - started


async def _direct_down(s3: Any, bucket: str, size: int) -> float:
    """Seconds for aioboto3's managed download of what ``_direct_up`` stored, then removed."""
    started = time.perf_counter()
    sink = _Sink()
    await s3.download_fileobj(bucket, DIRECT_KEY, sink)
    elapsed = time.perf_counter() - started
    assert sink.size == size
    await s3.delete_object(Bucket=bucket, Key=DIRECT_KEY)
    return elapsed


class _Sink:
    """A file-like object that counts what is written to it (a download thrown away)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def render(figures: dict[str, Any], args: argparse.Namespace) -> str:
    info = machine()
    size = figures["size"]

    def rate(seconds: float) -> str:
        return f"{size / MiB / seconds:,.0f} MiB/s"

    def share(ours: float, theirs: float) -> str:
        return f"{theirs / ours:.0%}"

    small = args.small
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['cpu']}, "
        f"{info['nproc']} CPUs, Python {info['python']}; commit {info['commit']}. The S3 server "
        "is SeaweedFS 4.48 (`weed server -s3`, from `make services-up`, signatures checked) on "
        "this machine; `cmf-server up` (embedded PostgreSQL) stores its artifacts in a fresh "
        f"bucket of it (`ARTIFACT_STORAGE_TYPE=s3`, `S3_PART_BYTES` {args.part_mib} MiB, "
        f"`S3_PARTS_IN_FLIGHT` {args.in_flight}); the client (httpx up; aiohttp, which aioboto3 "
        "uses too, down: httpx spends more CPU reading a stream than the service spends "
        f"serving it), the service and "
        f"SeaweedFS share the {info['nproc']} cores, and other work shares the machine: the "
        f"1-minute load average was {figures['load_start']:.2f} at the start and "
        f"{figures['load_end']:.2f} at the end. The big transfers: medians of "
        f"{figures['rounds']} rounds, each a new blob up and down through the service, then "
        "straight; RSS growth is the largest of the rounds.",
        "",
        f"| {args.size_mib} MiB | through the service | aioboto3 straight to S3 | service / direct "
        "| target | service RSS growth (target ≤ 64 MiB) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| up (`PUT /api/native/v1/blobs/{{md5}}`) | {rate(figures['up'])} "
        f"| {rate(figures['direct_up'])} | {share(figures['up'], figures['direct_up'])} "
        f"| ≥ 70% | {figures['rss_up'] / MiB:.0f} MiB |",
        f"| down (`GET`) | {rate(figures['down'])} | {rate(figures['direct_down'])} "
        f"| {share(figures['down'], figures['direct_down'])} | ≥ 70% "
        f"| {figures['rss_down'] / MiB:.0f} MiB |",
        "",
        "| re-upload of the stored blob (no body sent) | median of 20 | target |",
        "|---|---:|---:|",
        f"| `HEAD` first | {ms(figures['reupload_head'])} | ≤ 50 ms |",
        f"| `PUT` with `Expect: 100-continue` (answered 200 before the body) "
        f"| {ms(figures['reupload_expect'])} | ≤ 50 ms |",
        "",
        f"| {small:,} × {args.small_kib} KiB, {args.clients} concurrent clients | blobs/s |",
        "|---|---:|",
        f"| through the service (`PUT`, md5 checked, catalogued, event written) "
        f"| {small / figures['small_service']:,.0f} |",
        f"| aioboto3 `put_object` straight to S3 | {small / figures['small_direct']:,.0f} |",
    ]
    if figures.get("sweep"):
        lines += [
            "",
            f"The {args.size_mib} MiB upload again, a fresh server per setting (one run each, "
            "so read the differences against the load):",
            "",
            "| `S3_PART_BYTES` | `S3_PARTS_IN_FLIGHT` | up | RSS growth | load (1 min) |",
            "|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['part_mib']} MiB | {r['in_flight']} | {rate(r['up'])} "
            f"| {r['rss'] / MiB:.0f} MiB | {r['load']:.2f} |"
            for r in figures["sweep"]
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument(
        "--rounds", type=int, default=3, help="big transfers each way, each side (medians)"
    )
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--small-kib", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--part-mib", type=int, default=6, help="the server's S3_PART_BYTES")
    parser.add_argument("--in-flight", type=int, default=2, help="its S3_PARTS_IN_FLIGHT")
    parser.add_argument(
        "--sweep",
        type=lambda text: [tuple(int(n) for n in item.split("x")) for item in text.split(",")],
        default=None,
        help="also upload with each PART_MIBxIN_FLIGHT of a comma list (8x2,16x4)",
    )
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args))
    section = render(figures, args)
    print(section)
    if not args.no_write:
        update_results(
            "<!-- artifacts:start -->", "<!-- artifacts:end -->", "Artifacts (S3)", section
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
