"""The synchronous client, :class:`Client`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional, Union

import httpx

from cmf_server_client import _api, errors
from cmf_server_client._http import NO_RETRIES, RetryPolicy, SyncTransport, body_of
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

__all__ = ["Client"]

PathLike = Union[str, "os.PathLike[str]"]
Types = Optional[Union[str, list[str], tuple[str, ...]]]


class Client:
    """A CMF Server, from Python: ``Client("http://127.0.0.1:8080")``.

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = SyncTransport(
            url, token=token, timeout=timeout, retry=retry, transport=transport
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._http.base_url

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, call: _api.Call) -> Any:
        body = self._http.json(call.method, call.path, params=call.params, json=call.json)
        return call.wrap(body, self.url)

    def _run(self, plan: _api.Plan[_api.T]) -> _api.T:
        answer: Any = None
        while True:
            try:
                call = plan.send(answer)
            except StopIteration as done:
                result: _api.T = done.value
                return result
            answer = self._call(call)

    def _iterate(self, paged: _api.Paged, max_items: int | None) -> Iterator[Any]:
        pager = _api.Pager(paged, max_items)
        while not pager.done:
            yield from self._call(pager.next_call())

    # -- pipelines and stages ---------------------------------------------------------------

    def pipelines(
        self, *, page_size: int = 100, max_items: int | None = None
    ) -> Iterator[Pipeline]:
        """Every pipeline, by name: ``id``, ``name``, ``properties``, ``stage_count``,
        ``execution_count``, ``artifact_count``, ``last_push_time_since_epoch``, ``seq``."""
        return self._iterate(_api.pipelines(page_size), max_items)

    def pipeline(self, name: str) -> Pipeline:
        """One pipeline with its ``stages`` and its stage graph (``graph``), which a notebook
        draws; :class:`~cmf_server_client.errors.NotFound` when there is none of that name."""
        return self._run(_api.pipeline(name))

    def stages(self, pipeline: str) -> list[Stage]:
        """The pipeline's stages (full names, ``<pipeline>/<stage>``) with their counts."""
        result: list[Stage] = self._call(_api.stages(pipeline))
        return result

    def pipeline_graph(self, pipeline: str, level: str = "artifact") -> Graph:
        """The pipeline's graph at ``level``: ``artifact`` (artifacts and executions),
        ``execution``, ``stage`` or ``pipeline`` (``/display_lineage``)."""
        result: Graph = self._call(_api.display_graph(pipeline, level))
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
    ) -> Iterator[Execution]:
        """Executions matching every filter given: ``stage`` is the full stage name,
        ``properties`` equality on property values, ``created_after`` (inclusive) and
        ``created_before`` (exclusive) in epoch ms, ``q`` free text in any property value;
        ``sort`` a field (``-field`` descending)."""
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

    def execution(self, execution_id: int) -> Execution:
        """One execution with its ``events`` (each with its artifact)."""
        result: Execution = self._call(_api.execution(execution_id))
        return result

    def execution_by_uuid(self, uuid: str, *, pipeline: str | None = None) -> Execution:
        """The execution whose ``Execution_uuid`` set holds ``uuid``, with its events."""
        return self._run(_api.execution_by_uuid(uuid, pipeline))

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
    ) -> Iterator[Artifact]:
        """Artifacts, with the filters of :meth:`executions` plus ``uri`` (the content hash)
        and ``name`` (the full recorded name, ``path:md5``); ``sort`` also by ``name``,
        ``type``."""
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

    def artifact(self, artifact_id: int, *, events: int = 1000) -> Artifact:
        """One artifact with its first ``events`` events (each with its execution)."""
        result: Artifact = self._call(_api.artifact(artifact_id, events))
        return result

    # -- lineage ----------------------------------------------------------------------------

    def lineage(
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
        """An artifact's lineage (by server id, or by ``uri``): ``direction`` ``upstream``,
        ``downstream`` or ``both``; ``depth`` executions crossed (1..100); ``types`` the
        artifact types to keep; past ``max_nodes`` the answer is ``partial`` with a
        ``next_cursor`` to pass back as ``cursor``."""
        params = _api.traversal(direction, depth, types, max_nodes, cursor)
        result: Lineage = self._call(_api.artifact_lineage(artifact_id, uri, params))
        return result

    def upstream(
        self,
        artifact_id: int | None = None,
        *,
        uri: str | None = None,
        depth: int = 20,
        types: Types = None,
        max_nodes: int = 1000,
    ) -> Lineage:
        """What the artifact was made from: :meth:`lineage` upstream."""
        return self.lineage(
            artifact_id,
            uri=uri,
            direction="upstream",
            depth=depth,
            types=types,
            max_nodes=max_nodes,
        )

    def downstream(
        self,
        artifact_id: int | None = None,
        *,
        uri: str | None = None,
        depth: int = 20,
        types: Types = None,
        max_nodes: int = 1000,
    ) -> Lineage:
        """What was made from the artifact: :meth:`lineage` downstream."""
        return self.lineage(
            artifact_id,
            uri=uri,
            direction="downstream",
            depth=depth,
            types=types,
            max_nodes=max_nodes,
        )

    def execution_lineage(
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
        """An execution's lineage by its uuid (``pipeline`` when the uuid is in several)."""
        params = _api.traversal(direction, depth, types, max_nodes, cursor)
        result: Lineage = self._call(_api.execution_lineage(uuid, pipeline, params))
        return result

    def ancestry(
        self,
        uuid: str,
        *,
        pipeline: str | None = None,
        depth: int = 20,
        max_nodes: int = 1000,
    ) -> Lineage:
        """The execution's ancestry: the executions and artifacts upstream of it."""
        return self.execution_lineage(
            uuid, pipeline=pipeline, direction="upstream", depth=depth, max_nodes=max_nodes
        )

    # -- model card, health -----------------------------------------------------------------

    def model_card(self, model_id: int) -> ModelCard:
        """The model card of the Model artifact ``model_id``: its record, the executions that
        made and used it, their inputs and outputs."""
        result: ModelCard = self._call(_api.model_card(model_id))
        return result

    def health(self) -> Record:
        """``/health``: ``status`` (``ok``, ``degraded``, ``down``) and each part's check; a
        server that is down answers too (no exception, no retry)."""
        try:
            response = self._http.send("GET", "/health", retry=NO_RETRIES)
        except errors.Unavailable as exc:
            return Record(exc.body if isinstance(exc.body, dict) else {}, self.url)
        return Record(body_of(response), self.url)

    # -- artifact bytes ---------------------------------------------------------------------

    def _download(
        self,
        path: str,
        params: Mapping[str, Any],
        target: Path,
        progress: _api.Progress,
    ) -> Path:
        response = self._http.send("GET", path, params=params, stream=True)
        download = _api.Download(target, response.headers.get("Content-Length"), progress)
        try:
            with download.writing() as write:
                for chunk in response.iter_bytes(_api.CHUNK):
                    write(chunk)
        finally:
            response.close()
        return download.landed(response.headers.get("ETag"))

    def download(
        self,
        pipeline: str,
        artifact_name: str,
        dest: PathLike = ".",
        *,
        progress: _api.Progress = None,
    ) -> Path:
        """Stream an artifact's bytes (``/artifact_pull``; ``artifact_name`` is the full
        recorded name, ``path:md5``) to ``dest`` (a file, or a folder to put it in under its own
        name); returns the file's path. It appears only once complete and matching the
        server's md5. ``progress`` is a callback ``(bytes_done, total_or_None)``, or ``True``
        for a tqdm bar when tqdm is installed."""
        target = _api.destination(dest, artifact_name)
        params = _api.artifact_params(pipeline, artifact_name)
        return self._download("/api/artifact_pull", params, target, progress)

    def download_blob(self, digest: str, dest: PathLike, *, progress: _api.Progress = None) -> Path:
        """Stream the stored blob ``digest`` (``/api/native/v1/blobs/{digest}``) to ``dest``."""
        target = _api.destination(dest, digest)
        return self._download(_api.blob_path(digest), {}, target, progress)

    def has_blob(self, digest: str) -> bool:
        """Whether the server stores the blob ``digest`` (``HEAD``)."""
        try:
            self._http.send("HEAD", _api.blob_path(digest)).close()
        except errors.NotFound:
            return False
        return True

    def _send_file(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        source: PathLike,
        progress: _api.Progress,
    ) -> Any:
        size = os.path.getsize(source)
        reporter = _api.ProgressReporter(progress, size, Path(source).name)

        def body() -> Iterator[bytes]:
            reporter.done = 0
            with open(source, "rb") as file:
                for chunk in iter(lambda: file.read(_api.CHUNK), b""):
                    reporter.advance(len(chunk))
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            response = self._http.send(method, path, params=params, content=body, headers=headers)
        finally:
            reporter.close()
        return body_of(response)

    def upload(
        self,
        source: PathLike,
        pipeline: str,
        artifact_name: str,
        *,
        progress: _api.Progress = None,
    ) -> Any:
        """Stream the file ``source`` as the bytes of the recorded artifact ``artifact_name``
        of ``pipeline`` (``/artifact_push``); the server checks them against the artifact's
        md5 (409 :class:`~cmf_server_client.errors.Conflict` when they differ). Answers the
        server's ``{"uri", "md5", "sha256", "size", "deduplicated", ...}``."""
        params = _api.artifact_params(pipeline, artifact_name)
        return self._send_file("POST", "/api/artifact_push", params, source, progress)

    def upload_blob(
        self,
        source: PathLike,
        *,
        digest: str | None = None,
        progress: _api.Progress = None,
    ) -> Any:
        """Store the file ``source`` as the blob of its md5 (``digest``, computed when not
        given). A blob the server already has is not sent again: then the answer is
        ``{"digest", "deduplicated": True}``."""
        known = digest or _api.md5_of_file(os.fspath(source))
        if self.has_blob(known):
            return {"digest": known, "deduplicated": True}
        return self._send_file("PUT", _api.blob_path(known), {}, source, progress)
