"""Where a push's time goes inside the server, outside the database: the server's own pure
steps (``cmf_metadata.merge``), timed in this process on a generated payload.

    python -m bench.phases 10000

The database transaction is the rest of the ``push.merged`` duration that ``bench.run`` reports.
"""

from __future__ import annotations

import gc
import resource
import sys
import time

from cmf_testing.generator import push_body_bytes


def _max_rss_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(argv: list[str] | None = None) -> int:
    from cmf_metadata.merge import plan_merge, read_payload
    from cmf_metadata.schemas import PushRequest

    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 10_000
    name = f"phases-{n}"
    body = push_body_bytes(name, n)
    print(f"{n:,} executions, body {len(body) / 1e6:.1f} MB, max RSS {_max_rss_mib()} MiB")

    def step(label: str, started: float) -> None:
        print(
            f"  {label:<34} {time.perf_counter() - started:7.2f} s   max RSS {_max_rss_mib()} MiB"
        )

    started = time.perf_counter()
    request = PushRequest.model_validate_json(body)
    step("request body (PushRequest)", started)
    del body
    gc.collect()
    started = time.perf_counter()
    pipeline = read_payload(request.json_payload, name)
    step("json_payload validation", started)
    assert pipeline is not None
    started = time.perf_counter()
    plan_merge(pipeline, set(), None)
    step("merge plan (new pipeline)", started)
    stored = {e.properties["Execution_uuid"] for s in pipeline.stages for e in s.executions}
    started = time.perf_counter()
    plan_merge(pipeline, {str(u) for u in stored}, None)
    step("merge plan (all exist)", started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
