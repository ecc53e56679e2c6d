"""What the clients answer: the server's JSON objects as ``dict`` subclasses (so every field the
server sends is there, under the server's name), which draw themselves in a notebook
(``_repr_html_``, ``_repr_svg_``) and know their page in the web UI (``ui_url``)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from cmf_server_client.display import graph_svg, properties_table

__all__ = [
    "Artifact",
    "Execution",
    "Graph",
    "Lineage",
    "ModelCard",
    "Pipeline",
    "Record",
    "Stage",
    "explorer_link",
    "ui_link",
]


def _pipeline_of(entity: Mapping[str, Any]) -> str | None:
    pipeline = entity.get("pipeline")
    if not pipeline:
        pipelines = entity.get("pipelines") or []
        pipeline = pipelines[0] if pipelines else None
    return str(pipeline) if pipeline else None


def ui_link(server: str, kind: str, entity: Mapping[str, Any]) -> str | None:
    """The web UI's page (under ``/ui/``) of a pipeline (``/ui/p/<name>``), an execution (its
    stage's table with its drawer open: ``/ui/p/<name>/executions?stage=&exec=<id>``) or an
    artifact (``/ui/p/<name>/artifacts?type=&art=<id>``); ``None`` when the entity does not
    say its pipeline. ``entity`` is a record or a graph node (its ``id`` ``kind:<id>``)."""
    base = f"{server.rstrip('/')}/ui/p"
    if kind == "pipeline":
        return f"{base}/{quote(str(entity['name']), safe='')}"
    pipeline = _pipeline_of(entity)
    if pipeline is None:
        return None
    key = str(entity.get("id", "")).rpartition(":")[2]
    if kind == "execution":
        query = {"stage": entity.get("stage") or entity.get("type"), "exec": key}
    elif kind == "artifact":
        query = {"type": entity.get("type"), "art": key}
    else:
        return None
    present = {k: v for k, v in query.items() if v}
    return f"{base}/{quote(pipeline, safe='')}/{kind}s?{urlencode(present)}"


# The lineage explorer's level (``/ui/p/<name>/explorer?level=``) for each level of
# ``/display_lineage`` (whose ``artifact`` level holds the executions too).
EXPLORER_LEVELS = {
    "artifact": "combined",
    "execution": "execution",
    "stage": "stage",
    "pipeline": "pipeline",
}
# How deep the explorer looks around a node (its depth control's limit).
EXPLORER_MAX_DEPTH = 20


def explorer_link(server: str, pipeline: str, **query: Any) -> str:
    """The web UI's lineage explorer of ``pipeline`` (``/ui/p/<name>/explorer``) with the view
    ``query`` describes (docs/ui-explorer.md: ``level``, ``focus``, ``dir``, ``depth``,
    ``types``, ``sel``...); empty values are left out."""
    present = {k: v for k, v in query.items() if v not in (None, "")}
    url = f"{server.rstrip('/')}/ui/p/{quote(pipeline, safe='')}/explorer"
    return f"{url}?{urlencode(present)}" if present else url


def _link(url: str, text: str = "Open in the CMF web UI") -> str:
    return f'<a href="{html.escape(url)}" target="_blank">{html.escape(text)}</a>'


class Record(dict):  # type: ignore[type-arg]
    """A JSON object from the server. ``server`` is the base URL it came from."""

    kind = "record"

    def __init__(self, data: Any = (), server: str = "") -> None:
        super().__init__(data)
        self.server = server

    @property
    def ui_url(self) -> str | None:
        """This object's page in the web UI, where it has one."""
        return None

    def _summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.items() if not isinstance(v, (list, dict))}

    def _title(self) -> str:
        return f"{self.kind} {self.get('name', self.get('id', ''))}"

    def _repr_html_(self) -> str:
        parts = [properties_table(self._summary(), title=self._title())]
        for name in ("properties", "custom_properties"):
            value = self.get(name)
            if isinstance(value, dict) and value:
                parts.append(properties_table(value, title=name))
        if self.ui_url:
            parts.append(f"<p>{_link(self.ui_url)}</p>")
        return "".join(parts)


class Pipeline(Record):
    """A pipeline as ``/api/native/v1/pipelines`` lists it, with its ``stages`` and its stage
    graph (``graph``, ``/display_lineage`` at the stage level) when fetched by
    ``Client.pipeline``."""

    kind = "pipeline"

    @property
    def ui_url(self) -> str | None:
        return ui_link(self.server, "pipeline", self) if self.server else None

    @property
    def graph(self) -> Graph | None:
        """Its stage graph, which links to the explorer's stage level."""
        graph = self.get("graph")
        if not isinstance(graph, dict):
            return None
        return Graph(graph, self.server, view={"pipeline": self.get("name"), "level": "stage"})

    def _repr_svg_(self) -> str | None:
        graph = self.graph
        return graph._repr_svg_() if graph is not None else None

    def _repr_html_(self) -> str:
        counts = {
            k: self.get(k)
            for k in ("stage_count", "execution_count", "artifact_count")
            if k in self
        }
        parts = [properties_table({"name": self.get("name"), **counts}, title="pipeline")]
        svg = self._repr_svg_()
        if svg:
            parts.append(f"<div>{svg}</div>")
        if self.ui_url:
            parts.append(f"<p>{_link(self.ui_url)}</p>")
        graph = self.graph
        if graph is not None and graph.ui_url:
            parts.append(f"<p>{_link(graph.ui_url, 'Its lineage in the CMF web UI')}</p>")
        return "".join(parts)


class Stage(Record):
    kind = "stage"


class Artifact(Record):
    """An artifact of ``/api/native/v1/artifacts`` (with its ``events`` when fetched alone)."""

    kind = "artifact"

    @property
    def ui_url(self) -> str | None:
        return ui_link(self.server, "artifact", self) if self.server else None


class Execution(Record):
    """An execution of ``/api/native/v1/executions`` (with its ``events`` when fetched alone:
    then it draws its inputs, itself and its outputs)."""

    kind = "execution"

    @property
    def ui_url(self) -> str | None:
        return ui_link(self.server, "execution", self) if self.server else None

    def _title(self) -> str:
        return f"execution {self.get('id')} ({self.get('stage') or self.get('type')})"

    def short_name(self) -> str:
        """``<stage without the pipeline>_<first 4 of the uuid>``, as the lineage names it."""
        stage = str(self.get("stage") or self.get("type") or "")
        return f"{stage.split('/', 1)[-1]}_{str(self.get('uuid') or '')[:4]}"

    def graph(self) -> Graph | None:
        """Its inputs → itself → its outputs, from its events."""
        events = self.get("events")
        if not isinstance(events, list):
            return None
        me = f"execution:{self['id']}"
        nodes: list[dict[str, Any]] = [
            {
                "id": me,
                "kind": "execution",
                "name": self.get("name") or self.short_name(),
                "type": self.get("type"),
                "uuid": self.get("uuid"),
                "stage": self.get("stage"),
                "pipeline": self.get("pipeline"),
            }
        ]
        edges = []
        seen = set()
        for event in events:
            artifact = event.get("artifact") or {}
            node_id = f"artifact:{artifact.get('id')}"
            if node_id not in seen:
                seen.add(node_id)
                pipelines = [self["pipeline"]] if self.get("pipeline") else []
                nodes.append(
                    {"kind": "artifact", "pipelines": pipelines, **artifact, "id": node_id}
                )
            if event.get("kind") == "OUTPUT":
                edges.append({"source": me, "target": node_id, "kind": "OUTPUT"})
            else:
                edges.append({"source": node_id, "target": me, "kind": "INPUT"})
        return Graph({"root": me, "nodes": nodes, "edges": edges}, self.server)

    def _repr_svg_(self) -> str | None:
        graph = self.graph()
        return graph._repr_svg_() if graph is not None else None

    def _repr_html_(self) -> str:
        svg = self._repr_svg_()
        table = super()._repr_html_()
        return f"{table}<div>{svg}</div>" if svg else table


class Graph(Record):
    """Nodes and edges (``/display_lineage``, a lineage answer): drawn as SVG, each artifact and
    execution box a link to its page in the web UI, the whole linking to the same view in the
    web UI's lineage explorer (``view``: its pipeline and query, see :func:`explorer_link`)."""

    kind = "graph"

    def __init__(
        self, data: Any = (), server: str = "", *, view: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(data, server)
        self.view = dict(view or {})

    @property
    def ui_url(self) -> str | None:
        """The explorer's view of this graph, when its pipeline is known."""
        query = dict(self.view)
        pipeline = query.pop("pipeline", None)
        if not self.server or not pipeline:
            return None
        return explorer_link(self.server, str(pipeline), **query)

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return list(self.get("nodes") or [])

    @property
    def edges(self) -> list[dict[str, Any]]:
        return list(self.get("edges") or [])

    def node_links(self) -> dict[str, str]:
        if not self.server:
            return {}
        links = {}
        for node in self.nodes:
            kind, _, key = str(node.get("id", "")).partition(":")
            if kind in ("artifact", "execution"):
                link = ui_link(self.server, kind, node)
            elif kind == "pipeline":
                link = ui_link(self.server, "pipeline", {"name": key})
            else:
                continue
            if link:
                links[node["id"]] = link
        return links

    def _caption(self) -> str | None:
        return None

    def _repr_svg_(self) -> str:
        return graph_svg(
            self.nodes,
            self.edges,
            root=self.get("root"),
            links=self.node_links(),
            caption=self._caption(),
        )

    def _repr_html_(self) -> str:
        parts = [f"<div>{self._repr_svg_()}</div>"]
        if self.ui_url:
            parts.append(f"<p>{_link(self.ui_url)}</p>")
        return "".join(parts)


class Lineage(Graph):
    """An artifact's or an execution's lineage (``/api/native/v1/lineage/...``): ``root``,
    ``nodes``, ``edges``, and ``partial``/``reason``/``next_cursor`` when ``max_nodes`` cut the
    walk. ``asked`` is the walk that was asked for (``direction``, ``depth``, ``types``), which
    the web UI link shows again."""

    kind = "lineage"

    def __init__(
        self, data: Any = (), server: str = "", *, asked: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(data, server)
        self.asked = dict(asked or {})

    @property
    def partial(self) -> bool:
        return bool(self.get("partial"))

    def artifacts(self) -> list[dict[str, Any]]:
        """The artifact nodes other than the root."""
        return [
            n for n in self.nodes if n.get("kind") == "artifact" and n["id"] != self.get("root")
        ]

    def executions(self) -> list[dict[str, Any]]:
        return [
            n for n in self.nodes if n.get("kind") == "execution" and n["id"] != self.get("root")
        ]

    @property
    def ui_url(self) -> str | None:
        """The same walk in the web UI's lineage explorer: focused on the root, the same
        direction and artifact types, as deep as the explorer looks (at most
        :data:`EXPLORER_MAX_DEPTH` executions); ``None`` when the root does not say its
        pipeline."""
        root = self.get("root")
        node = next((n for n in self.nodes if n.get("id") == root), None)
        pipeline = _pipeline_of(node) if node is not None else None
        if not self.server or not root or pipeline is None:
            return None
        depth = self.asked.get("depth")
        direction = self.asked.get("direction")
        return explorer_link(
            self.server,
            pipeline,
            focus=root,
            dir=direction if direction in ("upstream", "downstream") else None,
            depth=min(int(depth), EXPLORER_MAX_DEPTH) if depth else None,
            types=self.asked.get("types"),
            sel=root,
        )

    def _caption(self) -> str | None:
        if self.partial:
            return f"partial: {self.get('reason') or 'cut by max_nodes'}"
        return None


class ModelCard(Record):
    """A model's card (upstream's ``/v1/artifacts/models/{id}/card``), four tables of
    records: ``model`` (the model's record), ``executions`` (those that made and used it),
    ``inputs`` and ``outputs`` (their artifacts)."""

    kind = "model card"

    def _repr_html_(self) -> str:
        parts = []
        for name, value in self.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                columns = sorted({k for row in value for k in row})[:12]
                head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
                body = "".join(
                    "<tr>"
                    + "".join(f"<td>{html.escape(str(row.get(c, '')))[:80]}</td>" for c in columns)
                    + "</tr>"
                    for row in value
                )
                parts.append(
                    f"<p><b>{html.escape(name)}</b></p><table><tr>{head}</tr>{body}</table>"
                )
        return "".join(parts) or properties_table(self)
