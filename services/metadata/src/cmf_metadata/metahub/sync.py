"""One sync with a peer: pull what changed there since the last successful sync, merge it
through the push (one transaction per pipeline, idempotent, the push's events), and only
then advance the peer's ``last_sync_time``.

The first sync is a full one: the peer's pipeline list, then ``mlmd_pull`` per pipeline. Later
ones ask ``mlmd_pull`` for every execution updated after ``last_sync_time`` (docs/metahub.md).
``last_sync_time`` is on the peer's clock (its ``Date`` at the start of the sync, less an
overlap), so clock skew between servers loses nothing; what the overlap pulls again merges as
``exists``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import asyncpg
import orjson
import structlog

from cmf_common.committed import CommittedPublisher
from cmf_metadata.files import ENV, BadFileName, FileStore, UploadTooLarge, upload_basename
from cmf_metadata.merge import PayloadRejected, PushStatus
from cmf_metadata.metahub.peers import PeerClient, PeerUnreachable, now_ms
from cmf_metadata.push import push

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SyncResult:
    status: str  # success | exists (nothing new)
    message: str
    last_sync_time: int
    pipelines: int
    executions_pulled: int
    executions_merged: int
    env_files: int = 0  # python-env files fetched from the peer


def _peer_time_ms(date_header: str | None) -> int | None:
    if not date_header:
        return None
    try:
        return int(parsedate_to_datetime(date_header).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _executions(pipeline: dict[str, Any]) -> int:
    stages = pipeline.get("stages") or []
    return sum(len(s.get("executions") or []) for s in stages if isinstance(s, dict))


async def _pipeline_names(peer: PeerClient) -> tuple[list[str], int | None]:
    response = await peer.request("GET", "/api/pipelines")
    if response.status_code != 200:
        raise PeerUnreachable(f"The peer's pipeline list answered {response.status_code}")
    names = response.json()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise PeerUnreachable("The peer's pipeline list is not a list of names")
    return names, _peer_time_ms(response.headers.get("date"))


async def _pull(peer: PeerClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await peer.request("POST", "/api/mlmd_pull", json=body)
    if response.status_code != 200:
        raise PeerUnreachable(f"The peer's mlmd_pull answered {response.status_code}")
    try:
        document = await asyncio.to_thread(orjson.loads, response.content)
    except orjson.JSONDecodeError:
        raise PeerUnreachable("The peer's mlmd_pull answer is not JSON") from None
    pipelines = document.get("Pipeline") if isinstance(document, dict) else None
    if not isinstance(pipelines, list):
        raise PeerUnreachable("The peer's mlmd_pull answer has no Pipeline list")
    return [p for p in pipelines if isinstance(p, dict) and isinstance(p.get("name"), str)]


async def pull_changes(
    peer: PeerClient, last_sync_time: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """The peer's pipelines changed after ``last_sync_time`` (None: all), and the peer's time
    before the first of them was read."""
    if last_sync_time is None:
        names, peer_time = await _pipeline_names(peer)
        found: list[dict[str, Any]] = []
        for name in names:
            found.extend(await _pull(peer, {"pipeline_name": name}))
        return found, peer_time
    time_response = await peer.request("GET", "/api/pipelines")
    peer_time = _peer_time_ms(time_response.headers.get("date"))
    return await _pull(peer, {"last_sync_time": last_sync_time}), peer_time


async def merge(
    pool: asyncpg.Pool, pipelines: list[dict[str, Any]], committed: CommittedPublisher | None
) -> int:
    """Merge each pulled pipeline as a push of it; the executions newly written."""
    merged = 0
    for pipeline in pipelines:
        payload = await asyncio.to_thread(orjson.dumps, {"Pipeline": [pipeline]})
        try:
            outcome = await push(
                pool,
                pipeline_name=pipeline["name"],
                json_payload=payload.decode(),
                exec_uuid=None,
                committed=committed,
            )
        except PayloadRejected as rejected:
            raise PeerUnreachable(
                f"The peer's pipeline {pipeline['name']!r} does not merge: {rejected.detail}"
            ) from None
        if outcome.status is PushStatus.SUCCESS:
            merged += outcome.executions
    return merged


def _python_envs(pipelines: list[dict[str, Any]]) -> set[str]:
    """The base names of the python-env files the pulled executions name (``Python_Env``)."""
    names: set[str] = set()
    for pipeline in pipelines:
        for stage in pipeline.get("stages") or []:
            for execution in (stage.get("executions") or []) if isinstance(stage, dict) else []:
                custom = execution.get("custom_properties") if isinstance(execution, dict) else None
                value = custom.get("Python_Env") if isinstance(custom, dict) else None
                if isinstance(value, str) and value.endswith((".txt", ".yaml")):
                    try:
                        names.add(upload_basename(value))
                    except BadFileName:
                        continue  # a name no upload could have made: nothing to fetch
    return names


async def fetch_python_envs(
    peer: PeerClient, pipelines: list[dict[str, Any]], files: FileStore, max_bytes: int
) -> int:
    """Fetch from the peer (``GET /api/python-env``, a route of every generation) the env
    files the pulled executions name that this server lacks; how many it stored. One the peer
    cannot give is logged and skipped: the metadata is what a sync must move, and a later sync
    that pulls the execution again tries again."""
    fetched = 0
    for name in sorted(_python_envs(pipelines)):
        if await files.exists(f"{ENV}/{name}"):
            continue
        response = await peer.request("GET", "/api/python-env", params={"file_name": name})
        if response.status_code != 200:
            log.warning(
                "metahub.env_missing", peer=peer.url, file=name, status=response.status_code
            )
            continue
        try:
            await files.save(f"{ENV}/{name}", _one(response.content), max_bytes=max_bytes)
        except (UploadTooLarge, OSError) as exc:
            log.warning("metahub.env_not_stored", peer=peer.url, file=name, reason=repr(exc))
            continue
        fetched += 1
    return fetched


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def sync_once(
    pool: asyncpg.Pool,
    peer: PeerClient,
    last_sync_time: int | None,
    *,
    committed: CommittedPublisher | None,
    overlap_ms: int,
    files: FileStore | None = None,
    max_file_bytes: int = 0,
) -> SyncResult:
    """Pull and merge, then fetch the env files the merged executions name (when ``files``);
    the caller advances the peer's ``last_sync_time`` to the answer's."""
    started = now_ms()
    pipelines, peer_time = await pull_changes(peer, last_sync_time)
    pulled = sum(_executions(p) for p in pipelines)
    merged = await merge(pool, pipelines, committed)
    envs = await fetch_python_envs(peer, pipelines, files, max_file_bytes) if files else 0
    next_time = max(0, (peer_time if peer_time is not None else started) - overlap_ms)
    if last_sync_time is not None:
        next_time = max(next_time, last_sync_time)
    if not pipelines:
        return SyncResult("success", "Nothing to sync", next_time, 0, 0, 0)
    status = "success" if merged else "exists"
    message = f"Synced {len(pipelines)} pipeline(s): {pulled} execution(s) pulled, {merged} new"
    if envs:
        message += f", {envs} python-env file(s) fetched"
    log.info(
        "metahub.synced",
        peer=peer.url,
        pipelines=len(pipelines),
        pulled=pulled,
        merged=merged,
        env_files=envs,
        full=last_sync_time is None,
    )
    return SyncResult(status, message, next_time, len(pipelines), pulled, merged, envs)
