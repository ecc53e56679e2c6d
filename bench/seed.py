"""Fill a running CMF server with generator pipelines, for the read-side benchmarks.

    python -m bench.seed http://127.0.0.1:8080 [--pushes 10] [--executions 10000]
                                               [--pipeline bench-listing] [--distinct]

Each push is ``cmf_testing.generator``'s client-shaped body of ``executions`` executions, sent to
``POST /api/mlmd_push`` as the real client sends it. By default every push goes to the same
pipeline with its own generator seed (0, 1, …), so one pipeline (and, with one stage, one stage)
ends up with ``pushes × executions`` executions; ``--distinct`` pushes ``<pipeline>-00``,
``<pipeline>-01``, … instead. A push the server already holds answers ``exists`` and counts as
seeded, so seeding again is harmless.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import httpx

from cmf_testing.generator import push_body_bytes

PUSH_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class SeededPush:
    pipeline: str
    seed: int
    executions: int
    status: str
    seconds: float


class SeedFailed(RuntimeError):
    pass


def plan(pushes: int, pipeline: str, distinct: bool, first_seed: int = 0) -> list[tuple[str, int]]:
    """(pipeline name, generator seed) of each push."""
    if distinct:
        return [(f"{pipeline}-{k:02d}", first_seed) for k in range(pushes)]
    return [(pipeline, first_seed + k) for k in range(pushes)]


def seed(
    base_url: str,
    *,
    pushes: int = 10,
    executions: int = 10_000,
    pipeline: str = "bench-listing",
    distinct: bool = False,
    stages: int = 1,
    first_seed: int = 0,
    progress: bool = True,
) -> list[SeededPush]:
    """Push the pipelines; raises :class:`SeedFailed` on any answer but success or exists."""
    done: list[SeededPush] = []
    timeout = httpx.Timeout(PUSH_TIMEOUT_S, connect=10.0)
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for name, generator_seed in plan(pushes, pipeline, distinct, first_seed):
            body = push_body_bytes(name, executions, stages=stages, seed=generator_seed)
            started = time.perf_counter()
            response = client.post(
                "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
            )
            seconds = time.perf_counter() - started
            status = response.json().get("status") if response.status_code == 200 else None
            if status not in ("success", "exists"):
                raise SeedFailed(
                    f"push of {name} (seed {generator_seed}): HTTP {response.status_code}"
                    f" {response.text[:300]!r}"
                )
            done.append(SeededPush(name, generator_seed, executions, str(status), seconds))
            if progress:
                print(
                    f"[seed] {name} seed {generator_seed}: {executions:,} executions,"
                    f" {status} in {seconds:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--pipeline", default="bench-listing")
    parser.add_argument("--distinct", action="store_true", help="one pipeline per push")
    parser.add_argument("--stages", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args(argv)
    seed(
        args.base_url,
        pushes=args.pushes,
        executions=args.executions,
        pipeline=args.pipeline,
        distinct=args.distinct,
        stages=args.stages,
        first_seed=args.first_seed,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
