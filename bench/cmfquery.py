"""The CMFQuery benchmark: ancestors and descendants of an artifact 20 steps deep, over REST.

    python -m bench.cmfquery [--pipelines 1000] [--executions 200] [--stores postgres,neo4j]
                             [--requests 200] [--no-write]

The graph is ``bench.lineage_queries``'s (1,000 generator chains of 200 executions, 1,000,000
edges, plus its big chain), written into each store the same way. Each request asks
``GET /v1/artifacts/name/{name}/ancestors`` for the output of step 20 of a random pipeline (its
ancestors: every artifact of the 20 steps before it) or ``…/descendants`` for the output 20
steps before the end of one, through the lineage app in-process with a cache that never hits.
Timings are reported, never asserted; the section goes to ``bench/RESULTS.md`` between the
``cmfquery`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.lineage_queries import (
    DEPTH,
    Figure,
    NoCache,
    Plan,
    _client,
    _ms,
    _time,
    batches,
    measure_on_stores,
)
from bench.results import RESULTS, update_results
from bench.run import REPO_DIR, machine
from cmf_common.logging import configure_logging
from cmf_lineage.board import LocalBoard
from cmf_lineage.graph_reader import GraphReader

START, END = "<!-- cmfquery:start -->", "<!-- cmfquery:end -->"
TARGET_MS = 50.0
ANCESTORS = "CMFQuery ancestors, 20 steps deep (uncached)"
DESCENDANTS = "CMFQuery descendants, 20 steps deep (uncached)"


def _say(message: str) -> None:
    print(f"[cmfquery] {message}", file=sys.stderr, flush=True)


async def _name_of(queries: GraphReader, uri: str) -> str:
    found = await queries.artifact_records(uris=[uri])
    assert found, uri
    return found[0].info.name


async def measure(
    store: str, queries: GraphReader, plan: Plan, args: argparse.Namespace
) -> list[Figure]:
    rng = random.Random(11)
    figures = []
    async with _client(queries, NoCache(), LocalBoard()) as client:
        for label, route, from_end in (
            (ANCESTORS, "ancestors", False),
            (DESCENDANTS, "descendants", True),
        ):
            requests: list[tuple[str, dict[str, Any]]] = []
            for _ in range(args.requests):
                outputs = plan.outputs[rng.choice(plan.pipelines)]
                uri = outputs[len(outputs) - DEPTH - 1] if from_end else outputs[DEPTH - 1]
                name = await _name_of(queries, uri)
                requests.append((f"/v1/artifacts/name/{name}/{route}", {}))
            times, body = await _time(client, requests, warmup=20)
            assert body["status"] == "success", body
            detail = f"{body['data']['total_artifacts']} artifacts"
            figures.append(Figure(store, label, times, detail))
            _say(f"{store}: {route} p95 {Figure(store, '', times).pct(0.95) * 1000:.1f} ms")
    return figures


def render(figures: list[Figure], plan: Plan, args: argparse.Namespace, load: str) -> str:
    m = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {m['cpu']}, {m['nproc']} CPUs (nproc),"
        f" {m['ram_bytes'] / 2**30:.1f} GiB RAM, Linux {m['kernel']}; Python {m['python']};"
        f" commit {m['commit']}. The graph of the lineage-queries benchmark:"
        f" {plan.executions:,} executions, {plan.artifacts:,} artifacts, {plan.edges:,} edges."
        f" {args.requests} requests per row, one at a time, for random pipelines, through the"
        " lineage app in-process with a cache that never hits: the name's lookup, one"
        " recursive walk (PostgreSQL `WITH RECURSIVE`; Neo4j a DISTINCT variable-length"
        f" pattern), one read of the records, CmfQuery's frame, the envelope. {load}",
        "",
        "| request | store | n | p50 | p95 | p99 | answer | target (p95) | within |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for f in figures:
        within = "yes" if f.pct(0.95) * 1000 <= TARGET_MS else "no"
        lines.append(
            f"| {f.label} | {f.store} | {len(f.times)} | {_ms(f.pct(0.5))} | {_ms(f.pct(0.95))}"
            f" | {_ms(f.pct(0.99))} | {f.detail} | ≤ {TARGET_MS:g} ms | {within} |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> tuple[list[Figure], Plan]:
    started = time.perf_counter()
    plan, groups = batches(args)
    gc.collect()
    gc.freeze()
    _say(
        f"graph: {plan.edges:,} edges in {len(groups)} batches"
        f" ({time.perf_counter() - started:.0f} s)"
    )
    figures = await measure_on_stores(
        args, plan, groups, measure, Path("/var/tmp/cmf-bench-cmfquery")
    )
    return figures, plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cmfquery", description=__doc__)
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--stores", default="postgres,neo4j")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json=False)
    load = f"1-min load average {os.getloadavg()[0]:.2f} when measuring began."
    figures, plan = asyncio.run(run(args))
    section = render(figures, plan, args, load)
    print(section)
    if not args.no_write:
        update_results(START, END, "CMFQuery lineage", section)
        _say(f"updated {RESULTS.relative_to(REPO_DIR)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
