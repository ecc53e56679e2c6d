"""Inline pictures for notebooks: a graph of nodes and edges (a lineage answer, a pipeline's
stages, an execution's inputs and outputs) drawn as SVG by this module alone, with no browser
and no layout library: nodes in columns by their longest path from a source, ordered within a
column by their parents' places, edges as curves from left to right."""

from __future__ import annotations

import html
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_DRAWN", "graph_svg", "properties_table"]

MAX_DRAWN = 300
NODE_W = 180
NODE_H = 40
COL_GAP = 70
ROW_GAP = 14
PAD = 16
LABEL_CHARS = 26

_FILL = {
    "execution": "#ede9fe",
    "stage": "#e0f2fe",
    "pipeline": "#fde68a",
    "Dataset": "#dbeafe",
    "Model": "#dcfce7",
    "Metrics": "#fef9c3",
    "Step_Metrics": "#fef9c3",
    "Label": "#fce7f3",
    "Environment": "#f1f5f9",
}
_STROKE = {"execution": "#6d28d9", "stage": "#0369a1", "pipeline": "#b45309"}


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(node: Mapping[str, Any]) -> str:
    name = str(node.get("display_name") or node.get("name") or node.get("id") or "")
    if node.get("kind") == "artifact" and not node.get("display_name"):
        # A recorded artifact name is path:md5[:execution]; the file's name says most.
        name = name.split(":", 1)[0].rsplit("/", 1)[-1] or name
    return name


def _layers(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the longest path to it from a node without parents (a node on a
    cycle, which lineage never has, stays where the walk left it)."""
    children: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(ids, 0)
    for source, target in edges:
        children[source].append(target)
        indegree[target] += 1
    layer = dict.fromkeys(ids, 0)
    ready = deque(i for i in ids if indegree[i] == 0)
    while ready:
        node = ready.popleft()
        for child in children[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return layer


def _order(
    ids: Sequence[str], layer: Mapping[str, int], edges: Sequence[tuple[str, str]]
) -> dict[int, list[str]]:
    """The nodes of each column, ordered by the mean row of their parents (fewer crossings)."""
    parents: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        parents[target].append(source)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in ids:
        columns[layer[node]].append(node)
    row: dict[str, float] = {}
    for column in sorted(columns):
        nodes = columns[column]
        keyed = []
        for index, node in enumerate(nodes):
            placed = [row[p] for p in parents[node] if p in row]
            keyed.append((sum(placed) / len(placed) if placed else float(index), index, node))
        columns[column] = [node for _, _, node in sorted(keyed)]
        for index, node in enumerate(columns[column]):
            row[node] = float(index)
    return columns


def graph_svg(
    nodes: Sequence[Mapping[str, Any]],
    edges: Sequence[Mapping[str, Any]],
    *,
    root: str | None = None,
    links: Mapping[str, str] | None = None,
    caption: str | None = None,
) -> str:
    """An SVG document of the graph. ``root`` is drawn bold; ``links`` maps a node id to a URL
    its box opens (the web UI's view of it). Past :data:`MAX_DRAWN` nodes the rest are left out
    and the caption says so."""
    links = links or {}
    drawn = list(nodes[:MAX_DRAWN])
    note = caption or ""
    if len(nodes) > MAX_DRAWN:
        note = f"{note} (first {MAX_DRAWN} of {len(nodes)} nodes drawn)".strip()
    ids = [str(n["id"]) for n in drawn]
    known = set(ids)
    pairs = [
        (str(e["source"]), str(e["target"]))
        for e in edges
        if str(e["source"]) in known and str(e["target"]) in known
    ]
    kinds = {(str(e["source"]), str(e["target"])): str(e.get("kind", "")) for e in edges}
    layer = _layers(ids, pairs)
    columns = _order(ids, layer, pairs)
    height_rows = max((len(c) for c in columns.values()), default=0)
    width = PAD * 2 + max(len(columns), 1) * (NODE_W + COL_GAP) - COL_GAP
    caption_h = 22 if note else 0
    height = PAD * 2 + max(height_rows, 1) * (NODE_H + ROW_GAP) - ROW_GAP + caption_h
    where: dict[str, tuple[float, float]] = {}
    for column, members in columns.items():
        for index, member in enumerate(members):
            where[member] = (
                PAD + column * (NODE_W + COL_GAP),
                PAD + caption_h + index * (NODE_H + ROW_GAP),
            )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        '<defs><marker id="cmf-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker></defs>',
    ]
    if note:
        out.append(f'<text x="{PAD}" y="{PAD + 10}" fill="#475569">{html.escape(note)}</text>')
    for source, target in pairs:
        sx, sy = where[source]
        tx, ty = where[target]
        x1, y1 = sx + NODE_W, sy + NODE_H / 2
        x2, y2 = tx, ty + NODE_H / 2
        bend = max((x2 - x1) / 2, 20)
        dash = ' stroke-dasharray="4 3"' if kinds.get((source, target)) == "DEPENDS_ON" else ""
        out.append(
            f'<path d="M {x1} {y1} C {x1 + bend} {y1}, {x2 - bend} {y2}, {x2} {y2}" '
            f'fill="none" stroke="#94a3b8" stroke-width="1.2"{dash} marker-end="url(#cmf-arrow)"/>'
        )
    for node in drawn:
        node_id = str(node["id"])
        x, y = where[node_id]
        kind = str(node.get("kind", ""))
        type_name = str(node.get("type") or kind)
        fill = _FILL.get(kind if kind != "artifact" else type_name, "#f3f4f6")
        stroke = _STROKE.get(kind, "#475569")
        bold = node_id == root
        weight = ' font-weight="bold"' if bold else ""
        corner = 4 if kind == "execution" else 9
        title = "\n".join(
            str(v)
            for v in (node.get("name"), node.get("type"), node.get("uri"), node.get("uuid"))
            if v
        )
        box = [
            f'<g class="cmf-node cmf-{html.escape(kind)}">',
            f"<title>{html.escape(title)}</title>",
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{corner}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2.5 if bold else 1}"/>',
            f'<text x="{x + 8}" y="{y + 16}" fill="#0f172a"{weight}>'
            f"{html.escape(_short(_label(node)))}</text>",
            f'<text x="{x + 8}" y="{y + 32}" fill="#475569" font-size="10">'
            f"{html.escape(_short(type_name, LABEL_CHARS + 6))}</text>",
            "</g>",
        ]
        link = links.get(node_id)
        if link:
            box = [
                f'<a xlink:href="{html.escape(link)}" href="{html.escape(link)}" target="_blank">',
                *box,
                "</a>",
            ]
        out.extend(box)
    out.append("</svg>")
    return "\n".join(out)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return html.escape(_short(text, 120))


def properties_table(rows: Mapping[str, Any], *, title: str | None = None) -> str:
    """A small HTML table of name/value pairs."""
    parts = ['<table class="cmf-properties" style="border-collapse:collapse;font-size:12px">']
    if title:
        parts.append(
            f'<caption style="text-align:left;font-weight:bold">{html.escape(title)}</caption>'
        )
    for name, value in rows.items():
        parts.append(
            '<tr><th style="text-align:left;padding:1px 8px 1px 0;font-weight:normal;'
            f'color:#475569">'
            f'{html.escape(str(name))}</th><td style="text-align:left">{_cell(value)}</td></tr>'
        )
    parts.append("</table>")
    return "".join(parts)
