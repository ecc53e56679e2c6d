"""The first reads after each push into a fresh store, before and after.

    python -m bench.first_reads [--executions 1000] [--pushes 3] [--repeat 3] [--baseline DIR]

For each checkout (``--baseline``, then this one; see bench.bigpush), ``--repeat`` times: start
``cmf-server up`` on a fresh data dir and push ``--pushes`` new pipelines of ``--executions``
executions one after the other. Right after each push (once the lineage has caught up with its
consistency token, waited for by a read that finds nothing), time the first reads of the new
pipeline: the full ancestry of its last execution (the reference UI's execution tree,
``/execution-lineage/tangled-tree/{uuid4}/{p}``) and an ``executions-by-stage`` page filtered
by an execution's uuid prefix (one match). Figures are medians over the repeats, per push;
written to the ``first-reads`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

import httpx

from bench.bigpush import (
    Checkout,
    before_after_arguments,
    checkouts,
    embedded_server,
    measured,
    progress,
    record,
)
from bench.stack import load_average, median, ms
from cmf_testing.generator import push_body_bytes

CONSISTENCY = "X-CMF-Consistency-Token"


@dataclass
class Reads:
    label: str
    repeat: int
    push: int  # 1: the first push into the fresh store
    push_s: float = 0.0
    tree_s: float = 0.0
    listing_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    load: float = 0.0


def _timed(client: httpx.Client, path: str, **kwargs: object) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, response


def measure(checkout: Checkout, repeat: int, executions: int, pushes: int) -> list[Reads]:
    found = []
    with (
        embedded_server(checkout, "first-reads") as server,
        httpx.Client(base_url=server.url, timeout=300.0) as client,
    ):
        for k in range(1, pushes + 1):
            name = f"first-reads-{k}"
            body = push_body_bytes(name, executions, seed=k)
            decoded = json.loads(json.loads(body)["json_payload"])
            last = decoded["Pipeline"][0]["stages"][-1]["executions"][-1]
            uuid = str(last["properties"]["Execution_uuid"])
            stage = decoded["Pipeline"][0]["stages"][-1]["name"]
            reads = Reads(checkout.label, repeat, k, load=load_average())
            started = time.perf_counter()
            pushed = client.post(
                "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
            )
            reads.push_s = time.perf_counter() - started
            token = pushed.headers.get(CONSISTENCY, "")
            if pushed.status_code != 200 or not token:
                reads.errors.append(f"push: {pushed.status_code} {pushed.text[:100]}")
            # Waits until the graph holds the push, and finds nothing: no answer is cached.
            client.get(
                "/api/native/v1/lineage/artifacts",
                params={"uri": "first-reads-none"},
                headers={CONSISTENCY: token},
            )
            reads.tree_s, tree = _timed(
                client, f"/api/execution-lineage/tangled-tree/{uuid[:4]}/{name}"
            )
            reads.listing_s, listing = _timed(
                client,
                f"/api/executions-by-stage/{name}",
                params={"stage_name": stage, "record_per_page": 6, "filter_value": uuid[:8]},
            )
            for label, response in (("tree", tree), ("listing", listing)):
                if response.status_code != 200:
                    reads.errors.append(f"{label}: {response.status_code} {response.text[:100]}")
            progress(
                f"{checkout.label} r{repeat} push {k}: push {reads.push_s:.2f} s, first tree "
                f"{ms(reads.tree_s)}, first listing {ms(reads.listing_s)} {reads.errors or ''}"
            )
            found.append(reads)
    return found


def render(runs: list[Reads], executions: int, repeat: int, commits: dict[str, str]) -> str:
    lines = [
        measured(commits),
        "",
        f"Each run: `cmf-server up` on a fresh data dir, then new pipelines of {executions:,} "
        "executions pushed one after the other; right after each push (the lineage caught up "
        "with its token), the first full ancestry of its last execution "
        "(`/execution-lineage/tangled-tree/{uuid4}/{p}`) and the first `executions-by-stage` "
        f"page filtered by an execution's uuid prefix. Median of {repeat} runs.",
        "",
        "| code | push into the store | push | first ancestry read | first listing read | load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in dict.fromkeys(r.label for r in runs):
        for k in sorted({r.push for r in runs}):
            mine = [r for r in runs if r.label == label and r.push == k]
            lines.append(
                f"| {label} | {k}{' (fresh store)' if k == 1 else ''} "
                f"| {median([r.push_s for r in mine]):.2f} s "
                f"| {ms(median([r.tree_s for r in mine]))} "
                f"(slowest {ms(max(r.tree_s for r in mine))}) "
                f"| {ms(median([r.listing_s for r in mine]))} "
                f"(slowest {ms(max(r.listing_s for r in mine))}) "
                f"| {median([r.load for r in mine]):.1f} |"
            )
    errors = [f"{r.label} r{r.repeat} push {r.push}: {e}" for r in runs for e in r.errors]
    if errors:
        lines += ["", "Errors:", ""] + [f"* {e}" for e in errors]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.first_reads", description=__doc__)
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=3)
    before_after_arguments(parser)
    args = parser.parse_args(argv)
    runs: list[Reads] = []
    commits = {}
    targets = checkouts(args.baseline)
    for repeat in range(args.repeat):
        for checkout in targets:
            commits[checkout.label] = checkout.commit
            runs += measure(checkout, repeat, args.executions, args.pushes)
    section = render(runs, args.executions, args.repeat, commits)
    record("first-reads", runs, section, "The first reads after a push", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
