"""The lineage explorer's budgets (issue 15) in headless Chromium (``--disable-gpu``).

    python -m bench.explorer [--sizes 2000,10000] [--runs 5] [--pipelines 1000]
                             [--executions 200] [--big 1000] [--expansions 10] [--no-write]

Builds the bundle (scripts/ui.sh) and the lineage benchmark's graph in PostgreSQL
(``bench.lineage_queries``: ``--pipelines`` chains of ``--executions`` executions plus a
``--big`` one; 1,000 x 200 is the 1,000,000-edge graph), then serves the UI and the lineage app
over that graph with uvicorn on loopback (``/api/native/v1/views/pipeline``, the metadata
service's overview the page header reads, is a stub) and runs bench/explorer_browser.mjs:

- a lineage-shaped graph of each ``--sizes`` node count answered in place of the graph route
  (page.route): the answer's arrival to the graph on screen, a cold browser context each run;
- a scripted 3 s pan and zoom on it (rAF intervals, long animation frames), a click to the
  inspector;
- ``--expansions`` times, a fresh page focused on a step output of a random pipeline at depth 1,
  then "Expand upstream" on the dataset furthest upstream in view: the click to the new nodes on
  screen (the neighbourhood read from PostgreSQL, uncached).

The section goes to bench/RESULTS.md between the ``explorer`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from bench import browser
from bench import lineage_queries as lq
from bench.browser import DIST
from bench.results import update_results
from bench.run import machine
from cmf_common.committed import LocalCommitted
from cmf_gateway.ui import ui_router
from cmf_lineage.board import LocalBoard
from cmf_lineage.cache import LruCache
from cmf_testing.network import free_port

START, END = "<!-- explorer:start -->", "<!-- explorer:end -->"
BUDGET_2K_MS = 1000
BUDGET_10K_MS = 3000
BUDGET_FRAME_MEDIAN_MS = 20
BUDGET_FRAME_MAX_MS = 50
BUDGET_EXPAND_MS = 300


def progress(message: str) -> None:
    browser.progress("explorer", message)


def overview_stub() -> FastAPI:
    app = FastAPI()

    @app.get("/api/native/v1/views/pipeline")
    async def pipeline(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "stage_count": 1,
            "execution_count": 0,
            "artifact_count": 0,
            "last_push_time_since_epoch": 0,
            "stages": [],
            "artifact_types": [],
        }

    app.include_router(ui_router(DIST))
    return app


class Dispatch:
    """``/ui`` and the overview stub to ``front``, everything else to the lineage app."""

    def __init__(self, front: Any, lineage: Any) -> None:
        self.front = front
        self.lineage = lineage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        front = path == "/" or path.startswith("/ui") or path == "/api/native/v1/views/pipeline"
        await (self.front if front else self.lineage)(scope, receive, send)


async def targets(reader: Any, plan: lq.Plan, count: int) -> list[dict[str, str]]:
    """Random pipelines' step outputs to focus on, and the dataset upstream of each to expand."""
    rng = random.Random(15)
    out = []
    for _ in range(count):
        pipeline = rng.choice(plan.pipelines)
        outputs = plan.outputs[pipeline]
        step = rng.randrange(10, len(outputs) - 1)
        focus = await reader.artifact_by_uri(outputs[step])
        upstream = await reader.artifact_by_uri(outputs[step - 1])
        assert focus is not None and upstream is not None, pipeline
        out.append(
            {
                "pipeline": pipeline,
                "focus": f"artifact:{focus.metadata_id}",
                "expand": f"artifact:{upstream.metadata_id}",
            }
        )
    return out


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], float]:
    plan, groups = lq.batches(args)
    progress(
        f"graph: {plan.executions:,} executions, {plan.artifacts:,} artifacts, {plan.edges:,} edges"
    )
    async with lq.postgres_store(plan, groups) as reader:
        local = LocalCommitted()
        await lq._all_committed(local, plan)
        client = lq._client(reader, LruCache(10_000), LocalBoard(), local)
        lineage_app = client._transport.app  # type: ignore[attr-defined]
        await client.aclose()
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                Dispatch(overview_stub(), lineage_app),
                host="127.0.0.1",
                port=port,
                lifespan="off",
                log_level="warning",
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
            await asyncio.sleep(0.05)
        try:
            chosen = await targets(reader, plan, args.expansions)
            settings = {
                "EXPLORER_BENCH_URL": f"http://127.0.0.1:{port}",
                "EXPLORER_BENCH_SIZES": args.sizes,
                "EXPLORER_BENCH_RUNS": str(args.runs),
                "EXPLORER_BENCH_TARGETS": json.dumps(chosen),
            }
            progress("measuring in Chromium")
            load = os.getloadavg()[0]
            # In a thread: this loop serves the pages meanwhile.
            figures = await asyncio.to_thread(
                browser.browser_figures, "explorer_browser.mjs", settings, timeout=1800
            )
        finally:
            server.should_exit = True
            await serving
    graph = {"executions": plan.executions, "artifacts": plan.artifacts, "edges": plan.edges}
    return figures, graph, load


def verdict(ok: bool) -> str:
    return "within" if ok else "OVER"


def section(
    figures: dict[str, Any], graph: dict[str, Any], args: argparse.Namespace, load: float
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    m = machine()
    lines = [
        f"Measured {stamp} by `python -m bench.explorer` on {m['cpu']}, {m['nproc']} CPUs;"
        f" commit {m['commit']}. Debian's Chromium"
        f" headless with `--disable-gpu`, a 1440 × 900 viewport, a cold browser context each of"
        f" {args.runs} runs; the UI and the lineage app served by uvicorn on loopback. The machine"
        f" is shared (2 cores, other agents' jobs): the 1-min load average was {load:.2f} when"
        " measuring began.",
        "",
        "| budget | measured | |",
        "|---|---|---|",
    ]
    budgets = {2000: BUDGET_2K_MS, 10000: BUDGET_10K_MS}
    for n, one in figures["sizes"].items():
        budget = budgets.get(int(n))
        lines.append(
            f"| {int(n):,}-node graph: the answer's arrival → laid out and on screen"
            f"{f' ≤ {budget:,} ms' if budget else ''} | median {one['toScreenMedian']:.0f} ms,"
            f" max {one['toScreenMax']:.0f} ms (layout {statistics.median(one['layout']):.0f} ms"
            f" with {'ELK' if one['engine'] == 'elk' else 'our layered layout'}, drawn on"
            f" {'SVG' if one['mode'] == 'svg' else 'canvas'}); navigation start → on screen"
            f" median {one['fromNavigationMedian']:.0f} ms |"
            f" {verdict(one['toScreenMedian'] <= budget) if budget else ''} |"
        )
    for n, f in figures["frames"].items():
        ok = f["median_ms"] <= BUDGET_FRAME_MEDIAN_MS and f["max_ms"] <= BUDGET_FRAME_MAX_MS
        lines.append(
            f"| {int(n):,} nodes, scripted 3 s pan and zoom: median rAF interval ≤"
            f" {BUDGET_FRAME_MEDIAN_MS} ms, no frame over {BUDGET_FRAME_MAX_MS} ms |"
            f" {f['frames']} frames, median {f['median_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms,"
            f" longest {f['max_ms']:.1f} ms ({f['over_50ms']} over 50 ms);"
            f" {f['long_animation_frames']} long animation frames |"
            f" {verdict(ok) if int(n) == 2000 else ''} |"
        )
    for n, ms in figures["click"].items():
        lines.append(
            f"| {int(n):,} nodes: a click on a node → its inspector on screen | {ms:.0f} ms | |"
        )
    expand = [e["ms"] for e in figures["expand"]]
    if expand:
        added = statistics.median(e["after"] - e["before"] for e in figures["expand"])
        ok = statistics.median(expand) <= BUDGET_EXPAND_MS
        lines.append(
            f"| {graph['edges']:,}-edge graph ({graph['executions']:,} executions,"
            f' {graph["artifacts"]:,} artifacts in PostgreSQL): "Expand upstream" (depth 1) →'
            f" new nodes on screen ≤ {BUDGET_EXPAND_MS} ms | {len(expand)} expansions of random"
            f" pipelines: median {statistics.median(expand):.0f} ms, max {max(expand):.0f} ms"
            f" (median {added:.0f} nodes added) | {verdict(ok)} |"
        )
    lines += [
        "",
        "Layouts: the graph's arrival to its first frame is the layout in the worker (our"
        " layered layout, services/ui/src/explorer/layered.ts), building the scene and the"
        " canvas's first bitmap. ELK, dagre and d3-dag were measured on the same kind of graph"
        " by `node bench/explorer_layouts.mjs 300,2000 60 <run_length>` (2026-12-02 01:58 UTC,"
        " load average 4.3-5.0, niced; times are the layout call alone). Long runs (run_length"
        " 200, each run's Environment artifact read by all its executions): for 300 nodes ours"
        " 14 ms, elkjs 13.8 s, dagre 3.0 s, d3-dag 14.2 s; for 2,000 ours 39 ms and the three"
        " others over 60 s (they split every long edge into a dummy node per layer it crosses)."
        " Short runs (run_length 8, a shallow graph, their best case): for 300 nodes ours 12 ms,"
        " elkjs 1.2 s, dagre 0.6 s, d3-dag 0.9 s; for 2,000 ours 41 ms, elkjs 4.9 s, dagre"
        " 6.8 s, d3-dag 30.0 s. (The earlier d3-dag figure, over 30 s for 300 nodes, was a"
        " failed import the script counted as a time-out; it now tells one from the other.)"
        " Pan and zoom are d3-zoom's own `translateBy` / `scaleBy`, one"
        " step a frame, on the canvas (the graph past 1,200 nodes), whose frames blit a bitmap"
        " drawn once around the view; the frames over 50 ms come when that bitmap is redrawn"
        " and when the shared machine takes the cores away (the rAF loop itself stalls).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explorer", description=__doc__)
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--expansions", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args(argv)
    browser.build_ui()
    figures, graph, load = asyncio.run(measure(args))
    text = section(figures, graph, args, load)
    print(text)
    print(json.dumps(figures))
    if not args.no_write:
        update_results(START, END, "Lineage explorer", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
