"""The asynchronous client, :class:`AsyncClient`: the methods of :class:`~cmf_server_client.Client`,
awaited; lists are async iterators."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from cmf_server_client import _api, errors
from cmf_server_client._http import NO_RETRIES, AsyncTransport, RetryPolicy, body_of
from cmf_server_client.client import PathLike, Types
from cmf_server_client.models import (
    Artifact,
    Execution,
    Graph,
    Lineage,
    ModelCard,
    Pipeline,
    Record,
    Stage,
)

__all__ = ["AsyncClient"]


class AsyncClient:
    """A CMF Server, from asyncio: ``async with AsyncClient(url) as client: ...``; everything
    :class:`~cmf_server_client.Client` says holds.

    ``token`` (else ``$CMF_SERVER_TOKEN``) is sent as ``Authorization: Bearer <token>``, as the
    gateway expects. Every request has a timeout (``timeout`` seconds, or an ``httpx.Timeout``;
    30 s by default); answers 429 and 503 are retried with backoff, honouring ``Retry-After``
    (``retry``); any other error status raises the
    :class:`~cmf_server_client.errors.ServerError` subclass for it, with the server's message.
    Lists are iterators that fetch page after page as they are consumed. Use it as a context
    manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 (frozen)
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = AsyncTransport(
            url, token=token, timeout=timeout, retry=retry, transport=transport
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._http.base_url

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r})"

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(self, call: _api.Call) -> Any:
        body = await self._http.json(call.method, call.path, params=call.params, json=call.json)
        return call.wrap(body, self.url)

    async def _run(self, plan: _api.Plan[_api.T]) -> _api.T:
        answer: Any = None
        while True:
            try:
                call = plan.send(answer)
            except StopIteration as done:
                result: _api.T = done.value
                return result
            answer = await self._call(call)

    async def _iterate(self, paged: _api.Paged, max_items: int | None) -> AsyncIterator[Any]:
        pager = _api.Pager(paged, max_items)
        while not pager.done:
            for item in await self._call(pager.next_call()):
                yield item

    # -- pipelines and stages ---------------------------------------------------------------

    def pipelines(
        self, *, page_size: int = 100, max_items: int | None = None
    ) -> AsyncIterator[Pipeline]:
        """As :meth:`Client.pipelines`, as an async iterator."""
        return self._iterate(_api.pipelines(page_size), max_items)

    async def pipeline(self, name: str) -> Pipeline:
        """As :meth:`Client.pipeline`, awaited."""
        return await self._run(_api.pipeline(name))

    async def stages(self, pipeline: str) -> list[Stage]:
        """As :meth:`Client.stages`, awaited."""
        result: list[Stage] = await self._call(_api.stages(pipeline))
        return result

    async def pipeline_graph(self, pipeline: str, level: str = "artifact") -> Graph:
        """As :meth:`Client.pipeline_graph`, awaited."""
        result: Graph = await self._call(_api.display_graph(pipeline, level))
        return result

    # -- executions -------------------------------------------------------------------------

    def executions(
        self,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        type: str | None = None,
        properties: Mapping[str, Any] | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        q: str | None = None,
        sort: str = "id",
        page_size: int = 100,
        max_items: int | None = None,
    ) -> AsyncIterator[Execution]:
        """As :meth:`Client.executions`, as an async iterator."""
        filters = _api.list_filters(
            pipeline=pipeline,
            stage=stage,
            type=type,
            properties=properties,
            created_after=created_after,
            created_before=created_before,
            q=q,
            sort=sort,
        )
        return self._iterate(_api.executions(page_size, filters), max_items)

    async def execution(self, execution_id: int) -> Execution:
        """As :meth:`Client.execution`, awaited."""
        result: Execution = await self._call(_api.execution(execution_id))
        return result

    async def execution_by_uuid(self, uuid: str, *, pipeline: str | None = None) -> Execution:
        """As :meth:`Client.execution_by_uuid`, awaited."""
        return await self._run(_api.execution_by_uuid(uuid, pipeline))

    # -- artifacts --------------------------------------------------------------------------

    def artifacts(
        self,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        type: str | None = None,
        uri: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        q: str | None = None,
        sort: str = "id",
        page_size: int = 100,
        max_items: int | None = None,
    ) -> AsyncIterator[Artifact]:
        """As :meth:`Client.artifacts`, as an async iterator."""
        filters = _api.list_filters(
            pipeline=pipeline,
            stage=stage,
            type=type,
            properties=properties,
            created_after=created_after,
            created_before=created_before,
            q=q,
            sort=sort,
        )
        filters.update(uri=uri, name=name)
        return self._iterate(_api.artifacts(page_size, filters), max_items)

    async def artifact(self, artifact_id: int, *, events: int = 1000) -> Artifact:
        """As :meth:`Client.artifact`, awaited."""
        result: Artifact = await self._call(_api.artifact(artifact_id, events))
        return result

    # -- lineage ----------------------------------------------------------------------------

    async def lineage(
        self,
        artifact_id: int | None = None,
        *,
        uri: str | None = None,
        direction: str = "both",
        depth: int = 20,
        types: Types = None,
        max_nodes: int = 1000,
        cursor: str | None = None,
    ) -> Lineage:
        """As :meth:`Client.lineage`, awaited."""
        params = _api.traversal(direction, depth, types, max_nodes, cursor)
        result: Lineage = await self._call(_api.artifact_lineage(artifact_id, uri, params))
        return result

    async def upstream(
        self,
        artifact_id: int | None = None,
        *,
        uri: str | None = None,
        depth: int = 20,
        types: Types = None,
        max_nodes: int = 1000,
    ) -> Lineage:
        """As :meth:`Client.upstream`, awaited."""
        return await self.lineage(
            artifact_id,
            uri=uri,
            direction="upstream",
            depth=depth,
            types=types,
            max_nodes=max_nodes,
        )

    async def downstream(
        self,
        artifact_id: int | None = None,
        *,
        uri: str | None = None,
        depth: int = 20,
        types: Types = None,
        max_nodes: int = 1000,
    ) -> Lineage:
        """As :meth:`Client.downstream`, awaited."""
        return await self.lineage(
            artifact_id,
            uri=uri,
            direction="downstream",
            depth=depth,
            types=types,
            max_nodes=max_nodes,
        )

    async def execution_lineage(
        self,
        uuid: str,
        *,
        pipeline: str | None = None,
        direction: str = "both",
        depth: int = 20,
        types: Types = None,
        max_nodes: int = 1000,
        cursor: str | None = None,
    ) -> Lineage:
        """As :meth:`Client.execution_lineage`, awaited."""
        params = _api.traversal(direction, depth, types, max_nodes, cursor)
        result: Lineage = await self._call(_api.execution_lineage(uuid, pipeline, params))
        return result

    async def ancestry(
        self,
        uuid: str,
        *,
        pipeline: str | None = None,
        depth: int = 20,
        max_nodes: int = 1000,
    ) -> Lineage:
        """As :meth:`Client.ancestry`, awaited."""
        return await self.execution_lineage(
            uuid, pipeline=pipeline, direction="upstream", depth=depth, max_nodes=max_nodes
        )

    # -- model card, health -----------------------------------------------------------------

    async def model_card(self, model_id: int) -> ModelCard:
        """As :meth:`Client.model_card`, awaited."""
        result: ModelCard = await self._call(_api.model_card(model_id))
        return result

    async def health(self) -> Record:
        """As :meth:`Client.health`, awaited."""
        try:
            response = await self._http.send("GET", "/health", retry=NO_RETRIES)
        except errors.Unavailable as exc:
            return Record(exc.body if isinstance(exc.body, dict) else {}, self.url)
        return Record(body_of(response), self.url)

    # -- artifact bytes ---------------------------------------------------------------------

    async def _download(
        self,
        path: str,
        params: Mapping[str, Any],
        target: Path,
        progress: _api.Progress,
    ) -> Path:
        response = await self._http.send("GET", path, params=params, stream=True)
        download = _api.Download(target, response.headers.get("Content-Length"), progress)
        try:
            with download.writing() as write:  # local chunks, each small
                async for chunk in response.aiter_bytes(_api.CHUNK):
                    write(chunk)
        finally:
            await response.aclose()
        return download.landed(response.headers.get("ETag"))

    async def download(
        self,
        pipeline: str,
        artifact_name: str,
        dest: PathLike = ".",
        *,
        progress: _api.Progress = None,
    ) -> Path:
        """As :meth:`Client.download`, awaited."""
        target = _api.destination(dest, artifact_name)
        params = _api.artifact_params(pipeline, artifact_name)
        return await self._download("/api/artifact_pull", params, target, progress)

    async def download_blob(
        self, digest: str, dest: PathLike, *, progress: _api.Progress = None
    ) -> Path:
        """As :meth:`Client.download_blob`, awaited."""
        target = _api.destination(dest, digest)
        return await self._download(_api.blob_path(digest), {}, target, progress)

    async def has_blob(self, digest: str) -> bool:
        """As :meth:`Client.has_blob`, awaited."""
        try:
            await (await self._http.send("HEAD", _api.blob_path(digest))).aclose()
        except errors.NotFound:
            return False
        return True

    async def _send_file(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        source: PathLike,
        progress: _api.Progress,
    ) -> Any:
        size = await asyncio.to_thread(os.path.getsize, source)
        reporter = _api.ProgressReporter(progress, size, Path(source).name)

        async def body() -> AsyncIterator[bytes]:
            reporter.done = 0
            with open(source, "rb") as file:  # noqa: ASYNC230 (read in a thread, chunk by chunk)
                while chunk := await asyncio.to_thread(file.read, _api.CHUNK):
                    reporter.advance(len(chunk))
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            response = await self._http.send(
                method, path, params=params, content=body, headers=headers
            )
        finally:
            reporter.close()
        return body_of(response)

    async def upload(
        self,
        source: PathLike,
        pipeline: str,
        artifact_name: str,
        *,
        progress: _api.Progress = None,
    ) -> Any:
        """As :meth:`Client.upload`, awaited."""
        params = _api.artifact_params(pipeline, artifact_name)
        return await self._send_file("POST", "/api/artifact_push", params, source, progress)

    async def upload_blob(
        self,
        source: PathLike,
        *,
        digest: str | None = None,
        progress: _api.Progress = None,
    ) -> Any:
        """As :meth:`Client.upload_blob`, awaited."""
        known: str = (
            digest if digest else await asyncio.to_thread(_api.md5_of_file, os.fspath(source))
        )
        if await self.has_blob(known):
            return {"digest": known, "deduplicated": True}
        return await self._send_file("PUT", _api.blob_path(known), {}, source, progress)
