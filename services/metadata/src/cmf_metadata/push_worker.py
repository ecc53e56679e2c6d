"""``python -m cmf_metadata.push_worker``: one big push, in a process of its own
(``cmf_metadata.big_push`` starts it).

It reads its job (JSON: the spooled body's path, the database and schema) on stdin, merges the
push with a connection of its own in one transaction, and writes its answer as one JSON line
on stdout: ``{"kind": "outcome", ...}``, ``"invalid"`` (the body's errors), ``"no_name"``, or
``"rejected"`` (a :class:`~cmf_metadata.merge.PayloadRejected`'s kind and detail), or
``"forbidden"`` (the pipeline is outside the job's ``prefix``: nothing merged). Logs go to
stderr, the server's log.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from cmf_common.db import create_pool
from cmf_common.logging import configure_logging
from cmf_common.tracing import continue_trace
from cmf_metadata.big_push import (
    BodyInvalid,
    LeanSource,
    ModelSource,
    PipelineNameMissing,
    read_big_payload,
    read_big_request,
)
from cmf_metadata.merge import MergePlan, PayloadRejected, PushStatus
from cmf_metadata.push import PushOutcome, merge

log = structlog.get_logger(__name__)
NICENESS = 10


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    try:
        return await _run_job(job)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError) as exc:
        log.warning("push.database_unavailable", error=type(exc).__name__)
        return {"kind": "unavailable"}


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


async def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    body = _read(job["body"])  # the only copy: dropped once the request is read
    try:
        request = read_big_request(body)
    except BodyInvalid as invalid:
        return {"kind": "invalid", "errors": invalid.errors}
    except PipelineNameMissing:
        return {"kind": "no_name"}
    del body
    name, exec_uuid, json_payload = request.pipeline_name, request.exec_uuid, request.json_payload
    del request
    prefix = job.get("prefix")
    if prefix and not name.startswith(prefix):
        return {"kind": "forbidden", "pipeline": name}
    try:
        source = read_big_payload(json_payload, name)
    except PayloadRejected as rejected:
        return {"kind": "rejected", "rejection": rejected.kind.value, "detail": rejected.detail}
    if source is None:
        outcome = PushOutcome(PushStatus.PIPELINE_NOT_EXIST, name)
    else:
        # Held only here, so the payload (the raw executions point into it) is freed once
        # planned, before the rows are written.
        holder = {"source": source}
        del source, json_payload
        pool = await create_pool(
            job["database_url"],
            job["schema"],
            min_size=1,
            max_size=1,
            statement_timeout_ms=job["statement_timeout_ms"],
            application_name="cmf-metadata-push",
        )
        try:
            name, uuids = holder["source"].name, holder["source"].uuids
            outcome = await merge(
                pool,
                name,
                uuids,
                lambda existing: _planned(holder, existing, exec_uuid),
                plan_in_thread=False,
            )
        finally:
            await pool.close()
    return {
        "kind": "outcome",
        "status": outcome.status.value,
        "pipeline": outcome.pipeline,
        "seq": outcome.seq,
        "executions": outcome.executions,
        "artifacts": outcome.artifacts,
        "events": outcome.events,
    }


def _planned(
    holder: dict[str, LeanSource | ModelSource], existing: set[str], exec_uuid: str | None
) -> MergePlan:
    plan = holder.pop("source").plan(existing, exec_uuid)
    gc.collect()
    return plan


def main() -> int:
    configure_logging()
    # Reading and planning a big push is CPU work that may wait; the server's own requests
    # should not wait behind it.
    os.nice(NICENESS)
    gc.freeze()  # the imports' objects: never scanned again
    job = orjson.loads(sys.stdin.buffer.read())
    # The request's context, so the outbox rows this push writes carry its trace.
    continue_trace(job.get("traceparent"))
    answer = asyncio.run(run_job(job))
    sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
