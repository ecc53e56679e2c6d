"""Upstream's v1 routes against their 0.1.0 twins, in the same run.

    python -m bench.upstream_v1 [--requests 300] [--only debian|embedded] [--executions 10000]
                                [--no-write]

For each PostgreSQL — Debian's (``make services-up``; a fresh database made for the run and
dropped after) and the embedded server's own — it starts ``cmf-server up`` (``bench.run.Server``),
pushes one pipeline of ``--executions`` executions in four stages (the generator, through
``bench.seed``) and the captured example push (for the model card), uploads a python env and a
label, waits until the server is idle, then times each v1 route and its 0.1.0 twin (the route
the v1 one replaces, docs/upstream-v1.md §11) one request at a time over loopback, alternating
the two so that drift in the machine's load falls on both alike. Target: each v1 route's p95
within 10% of its twin's. Writes the section between the ``upstream-v1`` markers of
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.listings import (
    WARMUP,
    Timing,
    add_store_arguments,
    embedded_url,
    ms,
    on_each_store,
    server_on,
    wait_until_analyzed,
    wait_until_idle,
    write_raw,
)
from bench.results import RESULTS, update_results
from bench.run import REPO_DIR, machine
from bench.seed import seed
from cmf_testing.fixtures import CMF_FIXTURES

START, END = "<!-- upstream-v1:start -->", "<!-- upstream-v1:end -->"
PIPELINE = "bench-upstream"
STAGES = 4
STAGE = f"{PIPELINE}/Prepare"
EXAMPLE = CMF_FIXTURES / "push_example.json"
ENV_NAME = "python_env_bench.txt"
LABEL = "0123456789abcdef0123456789abcdef"
TOLERANCE = 1.10  # v1 p95 within 10% of the twin's

# method, path, query parameters, JSON body (None: none), raw body (None: none)
Call = tuple[str, str, dict[str, Any], Any, bytes | None]


def _get(path: str, **params: Any) -> Call:
    return ("GET", path, params, None, None)


def _post(path: str, body: Any, **params: Any) -> Call:
    return ("POST", path, params, body, None)


@dataclass(frozen=True)
class Pair:
    key: str
    label: str
    v1: Callable[[int], Call]
    twin: Callable[[int], Call]


@dataclass
class PairTiming:
    key: str
    v1: Timing
    twin: Timing

    def ratio(self) -> float | None:
        ours, theirs = self.v1.quantile(0.95), self.twin.quantile(0.95)
        return ours / theirs if ours is not None and theirs else None


@dataclass
class Run:
    database: str
    executions: int
    load_before: float
    timings: dict[str, PairTiming] = field(default_factory=dict)


def pairs(model_id: int, example_push: bytes) -> list[Pair]:
    stage_page = {"active_page": 1, "record_per_page": 6}
    v1_stage = f"/v1/pipelines/{PIPELINE}/stages/{STAGE}"
    push_call: Call = ("POST", "", {}, None, example_push)
    return [
        Pair(
            "pipelines",
            "pipelines",
            lambda i: _get("/v1/pipelines"),
            lambda i: _get("/api/pipelines"),
        ),
        Pair(
            "stages",
            "stages of a pipeline",
            lambda i: _get(f"/v1/pipelines/{PIPELINE}/stages"),
            lambda i: _get(f"/api/pipeline-stages/{PIPELINE}"),
        ),
        Pair(
            "artifact_types_by_stage",
            "artifact types of a stage",
            lambda i: _post(f"{v1_stage}/artifacts/types", None),
            lambda i: _get(f"/api/artifact-types-by-stage/{PIPELINE}", stage_name=STAGE),
        ),
        Pair(
            "executions_by_stage",
            "executions of a stage, page of 6 (page i % 50 + 1)",
            lambda i: _post(f"{v1_stage}/executions", {**stage_page, "active_page": i % 50 + 1}),
            lambda i: _get(
                f"/api/executions-by-stage/{PIPELINE}",
                stage_name=STAGE,
                **{**stage_page, "active_page": i % 50 + 1},
            ),
        ),
        Pair(
            "artifacts_by_stage",
            "Datasets of a stage, page of 6 by name (page i % 50 + 1)",
            lambda i: _post(
                f"{v1_stage}/artifacts",
                {**stage_page, "artifact_type": "Dataset", "active_page": i % 50 + 1},
            ),
            lambda i: _get(
                f"/api/artifacts-by-stage/{PIPELINE}",
                stage_name=STAGE,
                artifact_type="Dataset",
                **{**stage_page, "active_page": i % 50 + 1},
            ),
        ),
        Pair(
            "execution_list",
            "execution list of the pipeline",
            lambda i: _get(f"/v1/pipelines/{PIPELINE}/executions/list"),
            lambda i: _get(f"/api/list-of-executions/{PIPELINE}"),
        ),
        Pair(
            "artifact_types",
            "artifact types",
            lambda i: _get("/v1/artifacts/types"),
            lambda i: _get("/api/artifact_types"),
        ),
        Pair(
            "model_card",
            "`/v1/model-card` vs `/model-card`",
            lambda i: _get("/v1/model-card", modelId=model_id),
            lambda i: _get("/api/model-card", modelId=model_id),
        ),
        Pair(
            "model_card_by_id",
            "`/v1/artifacts/models/{id}/card` vs `/model-card`",
            lambda i: _get(f"/v1/artifacts/models/{model_id}/card"),
            lambda i: _get("/api/model-card", modelId=model_id),
        ),
        Pair(
            "python_env",
            "python env file by query",
            lambda i: _get("/v1/python-env", file_name=ENV_NAME),
            lambda i: _get("/api/python-env", file_name=ENV_NAME),
        ),
        Pair(
            "label_data",
            "label CSV",
            lambda i: _get("/v1/label-data", file_name=LABEL),
            lambda i: _get("/api/label-data", file_name=LABEL),
        ),
        Pair(
            "pull",
            "pull of the example pipeline",
            lambda i: _post("/v1/mlmd/pull", {"pipeline_name": "Test-env"}),
            lambda i: _post("/api/mlmd_pull", {"pipeline_name": "Test-env"}),
        ),
        Pair(
            "repush",
            "re-push of the example (`exists`)",
            lambda i: ("POST", "/v1/mlmd/push", {}, None, push_call[4]),
            lambda i: ("POST", "/api/mlmd_push", {}, None, push_call[4]),
        ),
    ]


def _send(client: httpx.Client, call: Call) -> httpx.Response:
    method, path, params, body, raw = call
    if raw is not None:
        return client.request(
            method, path, params=params, content=raw, headers={"Content-Type": "application/json"}
        )
    return client.request(method, path, params=params, json=body)


def _timed(client: httpx.Client, call: Call, timing: Timing) -> None:
    started = time.perf_counter()
    response = _send(client, call)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        timing.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
    else:
        timing.samples.append(elapsed)


def measure_pair(client: httpx.Client, pair: Pair, count: int) -> PairTiming:
    """``WARMUP`` of each, then ``count`` of each, alternating which goes first."""
    timing = PairTiming(pair.key, Timing(f"{pair.key}:v1"), Timing(f"{pair.key}:twin"))
    for i in range(WARMUP):
        _send(client, pair.v1(i))
        _send(client, pair.twin(i))
    for i in range(count):
        first, second = (pair.v1, timing.v1), (pair.twin, timing.twin)
        if i % 2:
            first, second = second, first
        _timed(client, first[0](i), first[1])
        _timed(client, second[0](i), second[1])
    return timing


def _upload(client: httpx.Client, route: str, name: str, content: bytes) -> None:
    client.post(route, files={"file": (name, content)}).raise_for_status()


def bench_one(
    database: str,
    database_url: str | None,
    requests: int,
    data_root: str,
    pushes: int,
    executions: int,
) -> Run:
    with server_on(database_url, data_root) as server:
        print(f"[upstream_v1] {database}: seeding {pushes} x {executions:,}", file=sys.stderr)
        seed(server.url, pushes=pushes, executions=executions, pipeline=PIPELINE, stages=STAGES)
        example = EXAMPLE.read_bytes()
        with httpx.Client(base_url=server.url, timeout=120) as client:
            client.post(
                "/api/mlmd_push", content=example, headers={"Content-Type": "application/json"}
            ).raise_for_status()
            _upload(client, "/api/python-env", ENV_NAME, b"numpy==2.0\npandas==2.2\n" * 20)
            _upload(client, "/api/label", LABEL, b"a,b\n" + b"1,2\n" * 200)
            models = client.get(
                "/api/artifacts-by-stage/Test-env",
                params={"stage_name": "Test-env/Train", "artifact_type": "Model"},
            ).json()
            model_id = int(models["items"][0]["artifact_id"])
            wait_until_idle(server)
            wait_until_analyzed(database_url or embedded_url(server))
            run = Run(database, executions, os.getloadavg()[0])
            for pair in pairs(model_id, example):
                run.timings[pair.key] = t = measure_pair(client, pair, requests)
                print(
                    f"[upstream_v1] {database}: {pair.key}: v1 p95 {ms(t.v1.quantile(0.95))}"
                    f" twin p95 {ms(t.twin.quantile(0.95))}"
                    + (
                        f" errors {(t.v1.errors + t.twin.errors)[:2]}"
                        if t.v1.errors or t.twin.errors
                        else ""
                    ),
                    file=sys.stderr,
                )
    return run


def render(info: dict[str, Any], runs: list[Run], requests: int) -> str:
    labels = {p.key: p.label for p in pairs(0, b"")}
    lines = [
        f"Measured {info['date']} on {info['cpu']}, {info['nproc']} CPUs (nproc), "
        f"{info['ram_bytes'] / 1024**3:.1f} GiB RAM, Linux {info['kernel']}; Python "
        f"{info['python']}; commit {info['commit']}. `cmf-server up`, one "
        f"pipeline of {runs[0].executions:,} executions in {STAGES} stages plus the captured "
        f"example push; {requests} requests of each route, one at a time over loopback, each "
        "v1 request beside one of its 0.1.0 twin (alternating which goes first), after "
        f"{WARMUP} of each as warm-up.",
        "",
        f"Target: each v1 route's p95 within 10% of its twin's (ratio ≤ {TOLERANCE:.2f}).",
        "",
    ]
    for run in runs:
        lines += [
            f"**{run.database} PostgreSQL** (1-minute load before: {run.load_before:.2f})",
            "",
            "| route | v1 p50 | v1 p95 | 0.1.0 p50 | 0.1.0 p95 | p95 ratio | within 10% |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for key, t in run.timings.items():
            ratio = t.ratio()
            errors = t.v1.errors or t.twin.errors
            verdict = (
                "**no** (errors)"
                if errors
                else ("—" if ratio is None else ("yes" if ratio <= TOLERANCE else "**no**"))
            )
            lines.append(
                f"| {labels[key]} | {ms(t.v1.quantile(0.5))} | {ms(t.v1.quantile(0.95))} | "
                f"{ms(t.twin.quantile(0.5))} | {ms(t.twin.quantile(0.95))} | "
                f"{'—' if ratio is None else f'{ratio:.2f}'} | {verdict} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream_v1", description=__doc__)
    add_store_arguments(parser, pushes=1, executions=10_000)
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC)
    runs = on_each_store(args, bench_one)
    info = machine()
    info["date"] = f"{stamp:%Y-%m-%d %H:%M} UTC"
    section = render(info, runs, args.requests)
    print(section)
    with contextlib.suppress(OSError):
        write_raw("upstream_v1", info, runs)
    if not args.no_write:
        update_results(START, END, "Upstream v1 routes against their 0.1.0 twins", section)
        print(f"[upstream_v1] updated {RESULTS.relative_to(REPO_DIR)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
