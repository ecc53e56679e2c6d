"""Notebook pictures: well-formed SVG, the root marked, each box a link to the web UI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from cmf_server_client import Execution, Lineage, Pipeline
from cmf_server_client.display import MAX_DRAWN, graph_svg

SERVER = "http://cmf.test"
SVG = "{http://www.w3.org/2000/svg}"
LINEAGE = {
    "root": "artifact:5",
    "nodes": [
        {
            "id": "artifact:5",
            "kind": "artifact",
            "name": "model.pkl:7e93",
            "type": "Model",
            "pipelines": ["p"],
        },
        {
            "id": "execution:2",
            "kind": "execution",
            "name": "Train_c4f6",
            "type": "p/Train",
            "stage": "p/Train",
            "pipelines": ["p"],
        },
        {"id": "artifact:4", "kind": "artifact", "name": "a/train.tsv:2be9", "type": "Dataset"},
        {"id": "execution:1", "kind": "execution", "name": "Prepare_be14", "type": "p/Prepare"},
        {"id": "artifact:2", "kind": "artifact", "name": "a/<data>.xml:2ed8", "type": "Dataset"},
    ],
    "edges": [
        {"source": "artifact:2", "target": "execution:1", "kind": "INPUT"},
        {"source": "execution:1", "target": "artifact:4", "kind": "OUTPUT"},
        {"source": "artifact:4", "target": "execution:2", "kind": "INPUT"},
        {"source": "execution:2", "target": "artifact:5", "kind": "OUTPUT"},
    ],
    "partial": False,
}


def test_a_lineage_draws_as_svg_in_columns_from_source_to_root() -> None:
    svg = Lineage(LINEAGE, SERVER)._repr_svg_()
    root = ET.fromstring(svg)
    rects = root.findall(f".//{SVG}rect")
    assert len(rects) == 5
    xs = [float(r.get("x", 0)) for r in rects]
    # nodes in the order given: the root is last in the flow, the raw input first
    assert xs[0] == max(xs) and xs[4] == min(xs)
    assert [r.get("stroke-width") for r in rects].count("2.5") == 1
    assert "&lt;data&gt;.xml" in svg


def test_each_box_links_to_its_web_ui_page_and_the_html_to_the_view() -> None:
    asked = {"direction": "upstream", "depth": 3, "types": "Dataset,Model", "max_nodes": 1000}
    lineage = Lineage(LINEAGE, SERVER, asked=asked)
    root = ET.fromstring(lineage._repr_svg_())
    links = {a.get("href") for a in root.iter(f"{SVG}a")}
    model = f"{SERVER}/ui/p/p/artifacts?type=Model&art=5"
    assert model in links
    assert f"{SERVER}/ui/p/p/executions?stage=p%2FTrain&exec=2" in links
    assert len(links) == 2  # the nodes that do not say their pipeline link nowhere
    # The whole: the same walk in the lineage explorer, focused on the root.
    view = (
        f"{SERVER}/ui/p/p/explorer?focus=artifact%3A5&dir=upstream&depth=3"
        "&types=Dataset%2CModel&sel=artifact%3A5"
    )
    assert lineage.ui_url == view
    assert f'href="{view.replace("&", "&amp;")}"' in lineage._repr_html_()


def test_the_explorer_link_looks_both_ways_and_as_deep_as_the_explorer_goes() -> None:
    lineage = Lineage(LINEAGE, SERVER, asked={"direction": "both", "depth": 100})
    assert lineage.ui_url == (
        f"{SERVER}/ui/p/p/explorer?focus=artifact%3A5&depth=20&sel=artifact%3A5"
    )
    # A root that does not say its pipeline has no view to link to.
    orphan = {**LINEAGE, "root": "artifact:4"}
    assert Lineage(orphan, SERVER).ui_url is None


def test_a_partial_answer_says_so() -> None:
    svg = Lineage({**LINEAGE, "partial": True, "reason": "max_nodes"}, SERVER)._repr_svg_()
    assert "partial: max_nodes" in svg


def test_a_big_graph_is_cut_and_captioned() -> None:
    nodes = [{"id": f"artifact:{i}", "kind": "artifact", "name": str(i)} for i in range(400)]
    svg = graph_svg(nodes, [])
    assert len(ET.fromstring(svg).findall(f".//{SVG}rect")) == MAX_DRAWN
    assert f"first {MAX_DRAWN} of 400" in svg


def test_an_execution_draws_its_inputs_and_outputs() -> None:
    execution = Execution(
        {
            "id": 2,
            "uuid": "c4f6",
            "pipeline": "p",
            "name": "",
            "stage": "p/Train",
            "type": "p/Train",
            "properties": {"Execution_uuid": "c4f6"},
            "events": [
                {"kind": "INPUT", "artifact": {"id": 4, "name": "t.tsv:1", "type": "Dataset"}},
                {"kind": "OUTPUT", "artifact": {"id": 5, "name": "m.pkl:2", "type": "Model"}},
            ],
        },
        SERVER,
    )
    html = execution._repr_html_()
    assert "Execution_uuid" in html and "<svg" in html
    assert f"{SERVER}/ui/p/p/executions?stage=p%2FTrain&amp;exec=2" in html
    links = {a.get("href") for a in ET.fromstring(execution._repr_svg_() or "").iter(f"{SVG}a")}
    assert f"{SERVER}/ui/p/p/artifacts?type=Model&art=5" in links
    svg = ET.fromstring(execution._repr_svg_() or "")
    assert len(svg.findall(f".//{SVG}rect")) == 3


def test_a_pipeline_draws_its_stage_graph_with_a_link() -> None:
    graph = {
        "level": "stage",
        "nodes": [
            {"id": "stage:p/A", "kind": "stage", "name": "p/A"},
            {"id": "stage:p/B", "kind": "stage", "name": "p/B"},
        ],
        "edges": [{"source": "stage:p/A", "target": "stage:p/B", "kind": "DEPENDS_ON"}],
    }
    pipeline = Pipeline({"name": "p/x", "stage_count": 2, "graph": graph}, SERVER)
    html = pipeline._repr_html_()
    assert f"{SERVER}/ui/p/p%2Fx" in html
    # the stage graph drawn is the explorer's stage level
    assert f"{SERVER}/ui/p/p%2Fx/explorer?level=stage" in html
    assert 'stroke-dasharray="4 3"' in (pipeline._repr_svg_() or "")
