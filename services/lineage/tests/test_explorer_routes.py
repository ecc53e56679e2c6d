"""The lineage explorer's routes (/api/native/v1/lineage/graph, /neighbourhood) on both graph
stores, fed by real pushes: the levels, the filters, the cap that says what it hides, and a
node's neighbourhood with its count of what is left out."""

from __future__ import annotations

import json
from typing import Any

import httpx
from test_lineage_routes import get_json, load

from cmf_testing.generator import payload_text

PROBLEM = "application/problem+json"
GRAPH = "/api/native/v1/lineage/graph"
AROUND = "/api/native/v1/lineage/neighbourhood"
__all__ = ["load"]  # the lineage routes' fixture: push a payload and project it


def _by_name(graph: dict[str, Any], display: str) -> dict[str, Any]:
    return next(n for n in graph["nodes"] if n.get("display_name") == display)


async def _chain(client: httpx.AsyncClient, load: Any) -> dict[str, Any]:
    """A pushed chain of 12 executions, at the combined level."""
    await load(json.loads(payload_text("Chain", 12, seed=0)), "Chain")
    graph: dict[str, Any] = await get_json(client, f"{GRAPH}/Chain")
    return graph


def _executions_by_id(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The graph's executions, first pushed first (a chain's order)."""
    found = (n for n in graph["nodes"] if n["kind"] == "execution")
    return sorted(found, key=lambda n: int(n["id"].split(":")[1]))


async def test_the_graph_at_each_level_says_what_it_holds(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    combined = await get_json(client, f"{GRAPH}/Test-env")
    assert combined["level"] == "combined" and combined["pipeline"] == "Test-env"
    assert isinstance(combined["version"], int) and combined["version"] > 0
    kinds = [n["kind"] for n in combined["nodes"]]
    assert kinds.count("execution") == 2 and kinds.count("artifact") == 7
    assert combined["partial"] is False and combined["hidden_nodes"] == 0
    assert combined["total_nodes"] == 9 and combined["total_edges"] == len(combined["edges"])
    assert [s["name"] for s in combined["stages"]] == ["Test-env/Prepare", "Test-env/Train"]
    assert {t["type"] for t in combined["artifact_types"]} >= {"Dataset", "Model", "Metrics"}
    # Sources first: nothing is listed before what it comes from.
    order = {n["id"]: i for i, n in enumerate(combined["nodes"])}
    assert all(order[e["source"]] < order[e["target"]] for e in combined["edges"])

    executions = await get_json(client, f"{GRAPH}/Test-env", level="execution")
    assert [n["display_name"] for n in executions["nodes"]] == ["Prepare_6e89", "Train_72d0"]
    assert [e["kind"] for e in executions["edges"]] == ["DEPENDS_ON"]
    stages = await get_json(client, f"{GRAPH}/Test-env", level="stage")
    assert [(n["id"], n["executions"]) for n in stages["nodes"]] == [
        ("stage:Test-env/Prepare", 1),
        ("stage:Test-env/Train", 1),
    ]
    assert stages["edges"] == [
        {"source": "stage:Test-env/Prepare", "target": "stage:Test-env/Train", "kind": "DEPENDS_ON"}
    ]
    artifacts = await get_json(client, f"{GRAPH}/Test-env", level="artifact")
    assert {n["kind"] for n in artifacts["nodes"]} == {"artifact"}
    data = _by_name(artifacts, "data.xml:18b9")["id"]
    train = _by_name(artifacts, "train.tsv:2aa6")["id"]
    assert {"source": data, "target": train, "kind": "DERIVES"} in artifacts["edges"]
    pipelines = await get_json(client, f"{GRAPH}/Test-env", level="pipeline")
    assert [n["id"] for n in pipelines["nodes"]] == ["pipeline:Test-env"]


async def test_the_cap_keeps_the_sources_and_counts_what_it_hides(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    full = await get_json(client, f"{GRAPH}/Test-env")
    cut = await get_json(client, f"{GRAPH}/Test-env", max_nodes=3)
    assert cut["partial"] is True and cut["reason"] == "max_nodes (3) reached"
    assert len(cut["nodes"]) == 3 and cut["hidden_nodes"] == full["total_nodes"] - 3
    assert cut["total_nodes"] == full["total_nodes"]
    assert [n["id"] for n in cut["nodes"]] == [n["id"] for n in full["nodes"][:3]]
    kept = {n["id"] for n in cut["nodes"]}
    assert all(e["source"] in kept and e["target"] in kept for e in cut["edges"])
    assert cut["hidden_edges"] == full["total_edges"] - len(cut["edges"])


async def test_filters_by_type_stage_property_and_time(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    models = await get_json(client, f"{GRAPH}/Test-env", types="Model")
    assert {n["type"] for n in models["nodes"] if n["kind"] == "artifact"} == {"Model"}
    assert sum(n["kind"] == "execution" for n in models["nodes"]) == 2
    prepare = await get_json(client, f"{GRAPH}/Test-env", stages="Test-env/Prepare")
    assert [n["stage"] for n in prepare["nodes"] if n["kind"] == "execution"] == [
        "Test-env/Prepare"
    ]
    names = {n.get("display_name") for n in prepare["nodes"]}
    assert "train.tsv:2aa6" in names and "model.pkl:cd24" not in names
    # Every execution's own property bag holds its Context_Type, the stage.
    by_property = await get_json(
        client, f"{GRAPH}/Test-env", property="Context_Type:Test-env/Train"
    )
    assert [n["display_name"] for n in by_property["nodes"] if n["kind"] == "execution"] == [
        "Train_72d0"
    ]
    nothing = await get_json(client, f"{GRAPH}/Test-env", property="Context_Type:no-such")
    assert nothing["nodes"] == [] and nothing["total_nodes"] == 0
    everything = await get_json(client, f"{GRAPH}/Test-env", since=0)
    assert everything["total_nodes"] == 9 and all("time" in n for n in everything["nodes"])
    future = await get_json(client, f"{GRAPH}/Test-env", since=2**62)
    assert future["nodes"] == []


async def test_the_graph_refuses_what_it_cannot_answer(client: httpx.AsyncClient) -> None:
    unknown = await client.get(f"{GRAPH}/NoSuch")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    for params in ({"level": "galaxy"}, {"max_nodes": 0}, {"max_nodes": 20_001}, {"property": "x"}):
        bad = await client.get(f"{GRAPH}/p", params=params)
        assert bad.status_code == 422, (params, bad.text)
        assert bad.headers["content-type"] == PROBLEM


async def test_a_neighbourhood_counts_what_its_cap_leaves_out(
    client: httpx.AsyncClient, load: Any
) -> None:
    combined = await _chain(client, load)
    last = _executions_by_id(combined)[-1]
    one = await get_json(client, f"{AROUND}/{last['id']}", direction="upstream", depth=1)
    assert one["root"] == last["id"] and one["nodes"][0]["id"] == last["id"]
    assert one["partial"] is False and one["hidden_nodes"] == 0
    # depth counts executions crossed: what it read and the one that wrote that
    assert sum(n["kind"] == "execution" for n in one["nodes"]) == 2
    three = await get_json(client, f"{AROUND}/{last['id']}", direction="upstream", depth=3)
    assert sum(n["kind"] == "execution" for n in three["nodes"]) == 4
    cut = await get_json(
        client, f"{AROUND}/{last['id']}", direction="upstream", depth=3, max_nodes=2
    )
    assert cut["partial"] is True and len(cut["nodes"]) == 2
    assert cut["hidden_nodes"] == len(three["nodes"]) - 2 and cut["hidden_at_least"] is False
    executions = await get_json(
        client, f"{AROUND}/{last['id']}", direction="upstream", depth=3, level="execution"
    )
    assert {n["kind"] for n in executions["nodes"]} == {"execution"}
    assert len(executions["edges"]) == 3 and executions["version"] > 0


async def test_a_neighbourhood_downstream_is_what_was_made_from_the_node(
    client: httpx.AsyncClient, load: Any
) -> None:
    combined = await _chain(client, load)
    first = _executions_by_id(combined)[0]
    root = first["id"]
    down = await get_json(client, f"{AROUND}/{root}", direction="downstream", depth=2)
    assert down["root"] == root and down["direction"] == "downstream" and down["depth"] == 2
    assert down["partial"] is False and down["hidden_nodes"] == 0
    # Every node is reached from the root along the edges' direction, and the root's inputs
    # (upstream of it) are not there.
    children: dict[str, set[str]] = {}
    for e in down["edges"]:
        children.setdefault(e["source"], set()).add(e["target"])
    reached, frontier = {root}, [root]
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in reached:
                reached.add(child)
                frontier.append(child)
    assert {n["id"] for n in down["nodes"]} == reached
    inputs = {e["source"] for e in combined["edges"] if e["target"] == root}
    assert inputs and not inputs & reached
    # depth 2: the root and the executions that read what it wrote, then theirs.
    assert sum(n["kind"] == "execution" for n in down["nodes"]) == 3
    both = await get_json(client, f"{AROUND}/{root}", direction="both", depth=2)
    assert reached < {n["id"] for n in both["nodes"]}


async def test_a_neighbourhood_refuses_bad_nodes(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    combined = await get_json(client, f"{GRAPH}/Test-env")
    artifact = next(n["id"] for n in combined["nodes"] if n["kind"] == "artifact")
    for node, status in (
        ("stage:x", 422),
        ("artifact:abc", 422),
        ("artifact:999999", 404),
        ("execution:999999", 404),
    ):
        answer = await client.get(f"{AROUND}/{node}")
        assert answer.status_code == status, (node, answer.text)
        assert answer.headers["content-type"] == PROBLEM
    wrong = await client.get(f"{AROUND}/{artifact}", params={"level": "execution"})
    assert wrong.status_code == 422
    stage = await client.get(f"{AROUND}/{artifact}", params={"level": "stage"})
    assert stage.status_code == 422
