"""Upstream's v1 lineage routes on both graph stores, fed by real pushes: the three tangled
trees answer their 0.1.0 twins' bodies in the envelope, and the hierarchical lineage is a React
Flow graph of the pipeline's stages, executions and artifacts."""

from __future__ import annotations

import httpx
import pytest

from cmf_common.prefixes import UPSTREAM_V1
from cmf_testing.envelopes import enveloped, failed

TWINS = [
    (
        "/v1/pipelines/Test-env/executions/72d0/lineage",
        "/execution-lineage/tangled-tree/72d0/Test-env",
        "Execution lineage retrieved successfully",
    ),
    (
        "/v1/pipelines/Test-env/executions/zzzz/lineage",
        "/execution-lineage/tangled-tree/zzzz/Test-env",
        "Execution lineage retrieved successfully",
    ),
    (
        "/v1/pipelines/Test-env/artifacts/lineage",
        "/artifact-lineage/tangled-tree/Test-env",
        "Artifact lineage retrieved successfully",
    ),
    (
        "/v1/pipelines/Test-env/artifact-executions/lineage",
        "/artifact-execution-lineage/tangled-tree/Test-env",
        "Artifact-execution lineage retrieved successfully",
    ),
]


@pytest.mark.parametrize("public", ["", "/api"])  # /v1 and /api/v1 alike
@pytest.mark.parametrize(("v1", "twin", "message"), TWINS)
async def test_a_v1_tree_is_its_twins_body_in_the_envelope(
    client: httpx.AsyncClient, loaded: None, v1: str, twin: str, message: str, public: str
) -> None:
    expected = (await client.get(twin)).json()
    assert expected  # the example has lineage
    v1 = f"{public}{v1}"
    answer = await client.get(v1)
    assert enveloped(answer, 200) == expected
    assert answer.json()["message"] == message
    # Served again from the cache: the same answer.
    assert enveloped(await client.get(v1), 200) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/pipelines/NoSuch/executions/72d0/lineage", "Pipeline NoSuch not found."),
        ("/v1/pipelines/NoSuch/artifacts/lineage", "Pipeline NoSuch not found."),
        ("/v1/pipelines/NoSuch/artifact-executions/lineage", "Pipeline NoSuch not found."),
        (
            "/v1/pipelines/NoSuch/hierarchical-lineage",
            "Pipeline 'NoSuch' not found or contains no MLMD data.",
        ),
    ],
)
@pytest.mark.parametrize("public", ["", "/api"])
async def test_an_unknown_pipeline_is_an_enveloped_404(
    client: httpx.AsyncClient, loaded: None, path: str, message: str, public: str
) -> None:
    failed(await client.get(f"{public}{path}"), 404, message)


@pytest.mark.parametrize("prefix", UPSTREAM_V1)
async def test_unknown_paths_and_methods_under_a_v1_prefix_are_enveloped(
    client: httpx.AsyncClient, prefix: str
) -> None:
    failed(await client.get(f"{prefix}/pipelines/p/no-such-lineage"), 404, "Not Found")
    failed(await client.post(f"{prefix}/pipelines/p/hierarchical-lineage"), 405)


async def test_hierarchical_lineage_is_a_react_flow_graph_of_stages_executions_artifacts(
    client: httpx.AsyncClient, loaded: None
) -> None:
    answer = await client.get("/v1/pipelines/Test-env/hierarchical-lineage")
    data = enveloped(answer, 200)
    assert answer.json()["message"] == "Hierarchical lineage retrieved successfully"
    assert set(data) == {"nodes", "edges"}
    nodes = {n["id"]: n for n in data["nodes"]}
    assert len(nodes) == len(data["nodes"])
    for node in data["nodes"]:
        assert {"id", "type", "data", "position"} <= set(node)
        assert isinstance(node["data"]["label"], str) and node["data"]["label"]
        assert set(node["position"]) == {"x", "y"}
    stages = [n for n in data["nodes"] if n["type"] == "stage"]
    executions = [n for n in data["nodes"] if n["type"] == "execution"]
    artifacts = [n for n in data["nodes"] if n["type"] == "artifact"]
    assert [s["data"]["stage"] for s in stages] == ["Test-env/Prepare", "Test-env/Train"]
    assert [(x["data"]["stage"], x["data"]["execution_uuid"][:4]) for x in executions] == [
        ("Test-env/Prepare", "6e89"),
        ("Test-env/Train", "72d0"),
    ]
    for x in executions:
        assert x["parentNode"] == x["parentId"] == f"stage:{x['data']['stage']}"
        assert x["parentNode"] in nodes and x["extent"] == "parent"
    # The trees' artifacts: Environment and Label are left out.
    assert sorted(a["data"]["label"] for a in artifacts) == sorted(
        [
            "data.xml:18b9",
            "train.tsv:2aa6",
            "model.pkl:cd24",
            "metrics:7652:2",
            "72d025da-e9d5-11f1-a002-02fc00000001/metrics/training_metrics:df14:2:7650",
        ]
    )
    assert all(a["data"]["artifact_type"] not in {"Environment", "Label"} for a in artifacts)
    edges = {
        (nodes[e["source"]]["data"]["label"], nodes[e["target"]]["data"]["label"])
        for e in data["edges"]
    }
    assert len(edges) == len(data["edges"]) == 6
    prepare, train = (x["data"]["label"] for x in executions)
    assert ("data.xml:18b9", prepare) in edges
    assert (prepare, "train.tsv:2aa6") in edges
    assert ("train.tsv:2aa6", train) in edges
    assert (train, "model.pkl:cd24") in edges
    for edge in data["edges"]:
        assert set(edge) == {"id", "source", "target"}
        assert edge["id"] == f"{edge['source']}->{edge['target']}"
