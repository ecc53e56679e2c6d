"""The /api/native/v1 query benchmark: executions pages with property filters on 100,000 executions.

    python -m bench.api_v1 [--requests 300] [--only debian|embedded] [--no-write]

For each PostgreSQL — Debian's (``make services-up``; a fresh database made for the run and
dropped after) and the embedded server's own (a fresh data dir) — it starts ``cmf-server up``
(``bench.run.Server``), seeds ten pipelines with one 10,000-execution push each from the
generator (``bench.seed --distinct``, four stages of 2,500), waits until the server is idle and
the machine's 1-minute load average is under 1 (up to 15 minutes), then times requests one at
a time over loopback. The figure with a target is a page of 100 executions filtered by a
property (``Context_Type``: one stage of one pipeline, 2,500 matches among 100,000), each
request another pipeline and another page depth (its keyset cursor); the others show what
broader or other queries cost. It reports p50/p95/p99, prints a markdown section and writes it
into ``bench/RESULTS.md`` between the ``api-v1`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.listings import (
    STORE_NAMES,
    WARMUP,
    Timing,
    add_store_arguments,
    against_target,
    measured_on,
    ms,
    on_each_store,
    postgres_version,
    seeding,
    server_on,
    time_scenarios,
    wait_until_idle,
    write_raw,
)
from bench.results import RESULTS, update_results
from bench.run import REPO_DIR, machine
from bench.seed import seed

START, END = "<!-- api-v1:start -->", "<!-- api-v1:end -->"
PIPELINE = "bench-v1"
PUSHES, EXECUTIONS, STAGES = 10, 10_000, 4
TARGET_MS = 20.0
PAGE = 100
DEPTHS = 10  # pages of each pipeline's stage the target figure visits (cursors collected first)
QUIET_LOAD, QUIET_TIMEOUT_S = 1.0, 900.0

Request = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    matches: str
    request: Callable[[int], Request]  # i -> (path, params)
    target_ms: float | None = None
    share: float = 1.0  # of --requests


@dataclass
class Run:
    database: str
    pg_version: str
    pushes_s: list[float]
    timings: dict[str, Timing]
    load_before: float
    export: dict[str, float]


def _progress(message: str) -> None:
    print(f"[api-v1] {message}", file=sys.stderr, flush=True)


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    response = client.get(path, params=params)
    response.raise_for_status()
    return response.json()


def pipelines(pushes: int) -> list[str]:
    return [f"{PIPELINE}-{k:02d}" for k in range(pushes)]


@dataclass(frozen=True)
class Samples:
    """What the scenarios ask for, found by walking the seeded data first."""

    stage_pages: list[tuple[str, str | None]]  # (pipeline, cursor of a page of its Train stage)
    newest_pages: list[str | None]  # cursors of pages newest first
    execution_ids: list[int]
    uuid_prefixes: list[tuple[str, str]]  # (pipeline, first uuid segment)
    artifact_uris: list[str]


def collect(client: httpx.Client, names: list[str]) -> Samples:
    stage_pages: list[tuple[str, str | None]] = []
    execution_ids: list[int] = []
    prefixes: list[tuple[str, str]] = []
    uris: list[str] = []
    for name in names:
        cursor = None
        for _ in range(DEPTHS):
            stage_pages.append((name, cursor))
            params: dict[str, Any] = {"property": f"Context_Type:{name}/Train", "limit": PAGE}
            body = _get(client, "/api/native/v1/executions", {**params, **_cursor(cursor)})
            execution_ids += [e["id"] for e in body["items"][::25]]
            prefixes += [(name, e["uuid"].split("-")[0]) for e in body["items"][::50]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        body = _get(client, "/api/native/v1/artifacts", {"pipeline": name, "type": "Dataset"})
        uris += [a["uri"] for a in body["items"][::10]]
    newest: list[str | None] = [None]
    for _ in range(DEPTHS * 2):
        body = _get(
            client,
            "/api/native/v1/executions",
            {"sort": "-original_create_time_since_epoch", "limit": PAGE, **_cursor(newest[-1])},
        )
        newest.append(body["next_cursor"])
    return Samples(stage_pages, newest[:-1], execution_ids, prefixes, uris)


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


def scenarios(samples: Samples, pushes: int, executions: int) -> list[Scenario]:
    total = pushes * executions
    per_stage = executions // STAGES

    def stage_page(i: int) -> Request:
        name, cursor = samples.stage_pages[i % len(samples.stage_pages)]
        params = {"property": f"Context_Type:{name}/Train", "limit": PAGE, **_cursor(cursor)}
        return "/api/native/v1/executions", params

    def newest(i: int) -> Request:
        cursor = samples.newest_pages[i % len(samples.newest_pages)]
        params = {"sort": "-original_create_time_since_epoch", "limit": PAGE, **_cursor(cursor)}
        return "/api/native/v1/executions", params

    def text(i: int) -> Request:
        name, prefix = samples.uuid_prefixes[i % len(samples.uuid_prefixes)]
        return "/api/native/v1/executions", {"pipeline": name, "q": prefix, "limit": PAGE}

    names = pipelines(pushes)
    return [
        Scenario(
            "property_stage",
            "`/api/native/v1/executions`, `property=Context_Type:<pipeline>/Train`, 100 a page, "
            f"pages 1–{DEPTHS} by cursor, total counted",
            f"{per_stage:,} of {total:,}",
            stage_page,
            TARGET_MS,
        ),
        Scenario(
            "property_selective",
            "`/api/native/v1/executions`, `property=step:<n>` (an integer), total counted",
            f"{pushes} of {total:,}",
            lambda i: ("/api/native/v1/executions", {"property": f"step:{i % executions}"}),
            share=0.5,
        ),
        Scenario(
            "property_and_pipeline",
            "`/api/native/v1/executions`, `pipeline=<p>`, `property=Context_Type:<p>/Train`"
            " and `property=split:0.2`",
            f"{per_stage:,} of {total:,}",
            lambda i: (
                "/api/native/v1/executions",
                {
                    "pipeline": names[i % len(names)],
                    "property": [f"Context_Type:{names[i % len(names)]}/Train", "split:0.2"],
                },
            ),
            share=0.5,
        ),
        Scenario(
            "property_broad",
            "`/api/native/v1/executions`, `property=split:0.2` (every execution), total counted",
            f"{total:,} of {total:,}",
            lambda i: ("/api/native/v1/executions", {"property": "split:0.2"}),
            share=0.2,
        ),
        Scenario(
            "newest",
            "`/api/native/v1/executions`, no filter, newest first (the client's time), "
            "pages by cursor",
            f"{total:,} of {total:,}",
            newest,
            share=0.5,
        ),
        Scenario(
            "text_in_pipeline",
            "`/api/native/v1/executions`, `pipeline=<p>&q=<uuid prefix>` (free text)",
            f"1 of {executions:,} in the pipeline",
            text,
            share=0.1,
        ),
        Scenario(
            "execution",
            "`/api/native/v1/executions/{id}` (its 5 events with their artifacts)",
            "1",
            lambda i: (
                "/api/native/v1/executions/"
                + str(samples.execution_ids[i % len(samples.execution_ids)]),
                {},
            ),
            share=0.5,
        ),
        Scenario(
            "artifacts_pipeline",
            "`/api/native/v1/artifacts`, `pipeline=<p>&type=Dataset`, 100 a page, total counted",
            f"{2 * (executions + 1):,} of {pushes * (2 * executions + 3):,}",
            lambda i: (
                "/api/native/v1/artifacts",
                {"pipeline": names[i % len(names)], "type": "Dataset"},
            ),
            share=0.5,
        ),
        Scenario(
            "artifact_uri",
            "`/api/native/v1/artifacts?uri=<md5>` (the artifact service's lookup)",
            "1",
            lambda i: (
                "/api/native/v1/artifacts",
                {"uri": samples.artifact_uris[i % len(samples.artifact_uris)]},
            ),
            share=0.5,
        ),
    ]


def time_export(client: httpx.Client) -> dict[str, float]:
    """The whole store through GET /api/native/v1/export, 1,000 lines a page."""
    lines = pages = 0
    size = 0
    cursor = None
    started = time.perf_counter()
    while True:
        with client.stream(
            "GET", "/api/native/v1/export", params={"limit": 1000, **_cursor(cursor)}
        ) as r:
            r.raise_for_status()
            page = 0
            last = ""
            for line in r.iter_lines():
                page += 1
                size += len(line.encode()) + 1
                last = line
        pages += 1
        lines += page
        if page < 1000:
            break
        cursor = json.loads(last)["export_cursor"]
    return {"seconds": time.perf_counter() - started, "lines": lines, "bytes": size, "pages": pages}


def bench_one(
    database: str,
    database_url: str | None,
    requests: int,
    data_root: str,
    pushes: int = PUSHES,
    executions: int = EXECUTIONS,
) -> Run:
    """Seed a fresh server on one PostgreSQL and time every scenario on it."""
    with server_on(database_url, data_root) as server:
        pg_version = postgres_version(server, database_url)
        _progress(f"{database}: server on {server.url}; seeding {pushes} x {executions:,}")
        seeded = seed(
            server.url,
            pushes=pushes,
            executions=executions,
            pipeline=PIPELINE,
            distinct=True,
            stages=STAGES,
        )
        _progress(f"{database}: waiting until the server is idle")
        wait_until_idle(server)
        with httpx.Client(base_url=server.url, timeout=300) as client:
            samples = collect(client, pipelines(pushes))
            load_before = wait_for_quiet_machine(database)
            timings = time_scenarios(
                client,
                scenarios(samples, pushes, executions),
                requests,
                lambda message: _progress(f"{database}: {message}"),
            )
            export = time_export(client)
            _progress(f"{database}: export {export}")
    return Run(database, pg_version, [p.seconds for p in seeded], timings, load_before, export)


def wait_for_quiet_machine(database: str, timeout_s: float = QUIET_TIMEOUT_S) -> float:
    """Until the 1-minute load average (which seeding itself raised) is under 1; returns it."""
    deadline = time.monotonic() + timeout_s
    load = os.getloadavg()[0]
    if load >= QUIET_LOAD:
        _progress(f"{database}: waiting for a 1-minute load average under {QUIET_LOAD:g}")
    while load >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    if load >= QUIET_LOAD:
        _progress(f"{database}: the load average is still {load:.2f}; measuring anyway")
    return load


def render(
    info: dict[str, Any], runs: list[Run], requests: int, pushes: int, executions: int
) -> str:
    names = STORE_NAMES
    dummy = Samples([("p", None)], [None], [1], [("p", "x")], ["u"])
    lines = [
        measured_on(info, runs),
        "",
        f"Data: {pushes} pipelines, each one push of {executions:,} executions in {STAGES} stages "
        f"(`bench/seed.py --distinct --stages {STAGES}`, `cmf_testing/generator.py`): "
        f"{pushes * executions:,} executions, {pushes * (2 * executions + 3):,} artifacts. "
        "The server is `cmf-server up` on each PostgreSQL, the client httpx over loopback, one "
        f"request at a time after {WARMUP} warm-up requests; {requests} requests for the figure "
        "with a target (fewer for the others), p50/p95/p99 of the whole request as the client "
        "saw it. Every `/api/native/v1` list answer includes the total count of its matches.",
        "",
        "| request | matches | PostgreSQL | n | p50 | p95 | p99 | target (p95) | within target |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in scenarios(dummy, pushes, executions):
        for run in runs:
            t = run.timings.get(scenario.key)
            if t is None:
                continue
            target, verdict = against_target(t, scenario.target_ms)
            lines.append(
                f"| {scenario.label} | {scenario.matches} | {names[run.database]} "
                f"| {len(t.samples)} | {ms(t.quantile(0.5))} | {ms(t.quantile(0.95))} "
                f"| {ms(t.quantile(0.99))} | {target} | {verdict} |"
            )
    lines += [
        "",
        "The whole store through `GET /api/native/v1/export` (1,000 lines a page, "
        "read by the client): "
        + "; ".join(
            f"{names[r.database]}: {r.export['lines']:,.0f} lines, "
            f"{r.export['bytes'] / 1e6:,.0f} MB in {r.export['seconds']:.1f} s "
            f"({r.export['bytes'] / 1e6 / r.export['seconds']:.0f} MB/s)"
            for r in runs
        )
        + ".",
        "",
        seeding(runs, executions) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_v1", description=__doc__)
    add_store_arguments(parser, PUSHES, EXECUTIONS)
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC)
    runs = on_each_store(args, bench_one)
    info = machine()
    info["date"] = f"{stamp:%Y-%m-%d %H:%M} UTC"
    section = render(info, runs, args.requests, args.pushes, args.executions)
    print(section)
    write_raw("api_v1", info, runs)
    if not args.no_write:
        update_results(START, END, "/api/native/v1 queries", section)
        _progress(f"updated {RESULTS.relative_to(REPO_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
