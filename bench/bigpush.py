"""A big push beside everyone else: the 50,000-execution push, before and after.

    python -m bench.bigpush [--executions 50000] [--repeat 3] [--baseline /work/wt-base]

For each checkout (this one, and ``--baseline``: another clone or worktree, e.g. of main as it
was, with its own venv from ``make install``), ``--repeat`` times: start ``cmf-server up`` of that
checkout on a fresh data dir (its own embedded PostgreSQL), push a small pipeline, then push one
client-shaped pipeline of ``--executions`` executions (``cmf_testing.generator``) while a probe
sends small requests one after the other (a listing, a small pull, a lineage tree, ``/livez``,
in turn), and measure: the push's time and status, the server's peak RSS during it (the
cmf-server process and its children, PostgreSQL apart; bench.run's sampler), and the probe's
latencies while the push was in flight. Figures are medians over the repeats; written to the
``bigpush`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.results import update_results
from bench.run import OUT_DIR, REPO_DIR, MemorySampler, Server, machine
from bench.stack import load_average, median, ms, quantile
from cmf_testing.generator import push_body_bytes

MIB = 1024 * 1024
PROBE_GAP_S = 0.02  # between two probe requests
SLOW_S = 0.1  # a probe request slower than this is listed in the raw figures


def progress(message: str) -> None:
    print(f"[bigpush] {message}", file=sys.stderr, flush=True)


# --- checkouts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    """A clone whose ``cmf-server`` a benchmark runs: its path, label and commit."""

    path: Path
    label: str

    @property
    def binary(self) -> str:
        venv = subprocess.run(
            ["make", "-s", "-C", str(self.path), "venv-path"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        binary = Path(venv) / "bin" / "cmf-server"
        if not binary.exists():
            raise SystemExit(f"{binary} not found: run `make install` in {self.path}")
        return str(binary)

    @property
    def commit(self) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()


def checkouts(baseline: str | None) -> list[Checkout]:
    """``--baseline`` (labelled before) and this clone (after)."""
    found = []
    if baseline:
        found.append(Checkout(Path(baseline).resolve(), "before"))
    found.append(Checkout(REPO_DIR, "after"))
    return found


@contextlib.contextmanager
def embedded_server(checkout: Checkout, name: str) -> Iterator[Server]:
    """``cmf-server up`` of ``checkout`` on a fresh data dir, removed after."""
    OUT_DIR.mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="cmf-bench-", dir="/var/tmp"))
    data_dir.chmod(0o755)  # as root, PostgreSQL runs as a system user that must enter it
    stamp = datetime.now(UTC)
    log_path = OUT_DIR / f"{name}-{checkout.label}-{stamp:%Y%m%dT%H%M%S}.log"
    server = Server(data_dir, log_path, binary=checkout.binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


def machine_line() -> str:
    m = machine()
    return (
        f"{m['cpu']}, {m['nproc']} CPUs (nproc), {m['ram_bytes'] / 2**30:.1f} GiB RAM, "
        f"Linux {m['kernel']}; Python {m['python']}"
    )


def measured(commits: dict[str, str]) -> str:
    """The first line of a before/after section: when, where, which commits."""
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine_line()}; other agents were "
        "loading the machine meanwhile (the 1-minute load average when each run began is "
        "given). " + "; ".join(f"{label}: commit {commit}" for label, commit in commits.items())
    ) + "."


def before_after_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", help="another checkout to measure too, labelled before")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")


def record(name: str, runs: list[Any], section: str, title: str, *, write: bool) -> None:
    """The raw figures to ``bench/out/<name>-<time>.json``, the section to stdout and (unless
    not ``write``) to the ``<name>`` section of RESULTS.md."""
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps([asdict(r) for r in runs], indent=1)
    )
    print(section)
    if write:
        update_results(f"<!-- {name}:start -->", f"<!-- {name}:end -->", title, section)


# --- the probe --------------------------------------------------------------------------------


@dataclass
class Probe:
    """Small requests, one after the other, until stopped: their latencies and failures."""

    paths: list[str]
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    slow: list[tuple[float, str, float]] = field(default_factory=list)  # (at, path, latency)

    async def run(self, base_url: str, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=120.0) as client:
            turn, began = 0, time.perf_counter()
            while not stop.is_set():
                path = self.paths[turn % len(self.paths)]
                turn += 1
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    if response.status_code >= 500:
                        self.failures.append(f"{path}: {response.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {exc!r}")
                latency = time.perf_counter() - started
                self.latencies.append(latency)
                if latency > SLOW_S:
                    self.slow.append((round(started - began, 2), path, round(latency, 3)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PROBE_GAP_S)


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    repeat: int
    body_bytes: int
    push_s: float = 0.0
    status: int = 0
    answer: str = ""
    server_rss: int = 0
    pg_rss: int = 0
    probes: int = 0
    probe_p50: float = 0.0
    probe_p99: float = 0.0
    probe_max: float = 0.0
    probe_failures: list[str] = field(default_factory=list)
    probe_slow: list[tuple[float, str, float]] = field(default_factory=list)
    load: float = 0.0


def _small_pipeline(client: httpx.Client) -> tuple[str, str]:
    """Push a small pipeline for the probe to read; its name and its last execution's uuid."""
    name = "bigpush-probe"
    body = push_body_bytes(name, 10)
    response = client.post("/api/mlmd_push", content=body)
    response.raise_for_status()
    decoded = json.loads(json.loads(body)["json_payload"])
    last = decoded["Pipeline"][0]["stages"][-1]["executions"][-1]
    return name, str(last["properties"]["Execution_uuid"])


async def _push_with_probe(server: Server, body: bytes, probe: Probe) -> tuple[float, int, str]:
    stop = asyncio.Event()
    task = asyncio.create_task(probe.run(server.url, stop))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=1800.0) as client:
            started = time.perf_counter()
            response = await client.post(
                "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
            )
            elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await task
    return elapsed, response.status_code, response.text[:200]


def measure(checkout: Checkout, repeat: int, body: bytes) -> Run:
    run = Run(checkout.label, repeat, len(body))
    with embedded_server(checkout, "bigpush") as server:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            name, uuid = _small_pipeline(client)
        probe = Probe(
            [
                f"/api/executions-by-stage/{name}?page=1",
                f"/api/mlmd_pull/{name}",
                f"/api/execution-lineage/tangled-tree/{uuid[:4]}/{name}",
                "/livez",
            ]
        )
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            for path in probe.paths:  # warm: the first request of each is not the push's doing
                client.get(path)
        sampler = MemorySampler(server)
        sampler.start()
        run.load = load_average()
        try:
            sampler.reset()
            run.push_s, run.status, run.answer = asyncio.run(_push_with_probe(server, body, probe))
            peaks = sampler.peaks()
        finally:
            sampler.halt()
        run.server_rss, run.pg_rss = peaks["server"], peaks["pg_rss"]
    run.probes = len(probe.latencies)
    if probe.latencies:
        run.probe_p50 = quantile(probe.latencies, 0.5)
        run.probe_p99 = quantile(probe.latencies, 0.99)
        run.probe_max = max(probe.latencies)
    run.probe_failures = probe.failures[:10]
    run.probe_slow = probe.slow
    return run


# --- reporting --------------------------------------------------------------------------------


def _med(runs: list[Run], key: Callable[[Run], float]) -> float:
    return median([key(r) for r in runs])


def render(runs: list[Run], executions: int, repeat: int, commits: dict[str, str]) -> str:
    body = runs[0].body_bytes if runs else 0
    lines = [
        measured(commits),
        "",
        f"One push of a new client-shaped pipeline of {executions:,} executions "
        f"({body / 1e6:.1f} MB body, `cmf_testing.generator`) into `cmf-server up` on a fresh "
        "data dir, while a probe sends small requests one after the other (a listing page, the "
        "pull of a 10-execution pipeline, its tangled execution tree, `/livez`). Median of "
        f"{repeat} runs, each on a fresh server. `server RSS` is the peak of the cmf-server "
        "process and its children (PostgreSQL apart) during the push; the probe's figures are "
        "its requests' latencies while the push was in flight.",
        "",
        "| code | push | answer | server RSS (peak) | RSS / body | postgres RSS | probe requests "
        "| probe p50 | probe p99 | probe max | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in dict.fromkeys(r.label for r in runs):
        mine = [r for r in runs if r.label == label]
        answers = ", ".join(sorted({f"{r.status} {r.answer[:40]}" for r in mine}))
        rss = _med(mine, lambda r: r.server_rss)
        lines.append(
            f"| {label} | {_med(mine, lambda r: r.push_s):.1f} s | `{answers}` "
            f"| {rss / MIB:,.0f} MiB | {rss / max(body, 1):.1f}× "
            f"| {_med(mine, lambda r: r.pg_rss) / MIB:,.0f} MiB "
            f"| {_med(mine, lambda r: r.probes):,.0f} | {ms(_med(mine, lambda r: r.probe_p50))} "
            f"| {ms(_med(mine, lambda r: r.probe_p99))} | {ms(_med(mine, lambda r: r.probe_max))} "
            f"| {_med(mine, lambda r: r.load):.1f} |"
        )
    failures = [f"{r.label} r{r.repeat}: {f}" for r in runs for f in r.probe_failures]
    if failures:
        lines += ["", "Probe failures:", ""] + [f"* {f}" for f in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bigpush", description=__doc__)
    parser.add_argument("--executions", type=int, default=50_000)
    before_after_arguments(parser)
    args = parser.parse_args(argv)
    body = push_body_bytes(f"bigpush-{args.executions}", args.executions)
    progress(f"body {len(body) / 1e6:.1f} MB")
    runs: list[Run] = []
    commits = {}
    targets = checkouts(args.baseline)
    for repeat in range(args.repeat):
        for checkout in targets:  # interleaved, so both see the same load
            commits[checkout.label] = checkout.commit
            run = measure(checkout, repeat, body)
            progress(
                f"{checkout.label} r{repeat}: push {run.push_s:.1f} s ({run.status}), server "
                f"{run.server_rss / MIB:,.0f} MiB, probe p99 {ms(run.probe_p99)} max "
                f"{ms(run.probe_max)} ({run.probes} requests), load {run.load:.1f}"
            )
            runs.append(run)
    section = render(runs, args.executions, args.repeat, commits)
    record("bigpush", runs, section, "A big push beside everyone else", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
