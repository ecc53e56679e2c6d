"""A big push, merged in a process of its own so it never starves the server.

Reading and validating a body of hundreds of MB is one long call into a parser that holds the
GIL (pydantic took ~24 s for 50,000 executions, msgspec still ~2 s): a thread does not help the
event loop, which then waits for the GIL as long. So a push whose body exceeds
``BIG_PUSH_BYTES`` is spooled to a file as it arrives and merged by ``python -m
cmf_metadata.push_worker`` with a connection of its own: the server's loop only copies bytes to
disk and waits. The worker reads the body with the lean msgspec twins of the wire models
(``cmf_metadata.schemas``), keeps each execution as raw JSON until it is planned (the payload is
never a tree of objects), and runs the same merge, in one transaction, as a small push does:
all or nothing. Whatever the lean reading refuses is read again by the pydantic models, which
decide the answer, so a big body gets the same answer a small one would.

At most ``BIG_PUSHES`` run at once; one more is answered 503 with ``Retry-After`` before its
body is read, rather than letting the pushes exhaust the server's memory together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from cmf_common.access import check_push, check_write, current_prefix
from cmf_common.tracing import current_traceparent
from cmf_metadata.merge import (
    MergePlan,
    MergePlanner,
    PayloadRejected,
    PipelineHead,
    PushStatus,
    Rejection,
    plan_merge,
    read_payload,
    split_uuids,
)
from cmf_metadata.push import PUSH_BYTES, PushOutcome
from cmf_metadata.schemas import (
    LeanExecution,
    LeanPayload,
    LeanPipeline,
    LeanPushRequest,
    PipelineIn,
)

SPOOL_CHUNK = 1024 * 1024  # bytes gathered before each write to the spool file


class BigPushesBusy(Exception):
    """Every big-push slot is taken; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("busy")
        self.retry_after_s = retry_after_s


class BodyInvalid(Exception):
    """The request body is not a push request: pydantic's errors, located under ``body``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid body")
        self.errors = errors


class PipelineNameMissing(Exception):
    """The push names no pipeline (nor does its payload hold exactly one)."""


class PushFailed(Exception):
    """The push's process failed; nothing was stored (its transaction never committed)."""


class DatabaseUnavailable(Exception):
    """The push's process could not reach PostgreSQL; nothing was stored."""


# --- reading a big payload (in the push's process) --------------------------------------------


_EXECUTION = msgspec.json.Decoder(LeanExecution)
_PAYLOAD = msgspec.json.Decoder(LeanPayload)
_REQUEST = msgspec.json.Decoder(LeanPushRequest)


@dataclass(frozen=True)
class LeanSource:
    """A payload's pipeline, read lean: its executions are decoded again one by one when
    planned, so only the plan is ever held as objects."""

    pipeline: LeanPipeline
    uuids: list[str]

    @property
    def name(self) -> str:
        return self.pipeline.name

    def plan(self, existing: set[str], exec_uuid: str | None) -> MergePlan:
        planner = MergePlanner(PipelineHead.of(self.pipeline), existing, exec_uuid)
        for stage in self.pipeline.stages:
            for raw in stage.executions:
                planner.add(stage, _EXECUTION.decode(raw))
        return planner.finish()


@dataclass(frozen=True)
class ModelSource:
    """A payload the pydantic models read (the lean reading refused it, and they did not)."""

    pipeline: PipelineIn
    uuids: list[str]

    @property
    def name(self) -> str:
        return self.pipeline.name

    def plan(self, existing: set[str], exec_uuid: str | None) -> MergePlan:
        return plan_merge(self.pipeline, existing, exec_uuid)


def _executions(payload: LeanPayload) -> Iterator[tuple[LeanPipeline, LeanExecution]]:
    for pipeline in payload.Pipeline or ():
        for stage in pipeline.stages:
            for raw in stage.executions:
                yield pipeline, _EXECUTION.decode(raw)


def read_big_payload(json_payload: str, pipeline_name: str) -> LeanSource | ModelSource | None:
    """``merge.read_payload`` for a big payload: the same checks and answers, without the tree.

    Every execution of the payload is validated once here (as pydantic validates them all),
    keeping only the named pipeline's uuids; ``None``: the pipeline is not in the payload."""
    if not json_payload.strip() or "\\u0000" in json_payload or "\x00" in json_payload:
        return _decided(json_payload, pipeline_name)
    try:
        payload = _PAYLOAD.decode(json_payload)
        uuids: set[str] = set()
        missing_uuid = False
        for pipeline, execution in _executions(payload):
            if pipeline.name != pipeline_name:
                continue
            found = split_uuids(execution.properties.get("Execution_uuid"))
            missing_uuid = missing_uuid or (execution.name == "" and not found)
            uuids.update(found)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _decided(json_payload, pipeline_name)
    if not payload.Pipeline:
        raise PayloadRejected(
            Rejection.NO_PIPELINE, "Invalid JSON payload. The pipeline name is missing."
        )
    chosen = next((p for p in payload.Pipeline if p.name == pipeline_name), None)
    if chosen is None:
        return None
    if missing_uuid:
        raise PayloadRejected(Rejection.VERSION_UPDATE, "version_update")
    return LeanSource(chosen, sorted(uuids))


def _decided(json_payload: str, pipeline_name: str) -> ModelSource | None:
    """What the pydantic models make of a payload the lean reading refused."""
    from cmf_metadata.merge import payload_uuids

    pipeline = read_payload(json_payload, pipeline_name)
    return None if pipeline is None else ModelSource(pipeline, payload_uuids(pipeline))


@dataclass(frozen=True)
class PushRequestRead:
    pipeline_name: str
    exec_uuid: str | None
    json_payload: str


def read_big_request(body: bytes) -> PushRequestRead:
    """The request body, as the route reads a small one. Raises :class:`BodyInvalid` or
    :class:`PipelineNameMissing`."""
    from pydantic import ValidationError

    from cmf_metadata.merge import only_pipeline_name
    from cmf_metadata.schemas import PushRequest, body_errors

    try:
        lean = _REQUEST.decode(body or b"null")
        name, exec_uuid, json_payload, legacy_id = (
            lean.pipeline_name,
            lean.exec_uuid,
            lean.json_payload,
            lean.id,
        )
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            model = PushRequest.model_validate_json(body or b"null")
        except ValidationError as exc:
            raise BodyInvalid(body_errors(exc)) from exc
        name, exec_uuid, json_payload, legacy_id = (
            model.pipeline_name,
            model.exec_uuid,
            model.json_payload,
            model.id,
        )
    if name is None and legacy_id is not None:
        name = only_pipeline_name(json_payload)  # legacy client, no name sent
    if name is None or not name.strip():
        raise PipelineNameMissing()
    return PushRequestRead(name, exec_uuid, json_payload)


# --- the server's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class BigPushSettings:
    threshold_bytes: int
    concurrency: int
    retry_after_s: int
    spool_dir: Path | None
    database_url: str | None
    schema: str
    statement_timeout_ms: int


class BigPushes:
    """The server's big pushes: the slots, the spool files and the push processes."""

    def __init__(self, settings: BigPushSettings) -> None:
        self.settings = settings
        self.running = 0

    def is_big(self, content_length: int | None) -> bool:
        return content_length is not None and content_length > self.settings.threshold_bytes

    async def body_or_stream(self, chunks: AsyncIterator[bytes]) -> bytes | AsyncIterator[bytes]:
        """A body that declared no length (chunked): its bytes when it ends within the
        threshold; past it, a stream of the whole body (what was read, then the rest) for
        :meth:`push`, so a big body never waits whole in memory whatever its framing."""
        read: list[bytes] = []
        size = 0
        async for chunk in chunks:
            read.append(chunk)
            size += len(chunk)
            if size > self.settings.threshold_bytes:
                return _chained(read, chunks)
        return b"".join(read)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of the ``concurrency`` slots, or :class:`BigPushesBusy` at once."""
        if self.running >= self.settings.concurrency:
            raise BigPushesBusy(self.settings.retry_after_s)
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1

    async def clean_interrupted_spools(self) -> int:
        """Remove the spool files of pushes a ``kill -9`` cut off (at start): this host's whose
        process is gone, and anyone's older than a day (the spool dir may be a volume that
        other replicas share, whose pushes may be in flight). How many it removed."""
        if self.settings.spool_dir is None:
            return 0  # the system's temporary dir: not ours to sweep
        return await asyncio.to_thread(_remove_stale_spools, self.settings.spool_dir)

    @contextlib.asynccontextmanager
    async def spooled(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[Path]:
        """The body written to a file as it arrives (removed after); memory holds ~1 MB of it."""
        spool_dir = self.settings.spool_dir
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=_spool_prefix(), suffix=SPOOL_SUFFIX, dir=spool_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as file:
                pending: list[bytes] = []
                size = 0
                async for chunk in chunks:
                    pending.append(chunk)
                    size += len(chunk)
                    if size >= SPOOL_CHUNK:
                        await asyncio.to_thread(file.write, b"".join(pending))
                        pending, size = [], 0
                if pending:
                    await asyncio.to_thread(file.write, b"".join(pending))
            yield path
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def push(self, chunks: AsyncIterator[bytes]) -> PushOutcome:
        """Spool the body, merge it in a process of its own, and return the outcome; raises
        what a small push's reading raises (:class:`BodyInvalid`, :class:`PipelineNameMissing`,
        :class:`~cmf_metadata.merge.PayloadRejected`, :class:`~cmf_common.errors.Forbidden`
        for a pipeline outside the request's prefix), :class:`BigPushesBusy` before reading
        anything when every slot is taken, :class:`DatabaseUnavailable`."""
        check_write()
        with self.slot():
            async with self.spooled(chunks) as body:
                PUSH_BYTES.observe(body.stat().st_size)
                answer = await self.merge(body, current_prefix())
        kind = answer["kind"]
        if kind == "forbidden":
            check_push(answer["pipeline"])  # raises its 403
        if kind == "invalid":
            raise BodyInvalid(answer["errors"])
        if kind == "no_name":
            raise PipelineNameMissing()
        if kind == "rejected":
            raise PayloadRejected(Rejection(answer["rejection"]), answer["detail"])
        if kind == "unavailable":
            raise DatabaseUnavailable()
        return PushOutcome(
            PushStatus(answer["status"]),
            answer["pipeline"],
            answer["seq"],
            answer["executions"],
            answer["artifacts"],
            answer["events"],
        )

    async def merge(self, body: Path, prefix: str | None = None) -> dict[str, Any]:
        """Run the push in its own process; its answer (``push_worker.run_job``'s). A push to
        a pipeline outside ``prefix`` is refused there before anything is merged."""
        return await self.run(
            {
                "body": str(body),
                "prefix": prefix,
                "database_url": self.settings.database_url,
                "schema": self.settings.schema,
                "statement_timeout_ms": self.settings.statement_timeout_ms,
                # The push's outbox rows continue the request's trace (cmf_common.tracing).
                "traceparent": current_traceparent(),
            }
        )

    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """``python -m cmf_metadata.push_worker`` on ``job``; killed if the request is
        cancelled (the client left, the server stops), so its transaction rolls back."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cmf_metadata.push_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            out, _ = await proc.communicate(orjson.dumps(job))
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0 or not out.strip():
            raise PushFailed(f"the push process exited with {proc.returncode}")
        answer: dict[str, Any] = orjson.loads(out.strip().rsplit(b"\n", 1)[-1])
        return answer


async def _chained(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    head.reverse()  # each chunk is let go once it is passed on
    while head:
        yield head.pop()
    async for chunk in rest:
        yield chunk


SPOOL_SUFFIX = ".json"
STALE_SPOOL_S = 24 * 3600


def _spool_prefix() -> str:
    """``.push-<host>-<pid>-``: whose spool file it is, for :func:`_remove_stale_spools`."""
    return f".push-{socket.gethostname()}-{os.getpid()}-"


def _remove_stale_spools(spool_dir: Path) -> int:
    here = f".push-{socket.gethostname()}-"
    removed = 0
    try:
        candidates = list(spool_dir.glob(f".push-*{SPOOL_SUFFIX}"))
    except OSError:
        return 0
    for path in candidates:
        try:
            orphan = path.name.startswith(here) and not _alive(path.name[len(here) :])
            if orphan or time.time() - path.stat().st_mtime > STALE_SPOOL_S:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def _alive(rest: str) -> bool:
    """Whether the process whose pid ``rest`` starts with (``<pid>-…``) runs on this host."""
    pid = rest.split("-", 1)[0]
    if not pid.isdigit():
        return True  # not a name we made: leave it to the age rule
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
