"""The web UI's budgets (issue 14): initial JavaScript gzipped, the cold first page, and the
executions table of a 100,000-execution stage in headless Chromium.

    python -m bench.ui [--executions 100000] [--runs 5] [--no-write]
    python -m bench.ui --ab OTHER_DIST [--frame-runs 3] [--profile]   # A/B, prints only

Builds the bundle (scripts/ui.sh), sums the gzipped size of the JavaScript index.html loads
before anything else (its module script and the modules it preloads), starts ``cmf-server up``
(embedded) seeded with one stage of ``--executions`` generator executions (bench.seed, in
pushes of 10,000), then runs bench/ui_browser.mjs: each figure from the Performance API
(navigation start to the app's ``cmf:first-card`` / ``cmf:first-rows`` marks), a cold browser
context each run; then frames are timed while the table is scrolled, paged and jumped. Each
run also times the floor: navigation start to the first paint of a tiny page of the same server
(a missing asset's 404 text) in a cold context, which no app can beat on this machine.

``--ab OTHER_DIST`` compares another built bundle (e.g. a copy of ``services/ui/dist`` made
before a change) with this checkout's, on one server, the two taking turns run by run so both
see the same machine; it prints the medians side by side and writes nothing. ``--profile`` adds
where one cold first-rows load spends its time (Performance API entries and a Chromium trace).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import browser
from bench.browser import DIST
from bench.results import update_results
from bench.run import Server
from bench.seed import seed

START, END = "<!-- ui:start -->", "<!-- ui:end -->"
PIPELINE = "bench-ui"
STAGE = f"{PIPELINE}/Prepare"
PUSH_EXECUTIONS = 10_000
BUDGET_JS_KB = 200
BUDGET_FIRST_CARD_MS = 1000
BUDGET_FIRST_ROWS_MS = 300
BUDGET_FRAME_MS = 50


def progress(message: str) -> None:
    browser.progress("ui", message)


def initial_js() -> dict[str, int]:
    """Each JavaScript file index.html loads up front, and its gzipped size in bytes."""
    html = (DIST / "index.html").read_text()
    names = re.findall(r'<script[^>]+src="/ui/([^"]+\.js)"', html)
    names += re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="/ui/([^"]+\.js)"', html)
    return {name: len(gzip.compress((DIST / name).read_bytes(), 9)) for name in names}


def browser_figures(
    url: str,
    runs: int,
    frame_runs: int = 1,
    profile: bool = False,
    variants: dict[str, Path] | None = None,
    served_index: Path | None = None,
) -> dict[str, Any]:
    settings = {
        "UI_BENCH_URL": url,
        "UI_BENCH_PIPELINE": PIPELINE,
        "UI_BENCH_STAGE": STAGE,
        "UI_BENCH_RUNS": str(runs),
        "UI_BENCH_FRAME_RUNS": str(frame_runs),
        "UI_BENCH_PROFILE": "1" if profile else "0",
    }
    if variants:
        settings["UI_BENCH_VARIANTS"] = json.dumps(
            [{"name": name, "html": str(html)} for name, html in variants.items()]
        )
        settings["UI_BENCH_INDEX"] = str(served_index)
    return browser.browser_figures("ui_browser.mjs", settings, timeout=900)


def merged_bundle(bundles: dict[str, Path], into: Path) -> dict[str, Path]:
    """One folder serving every bundle's hashed assets side by side (their names differ), and
    each bundle's index.html kept apart (the benchmark copies one over ``into/index.html``
    before each measurement)."""
    into.mkdir(parents=True, exist_ok=True)
    pages = {}
    for name, dist in bundles.items():
        shutil.copytree(dist, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("index.html"))
        pages[name] = into / f".index-{name}.html"
        shutil.copyfile(dist / "index.html", pages[name])
    shutil.copyfile(next(iter(pages.values())), into / "index.html")
    return pages


def comparison(figures: dict[str, Any]) -> str:
    """The A/B figures side by side: medians and maxima of each variant."""
    lines = ["| | " + " | ".join(figures) + " |", "|---|" + "---|" * len(figures)]
    for key, label in (
        ("first_card_ms", "navigation → first card"),
        ("first_rows_ms", "navigation → first rows"),
        ("first_rows_frame_ms", "navigation → the frame painting them"),
        ("floor_ms", "floor: navigation → first paint of a tiny page"),
    ):
        cells = [
            f"median {statistics.median(f[key]):.0f} ms, max {max(f[key]):.0f} ms"
            for f in figures.values()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [
        f"{s['frames']} frames in {s['runs']} runs, longest {s['max_frame_ms']:.0f} ms,"
        f" {s['over_50ms']} over 50 ms; {s['long_animation_frames']} long animation frames"
        f" (longest {s['max_long_animation_frame_ms']:.0f} ms)"
        for s in (f["scroll_frames"] for f in figures.values())
    ]
    lines.append("| scrolling, paging, End, Home | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(value: float, budget: float) -> str:
    return "within" if value <= budget else "OVER"


def section(
    js: dict[str, int], figures: dict[str, Any], executions: int, runs: int, load: float
) -> str:
    total_kb = sum(js.values()) / 1024
    cards = figures["first_card_ms"]
    rows = figures["first_rows_ms"]
    painted = figures["first_rows_frame_ms"]
    floor = figures["floor_ms"]
    frames = figures["scroll_frames"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        f"Measured {stamp} by `python -m bench.ui` on this 2-core machine: the embedded server,"
        f" one stage of {executions:,} generator executions, Debian's Chromium headless with"
        f" `--disable-gpu`, a cold browser context each of {runs} runs (figures from the"
        " Performance API: navigation start to the app's marks, and to the animation frame that"
        " paints the first rows), after one warm-up of each"
        f" page; the machine's load average when measuring: {load:.1f} (2 cores, shared).",
        "",
        "| budget | measured | |",
        "|---|---|---|",
        f"| initial JavaScript ≤ {BUDGET_JS_KB} KB gzip | {total_kb:.1f} KB"
        f" ({', '.join(f'{n} {b / 1024:.1f} KB' for n, b in js.items())}) |"
        f" {verdict(total_kb, BUDGET_JS_KB)} |",
        f"| cold first page, navigation start → first card ≤ {BUDGET_FIRST_CARD_MS} ms |"
        f" median {statistics.median(cards):.0f} ms, max {max(cards):.0f} ms |"
        f" {verdict(max(cards), BUDGET_FIRST_CARD_MS)} |",
        f"| {executions:,}-execution stage, navigation start → the frame that paints the first"
        f" rows ≤ {BUDGET_FIRST_ROWS_MS} ms | median {statistics.median(painted):.0f} ms,"
        f" max {max(painted):.0f} ms (the app's `cmf:first-rows` mark, rows in the document:"
        f" median {statistics.median(rows):.0f} ms) |"
        f" {verdict(statistics.median(painted), BUDGET_FIRST_ROWS_MS)} |",
        f"| scrolling (80 wheel steps), paging (15 pages, 20 × Page Down), End, Home: no frame"
        f" over {BUDGET_FRAME_MS} ms | {frames['frames']} frames, longest"
        f" {frames['max_frame_ms']:.0f} ms, {frames['over_50ms']} over {BUDGET_FRAME_MS} ms;"
        f" {frames['long_animation_frames']} long animation frames (longest"
        f" {frames['max_long_animation_frame_ms']:.0f} ms) |"
        f" {verdict(frames['max_frame_ms'], BUDGET_FRAME_MS)} |",
        f"| (the floor, not a budget) navigation start → first paint of a tiny text page of the"
        f" same server, cold context | median {statistics.median(floor):.0f} ms,"
        f" max {max(floor):.0f} ms | |",
        f"| (the floor, not a budget) the same page idle for 1.5 s before scrolling |"
        f" {frames['idle_frames']} frames, longest {frames['idle_max_frame_ms']:.0f} ms,"
        f" {frames['idle_over_50ms']} over {BUDGET_FRAME_MS} ms | |",
        "",
        "The app's script is React code on Preact's compatibility layer (preact/compat); what"
        " a link to a stage does not run (other tabs, the drawers) is in chunks of their own."
        " index.html asks for the view's first answers while it loads (a stage's first block"
        " of rows and its columns) and parses them as they arrive; the app's first render waits"
        " for those (500 ms at most) and shows them, so one render and one frame bring the rows"
        " (the entry chunk carries V8's compile hint: its functions are compiled while it"
        " streams in); a link to a stage asks for the pipeline's overview only"
        " once those rows are painted. The first frame builds only the rows in view. The table"
        " asks the server for"
        " numbered blocks of 100 rows as they scroll into view; rows are all one height, so the"
        " window is arithmetic (no layout is read while scrolling) and its rows are reused slot"
        " by slot. The figures scale with the machine's load (the floor row shows how much);"
        ' see docs/ui.md, "Fast first rows".',
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the seeded server's data here (seeding again finds it there: quick)",
    )
    parser.add_argument("--ab", type=Path, help="another built bundle to compare with (A/B)")
    parser.add_argument("--frame-runs", type=int, default=1, help="scroll/paging sequences")
    parser.add_argument("--profile", action="store_true", help="where a first-rows load goes")
    args = parser.parse_args(argv)

    browser.build_ui()
    js = initial_js()
    progress(f"initial JavaScript: {sum(js.values()) / 1024:.1f} KB gzip")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="cmf-bench-ui-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Path] = {}
    served = Path(tempfile.mkdtemp(prefix="cmf-bench-ui-dist-"))
    if args.ab is not None:
        pages = merged_bundle({"other": args.ab.resolve(), "this": DIST}, served)
        os.environ["UI_DIR"] = str(served)
    server = Server(data_dir / "data", data_dir / "server.log")
    try:
        server.start()
        pushes = max(1, args.executions // PUSH_EXECUTIONS)
        seed(
            server.url,
            pushes=pushes,
            executions=min(args.executions, PUSH_EXECUTIONS),
            pipeline=PIPELINE,
        )
        progress("measuring in Chromium")
        load = os.getloadavg()[0]
        figures = browser_figures(
            server.url,
            args.runs,
            frame_runs=args.frame_runs,
            profile=args.profile,
            variants=pages,
            served_index=served / "index.html",
        )
    finally:
        server.stop()
        shutil.rmtree(served, ignore_errors=True)
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    if pages:
        print(f"load average {load:.1f}, {args.runs} runs each, the two taking turns")
        print(comparison(figures["variants"]))
        print(json.dumps(figures))
        return 0
    text = section(js, figures, args.executions, args.runs, load)
    print(text)
    print(json.dumps(figures))
    if not args.no_write:
        update_results(START, END, "Web UI", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
