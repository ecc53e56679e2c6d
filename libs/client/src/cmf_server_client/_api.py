"""The server's routes as request descriptions, and how each answer becomes a result: written
once here, sent by :class:`~cmf_server_client.Client` and
:class:`~cmf_server_client.AsyncClient` alike. A method that needs several requests is a
:data:`Plan`; a download lands through a :class:`Download`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import quote

import httpx

from cmf_server_client import errors
from cmf_server_client.models import (
    EXPLORER_LEVELS,
    Artifact,
    Execution,
    Graph,
    Lineage,
    ModelCard,
    Pipeline,
    Record,
    Stage,
)

NATIVE = "/api/native/v1"
UPSTREAM = "/api/v1"
DIRECTIONS = ("upstream", "downstream", "both")
LEVELS = ("pipeline", "stage", "execution", "artifact")
CHUNK = 1024 * 1024
Progress = Union[Callable[[int, Optional[int]], None], bool, None]
T = TypeVar("T")


def segment(value: Any) -> str:
    """A path segment, every reserved character (``/`` too) percent-encoded."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Call:
    """One request and what its JSON answer becomes (``wrap(body, server)``)."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    wrap: Callable[[Any, str], Any] = lambda body, _server: body
    json: Any = None


@dataclass(frozen=True)
class Paged:
    """A list of the native API, paged by keyset: ``{"items", "total", "next_cursor"}``."""

    path: str
    params: Mapping[str, Any]
    item: type[Record]
    page_size: int = 100


# A method's requests, stated once for both clients: a generator that yields each Call, is
# sent what the Call's ``wrap`` made of the answer, and returns the method's result. The
# clients differ only in how they wait for an answer (``Client._run``, ``AsyncClient._run``).
Plan = Generator[Call, Any, T]


class Pager:
    """A :class:`Paged` list walked page after page: ``next_call()`` asks for the next page
    while not ``done``; its answer is the page's items to hand on, ``max_items`` at most in
    all."""

    def __init__(self, paged: Paged, max_items: int | None) -> None:
        self.paged = paged
        self.left = max_items
        self.cursor: str | None = None
        self.done = False

    def next_call(self) -> Call:
        params = {**self.paged.params, "limit": self.paged.page_size, "cursor": self.cursor}
        return Call("GET", self.paged.path, params, self._items)

    def _items(self, body: Any, server: str) -> list[Any]:
        items = body["items"]
        if self.left is not None:
            # Done once an item past the limit is met (a page that ends at the limit is
            # followed by one more request, as a client that counts while it yields does).
            if len(items) > self.left:
                items, self.done = items[: self.left], True
            self.left -= len(items)
        self.cursor = body.get("next_cursor")
        if not self.cursor:
            self.done = True
        return [self.paged.item(item, server) for item in items]


def _wrap(kind: type[Record]) -> Callable[[Any, str], Any]:
    return lambda body, server: kind(body, server)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _page_size(page_size: int) -> int:
    if not 1 <= page_size <= 1000:
        raise ValueError(f"page_size must be between 1 and 1000, not {page_size}")
    return page_size


def list_filters(
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    type: str | None = None,
    properties: Mapping[str, Any] | None = None,
    created_after: int | None = None,
    created_before: int | None = None,
    q: str | None = None,
    sort: str = "id",
) -> dict[str, Any]:
    """The native lists' filters: ``properties`` becomes repeated ``property=key:value``."""
    return {
        "pipeline": pipeline,
        "stage": stage,
        "type": type,
        "property": [f"{k}:{v}" for k, v in (properties or {}).items()] or None,
        "created_after": created_after,
        "created_before": created_before,
        "q": q,
        "sort": sort,
    }


def pipelines(page_size: int) -> Paged:
    return Paged(f"{NATIVE}/pipelines", {}, Pipeline, _page_size(page_size))


def stages(pipeline: str) -> Call:
    def wrap(body: Any, server: str) -> list[Stage]:
        return [Stage(item, server) for item in body["items"]]

    return Call("GET", f"{NATIVE}/pipelines/{segment(pipeline)}/stages", wrap=wrap)


def pipeline(name: str) -> Plan[Pipeline]:
    """The pipeline ``name`` with its stages and its stage graph, found among every pipeline;
    :class:`~cmf_server_client.errors.NotFound` when there is none of that name."""
    pager = Pager(pipelines(1000), None)
    while not pager.done:
        for found in (yield pager.next_call()):
            if found["name"] == name:
                found_stages = yield stages(name)
                found["stages"] = [dict(s) for s in found_stages]
                found["graph"] = dict((yield display_graph(name, "stage")))
                result: Pipeline = found
                return result
    raise errors.NotFound(404, f"Pipeline {name} not found.", code="pipeline_not_found")


def display_graph(pipeline: str, level: str) -> Call:
    _check_choice("level", level, LEVELS)
    view = {"pipeline": pipeline, "level": EXPLORER_LEVELS[level]}
    return Call(
        "GET",
        "/api/display_lineage",
        {"pipeline_name": pipeline, "level": level},
        lambda body, server: Graph(body, server, view=view),
    )


def executions(page_size: int, filters: dict[str, Any]) -> Paged:
    return Paged(f"{NATIVE}/executions", filters, Execution, _page_size(page_size))


def execution(execution_id: int) -> Call:
    return Call("GET", f"{NATIVE}/executions/{int(execution_id)}", wrap=_wrap(Execution))


def execution_by_uuid(uuid: str, pipeline: str | None) -> Plan[Execution]:
    """The execution whose ``Execution_uuid`` set holds ``uuid`` (looked for by free text),
    with its events."""
    pager = Pager(executions(1000, list_filters(pipeline=pipeline, q=uuid)), None)
    while not pager.done:
        for found in (yield pager.next_call()):
            if uuid in str(found.get("uuid") or "").split(","):
                result: Execution = yield execution(found["id"])
                return result
    raise errors.NotFound(404, f"execution {uuid} not found", code="execution_not_found")


def artifacts(page_size: int, filters: dict[str, Any]) -> Paged:
    return Paged(f"{NATIVE}/artifacts", filters, Artifact, _page_size(page_size))


def artifact(artifact_id: int, events: int) -> Call:
    return Call(
        "GET", f"{NATIVE}/artifacts/{int(artifact_id)}", {"events": events}, _wrap(Artifact)
    )


def traversal(
    direction: str,
    depth: int,
    types: str | list[str] | tuple[str, ...] | None,
    max_nodes: int,
    cursor: str | None,
) -> dict[str, Any]:
    _check_choice("direction", direction, DIRECTIONS)
    if isinstance(types, (list, tuple)):
        types = ",".join(types)
    return {
        "direction": direction,
        "depth": depth,
        "types": types or None,
        "max_nodes": max_nodes,
        "cursor": cursor,
    }


def artifact_lineage(artifact_id: int | None, uri: str | None, params: dict[str, Any]) -> Call:
    if (artifact_id is None) == (uri is None):
        raise ValueError("give an artifact id or a uri, not both")
    if artifact_id is not None:
        path, query = f"{NATIVE}/lineage/artifacts/{int(artifact_id)}", params
    else:
        path, query = f"{NATIVE}/lineage/artifacts", {"uri": uri, **params}
    return Call("GET", path, query, _lineage(params))


def execution_lineage(uuid: str, pipeline: str | None, params: dict[str, Any]) -> Call:
    return Call(
        "GET",
        f"{NATIVE}/lineage/executions/{segment(uuid)}",
        {"pipeline": pipeline, **params},
        _lineage(params),
    )


def _lineage(params: Mapping[str, Any]) -> Callable[[Any, str], Lineage]:
    """A walk's answer, which remembers the walk asked for (its web UI link shows it)."""
    return lambda body, server: Lineage(body, server, asked=params)


def enveloped(body: Any) -> Any:
    """Upstream v1's ``data``; ``None`` for its "found nothing" (HTTP 200, ``code: 404``)."""
    if isinstance(body, dict) and body.get("status") == "error":
        return None
    return body.get("data") if isinstance(body, dict) else body


MODEL_CARD_TABLES = ("model", "executions", "inputs", "outputs")


def _model_card(body: Any, server: str) -> ModelCard:
    """The card's four tables (the reference answers them as a list), by name."""
    data = enveloped(body)
    if isinstance(data, list):
        data = {name: rows for name, rows in zip(MODEL_CARD_TABLES, data)}
    return ModelCard(data if isinstance(data, dict) else {}, server)


def model_card(model_id: int) -> Call:
    return Call("GET", f"{UPSTREAM}/artifacts/models/{int(model_id)}/card", wrap=_model_card)


def upstream(method: str, path: str, json: Any = None, **params: Any) -> Call:
    """An upstream v1 route (CMFQuery over REST); its ``data``, or ``None`` when it found
    nothing."""
    return Call(method, f"{UPSTREAM}{path}", params, lambda body, _s: enveloped(body), json)


def blob_path(digest: str) -> str:
    return f"{NATIVE}/blobs/{segment(digest)}"


def artifact_params(pipeline: str, artifact_name: str) -> dict[str, str]:
    return {"pipeline_name": pipeline, "artifact_name": artifact_name}


def destination(dest: str | os.PathLike[str], artifact_name: str) -> Path:
    """``dest``, or inside it the file's own name when it is a folder."""
    target = Path(dest)
    if target.is_dir():
        return target / (Path(artifact_name.split(":", 1)[0]).name or "artifact")
    return target


def etag_digest(etag: str | None) -> str | None:
    """The digest an ``ETag`` carries (``"<md5>"`` or ``W/"<md5>"``)."""
    if not etag:
        return None
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


class ProgressReporter:
    """Calls a progress callback, or drives a tqdm bar (``progress=True``, when tqdm is
    installed), as bytes go by."""

    def __init__(self, progress: Progress, total: int | None, label: str) -> None:
        self.done = 0
        self.total = total
        self.callback: Callable[[int, int | None], None] | None = None
        self.bar: Any = None
        if callable(progress):
            self.callback = progress
        elif progress:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=label)

    def advance(self, size: int) -> None:
        self.done += size
        if self.callback is not None:
            self.callback(self.done, self.total)
        if self.bar is not None:
            self.bar.update(size)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Download:
    """A download's bytes on their way to ``target``: written to ``<target>.part`` as they
    arrive, hashed and reported, and moved into place by :meth:`landed` only once whole and
    matching the server's md5."""

    def __init__(self, target: Path, length: str | None, progress: Progress) -> None:
        self.target = target
        self.part = target.with_name(target.name + ".part")
        self.digest = hashlib.md5(usedforsecurity=False)
        self.reporter = ProgressReporter(progress, int(length) if length else None, target.name)

    @contextmanager
    def writing(self) -> Iterator[Callable[[bytes], None]]:
        """A function that writes one chunk; a transfer that breaks off meanwhile leaves no
        file and raises :class:`~cmf_server_client.errors.TransportError`."""
        try:
            with open(self.part, "wb") as file:

                def write(chunk: bytes) -> None:
                    file.write(chunk)
                    self.digest.update(chunk)
                    self.reporter.advance(len(chunk))

                yield write
        except httpx.TransportError as exc:
            self.part.unlink(missing_ok=True)
            name = self.target.name
            raise errors.TransportError(f"download of {name} broke off: {exc!r}") from exc
        finally:
            self.reporter.close()

    def landed(self, etag: str | None) -> Path:
        """Move the downloaded part into place once its md5 matches the ``ETag`` (a DVC md5,
        when the server sent one)."""
        md5 = self.digest.hexdigest()
        expected = etag_digest(etag)
        if expected and len(expected) == 32 and expected != md5:
            self.part.unlink()
            raise errors.CmfServerError(
                f"downloaded bytes hash to {md5}, not the {expected} the server announced"
            )
        os.replace(self.part, self.target)
        return self.target


def md5_of_file(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
