"""One sync with a peer: pull what changed there since the last successful sync, merge it
through the push (one transaction per pipeline, idempotent, the push's events), and only
then advance the peer's ``last_sync_time``.

The first sync is a full one: the peer's pipeline list, then ``mlmd_pull`` per pipeline. Later
ones ask ``mlmd_pull`` for every execution updated after ``last_sync_time`` (docs/metahub.md).
A peer that serves only upstream's v1 routes is read through their twins
(``/api/v1/pipelines``, ``/api/v1/mlmd/pull``).
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
import httpx
import orjson
import structlog

from cmf_common.committed import CommittedPublisher
from cmf_metadata.files import ENV, BadFileName, FileStore, UploadTooLarge, upload_basename
from cmf_metadata.merge import PayloadRejected, PushStatus
from cmf_metadata.metahub.peers import (
    NOT_SERVED,
    PEER_APIS,
    PeerApi,
    PeerClient,
    PeerUnreachable,
    now_ms,
)
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


async def _pipeline_names(peer: PeerClient) -> tuple[PeerApi, list[str], int | None]:
    """The API generation the peer serves (the first whose pipeline list it answers), its
    pipeline names, and its clock (``Date``) at that answer."""
    for api in PEER_APIS:
        response = await peer.request("GET", api.pipelines)
        if response.status_code in NOT_SERVED:
            continue
        if response.status_code != 200:
            raise PeerUnreachable(f"The peer's pipeline list answered {response.status_code}")
        names = api.data(response)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise PeerUnreachable("The peer's pipeline list is not a list of names")
        return api, names, _peer_time_ms(response.headers.get("date"))
    raise PeerUnreachable("The peer serves no pipeline list of the 0.1.0 or the v1 routes")


async def _pull(peer: PeerClient, api: PeerApi, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await peer.request("POST", api.pull, json=body)
    if response.status_code != 200:
        raise PeerUnreachable(f"The peer's {api.pull} answered {response.status_code}")
    try:
        document = await asyncio.to_thread(orjson.loads, response.content)
    except orjson.JSONDecodeError:
        raise PeerUnreachable(f"The peer's {api.pull} answer is not JSON") from None
    pipelines = document.get("Pipeline") if isinstance(document, dict) else None
    if not isinstance(pipelines, list):
        raise PeerUnreachable(f"The peer's {api.pull} answer has no Pipeline list")
    return [p for p in pipelines if isinstance(p, dict) and isinstance(p.get("name"), str)]


@dataclass(frozen=True)
class Pulled:
    """What a sync pulled: the peer's changed pipelines, its clock before the first of them
    was read, and the API generation it was read through."""

    pipelines: list[dict[str, Any]]
    peer_time: int | None
    api: PeerApi


async def pull_changes(peer: PeerClient, last_sync_time: int | None) -> Pulled:
    """The peer's pipelines changed after ``last_sync_time`` (None: all), through the 0.1.0
    routes or, on a peer that serves only upstream's v1, the v1 ones."""
    api, names, peer_time = await _pipeline_names(peer)
    if not names:  # an empty peer (a v1 one answers its pull 404 "Database doesn't exist.")
        return Pulled([], peer_time, api)
    if last_sync_time is None:
        found: list[dict[str, Any]] = []
        for name in names:
            found.extend(await _pull(peer, api, {"pipeline_name": name}))
        return Pulled(found, peer_time, api)
    return Pulled(await _pull(peer, api, {"last_sync_time": last_sync_time}), peer_time, api)


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


def _env_content(api: PeerApi, response: httpx.Response) -> bytes | None:
    """The env file in a ``python-env`` answer: the body (0.1.0), or the envelope's text (v1)."""
    if not api.enveloped:
        return response.content
    text = api.data(response)
    return text.encode() if isinstance(text, str) else None


async def fetch_python_envs(
    peer: PeerClient,
    api: PeerApi,
    pipelines: list[dict[str, Any]],
    files: FileStore,
    max_bytes: int,
) -> int:
    """Fetch from the peer (``GET /api/python-env?file_name=``, or v1's) the env files the
    pulled executions name that this server lacks; how many it stored. One the peer cannot
    give is logged and skipped: the metadata is what a sync must move, and a later sync that
    pulls the execution again tries again."""
    fetched = 0
    for name in sorted(_python_envs(pipelines)):
        if await files.exists(f"{ENV}/{name}"):
            continue
        response = await peer.request("GET", api.python_env, params={"file_name": name})
        content = _env_content(api, response) if response.status_code == 200 else None
        if content is None:
            log.warning(
                "metahub.env_missing", peer=peer.url, file=name, status=response.status_code
            )
            continue
        try:
            await files.save(f"{ENV}/{name}", _one(content), max_bytes=max_bytes)
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
    changes = await pull_changes(peer, last_sync_time)
    pipelines, peer_time = changes.pipelines, changes.peer_time
    pulled = sum(_executions(p) for p in pipelines)
    merged = await merge(pool, pipelines, committed)
    envs = (
        await fetch_python_envs(peer, changes.api, pipelines, files, max_file_bytes) if files else 0
    )
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
        api=changes.api.name,
    )
    return SyncResult(status, message, next_time, len(pipelines), pulled, merged, envs)
