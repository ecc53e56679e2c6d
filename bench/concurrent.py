"""Many clients at once: 50 concurrent mixed clients for 60 s, before and after.

    python -m bench.concurrent [--clients 50] [--seconds 60] [--repeat 3] [--baseline DIR]

For each checkout (``--baseline``, then this one; see bench.bigpush), ``--repeat`` times: start
``cmf-server up`` on a fresh data dir, push a seed pipeline of 200 executions, then run
``--clients`` clients for ``--seconds``, each sending one request after the other, picked at
random: a push of a new 10-execution pipeline (25 %), the same push again (``exists``, 10 %),
its pull (20 %), an ``executions-by-stage`` page of the seed (20 %), the seed's tangled
execution tree (15 %), ``/pipelines`` (10 %). Measured: requests/s, p50/p99 of every request,
errors (a 5xx or no answer), and afterwards every acknowledged push's executions pulled back:
executions lost must be 0. Medians over the repeats; written to the ``concurrent`` section of
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
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
from bench.stack import load_average, median, ms, quantile
from cmf_testing.generator import push_body_bytes

SEED, SEED_EXECUTIONS, PUSH_EXECUTIONS = "concurrent-seed", 200, 10
MIX = (("push", 25), ("repush", 10), ("pull", 20), ("listing", 20), ("tree", 15), ("list", 10))


@dataclass
class Run:
    label: str
    repeat: int
    requests: int = 0
    seconds: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    pushes_acknowledged: int = 0
    executions_lost: int = 0
    load: float = 0.0


@dataclass
class Client:
    index: int
    seed_uuid: str
    seed_stage: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)  # acknowledged pipelines
    last: tuple[str, bytes] | None = None

    def _request(self, kind: str, turn: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        if kind == "push" or (kind in ("repush", "pull") and self.last is None):
            name = f"concurrent-{self.index}-{turn}"
            self.last = (name, push_body_bytes(name, PUSH_EXECUTIONS, seed=turn))
            return "POST", "/api/mlmd_push", self.last[1], {}
        if kind == "repush" and self.last is not None:
            return "POST", "/api/mlmd_push", self.last[1], {}
        if kind == "pull" and self.last is not None:
            return "GET", f"/api/mlmd_pull/{self.last[0]}", None, {}
        if kind == "listing":
            return (
                "GET",
                f"/api/executions-by-stage/{SEED}",
                None,
                {"stage_name": self.seed_stage, "record_per_page": "6", "active_page": "1"},
            )
        if kind == "tree":
            return (
                "GET",
                f"/api/execution-lineage/tangled-tree/{self.seed_uuid[:4]}/{SEED}",
                None,
                {},
            )
        return "GET", "/api/pipelines", None, {}

    async def run(self, http: httpx.AsyncClient, until: float) -> None:
        rng = random.Random(self.index)
        kinds, weights = zip(*MIX, strict=True)
        turn = 0
        while time.perf_counter() < until:
            turn += 1
            kind = rng.choices(kinds, weights)[0]
            method, path, body, params = self._request(kind, turn)
            started = time.perf_counter()
            try:
                response = await http.request(
                    method,
                    path,
                    content=body,
                    params=params or None,
                    headers={"Content-Type": "application/json"} if body else None,
                )
                if response.status_code >= 500:
                    self.errors.append(f"{kind} {path}: {response.status_code}")
                elif (
                    kind == "push"
                    and response.status_code == 200
                    and response.json().get("status") == "success"
                    and self.last is not None
                ):
                    self.pushed.append(self.last[0])
            except httpx.HTTPError as exc:
                self.errors.append(f"{kind} {path}: {exc!r}")
            self.latencies.append(time.perf_counter() - started)


async def _lost(http: httpx.AsyncClient, pipelines: list[str]) -> int:
    """Executions of acknowledged pushes that a pull does not give back."""
    lost = 0
    for name in pipelines:
        response = await http.get(f"/api/mlmd_pull/{name}")
        found = 0
        if response.status_code == 200:
            document = json.loads(response.text)
            found = sum(len(s["executions"]) for p in document["Pipeline"] for s in p["stages"])
        lost += max(0, PUSH_EXECUTIONS - found)
    return lost


async def _measure(url: str, run: Run, clients: int, seconds: float) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as http:
        seed = push_body_bytes(SEED, SEED_EXECUTIONS)
        (await http.post("/api/mlmd_push", content=seed)).raise_for_status()
        decoded = json.loads(json.loads(seed)["json_payload"])
        last = decoded["Pipeline"][0]["stages"][-1]
        uuid = str(last["executions"][-1]["properties"]["Execution_uuid"])
        workers = [Client(i, uuid, last["name"]) for i in range(clients)]
        run.load = load_average()
        started = time.perf_counter()
        await asyncio.gather(*(w.run(http, started + seconds) for w in workers))
        run.seconds = time.perf_counter() - started
        latencies = [x for w in workers for x in w.latencies]
        errors = [e for w in workers for e in w.errors]
        pushed = [p for w in workers for p in w.pushed]
        run.requests = len(latencies)
        run.p50, run.p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
        run.errors, run.error_samples = len(errors), errors[:10]
        run.pushes_acknowledged = len(pushed)
        run.executions_lost = await _lost(http, pushed)


def measure(checkout: Checkout, repeat: int, clients: int, seconds: float) -> Run:
    run = Run(checkout.label, repeat)
    with embedded_server(checkout, "concurrent") as server:
        asyncio.run(_measure(server.url, run, clients, seconds))
    return run


def render(runs: list[Run], clients: int, seconds: float, commits: dict[str, str]) -> str:
    mix = ", ".join(f"{kind} {weight} %" for kind, weight in MIX)
    lines = [
        measured(commits),
        "",
        f"{clients} clients at once for {seconds:g} s against `cmf-server up` on a fresh data dir "
        f"(and the client, httpx, on the same 2 CPUs), each sending one request after the "
        f"other: {mix} (push: a new {PUSH_EXECUTIONS}-execution pipeline; repush: the same "
        f"again; pull: it; listing and tree: of a {SEED_EXECUTIONS}-execution seed pipeline). "
        "Errors: a 5xx or no answer. Executions lost: of the acknowledged pushes, what a pull "
        f"after the run does not give back. Median of {len({r.repeat for r in runs})} runs.",
        "",
        "| code | requests/s | p50 | p99 | errors | pushes acknowledged | executions lost | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in dict.fromkeys(r.label for r in runs):
        mine = [r for r in runs if r.label == label]
        lines.append(
            f"| {label} | {median([r.requests / r.seconds for r in mine]):,.1f} "
            f"| {ms(median([r.p50 for r in mine]))} | {ms(median([r.p99 for r in mine]))} "
            f"| {median([r.errors for r in mine]):,.0f} "
            f"| {median([r.pushes_acknowledged for r in mine]):,.0f} "
            f"| {max(r.executions_lost for r in mine)} "
            f"| {median([r.load for r in mine]):.1f} |"
        )
    samples = [f"{r.label} r{r.repeat}: {e}" for r in runs for e in r.error_samples]
    if samples:
        lines += ["", "Errors seen:", ""] + [f"* {e}" for e in samples]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrent", description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    before_after_arguments(parser)
    args = parser.parse_args(argv)
    runs: list[Run] = []
    commits = {}
    for repeat in range(args.repeat):
        for checkout in checkouts(args.baseline):
            commits[checkout.label] = checkout.commit
            run = measure(checkout, repeat, args.clients, args.seconds)
            progress(
                f"{checkout.label} r{repeat}: {run.requests / run.seconds:,.1f} req/s, p50 "
                f"{ms(run.p50)}, p99 {ms(run.p99)}, errors {run.errors}, pushes "
                f"{run.pushes_acknowledged}, lost {run.executions_lost}"
            )
            runs.append(run)
    section = render(runs, args.clients, args.seconds, commits)
    record("concurrent", runs, section, "Many clients at once", write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
