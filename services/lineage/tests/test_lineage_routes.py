"""The lineage routes on both graph stores, fed by real pushes: the reference's tangled trees,
the seed's artifact lineage and UI graph, and ours under /api/native/v1. Each test runs once on
PostgreSQL and once on Neo4j against the same expected answers, so the stores answer alike."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import pytest
from lineage_support import GraphUnderTest, Pusher, as_pipeline, executions_of

from cmf_lineage.projector import Projector
from cmf_testing.generator import payload_text

PROBLEM = "application/problem+json"


@pytest.fixture
def load(graph: GraphUnderTest, push_events: Pusher) -> Any:
    """Push a payload through the real merge and project its events."""

    async def run(payload: dict[str, Any], pipeline: str = "Test-env") -> None:
        await Projector(graph.store).apply(await push_events(payload, pipeline))

    return run


def chain(pipeline: str, n: int, seed: int = 0) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(payload_text(pipeline, n, seed=seed))
    return payload


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = await client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


STEP_METRICS = "72d025da-e9d5-11f1-a002-02fc00000001/metrics/training_metrics:df14:2:7650"

# The captured example: Prepare reads data.xml (and the Environment and a Label, both hidden),
# writes train.tsv; Train reads train.tsv, writes the model, step metrics and metrics.
EXAMPLE_ARTIFACT_TREE = [
    [{"id": "data.xml:18b9", "parents": []}],
    [{"id": "train.tsv:2aa6", "parents": ["data.xml:18b9"]}],
]
EXAMPLE_EXECUTION_TREE = [
    [{"id": "Prepare_6e89", "parents": []}],
    [{"id": "Train_72d0", "parents": ["Prepare_6e89"]}],
]


async def test_artifact_tree_layers_the_example_by_parents_without_environment_or_label(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    tree = await get_json(client, "/artifact-lineage/tangled-tree/Test-env")
    assert tree[:2] == EXAMPLE_ARTIFACT_TREE
    assert len(tree) == 3
    assert sorted(n["id"] for n in tree[2]) == sorted(
        ["model.pkl:cd24", "metrics:7652:2", STEP_METRICS]
    )
    assert all(n["parents"] == ["train.tsv:2aa6"] for n in tree[2])
    names = json.dumps(tree)
    assert "python_env" not in names and "labels.csv" not in names


async def test_artifact_execution_tree_alternates_artifacts_and_executions(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    tree = await get_json(client, "/api/artifact-execution-lineage/tangled-tree/Test-env")
    assert tree[0] == [{"id": "artifact_name_data.xml:18b9", "parents": []}]
    assert tree[1] == [
        {"id": "execution_name_Test-env/Prepare:6e89", "parents": ["artifact_name_data.xml:18b9"]}
    ]
    assert tree[2] == [
        {"id": "artifact_name_train.tsv:2aa6", "parents": ["execution_name_Test-env/Prepare:6e89"]}
    ]
    assert tree[3] == [
        {"id": "execution_name_Test-env/Train:72d0", "parents": ["artifact_name_train.tsv:2aa6"]}
    ]
    assert sorted(n["id"] for n in tree[4]) == sorted(
        f"artifact_name_{n}" for n in ("model.pkl:cd24", "metrics:7652:2", STEP_METRICS)
    )
    assert len(tree) == 5


async def test_execution_tree_is_the_ancestry_named_stage_and_uuid4(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    assert await get_json(client, "/execution-lineage/tangled-tree/72d0/Test-env") == (
        EXAMPLE_EXECUTION_TREE
    )
    assert await get_json(client, "/api/execution-lineage/tangled-tree/6e89/Test-env") == [
        [{"id": "Prepare_6e89", "parents": []}]
    ]


async def test_execution_tree_of_an_unknown_uuid_is_the_references_200_error(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    answer = await client.get("/execution-lineage/tangled-tree/zzzz/Test-env")
    assert answer.status_code == 200
    assert answer.json() == {
        "error": "uuid 'zzzz' does not match any execution in pipeline 'Test-env'"
    }


@pytest.mark.parametrize(
    "path",
    [
        "/artifact-lineage/tangled-tree/NoSuch",
        "/api/artifact-execution-lineage/tangled-tree/NoSuch",
        "/execution-lineage/tangled-tree/6e89/NoSuch",
    ],
)
async def test_trees_of_an_unknown_pipeline_are_the_references_404(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Pipeline NoSuch not found."}


async def test_trees_of_a_shared_artifact_keep_each_pipelines_own_parents(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    """#265/#275: train.tsv is written in both pipelines, from data.xml in Test-env and from
    another input in Other-env; neither pipeline's tree shows the other's parent."""
    await load(payload)
    other = as_pipeline(payload, "Other-env")
    prepare = executions_of(other)[0]
    data_event = next(e for e in prepare["events"] if e["artifact"]["type"] == "Dataset")
    data_event["artifact"]["name"] = "artifacts/other.xml:0123456789abcdef0123456789abcdef"
    data_event["artifact"]["uri"] = "0123456789abcdef0123456789abcdef"
    await load(other, "Other-env")
    mine = await get_json(client, "/artifact-lineage/tangled-tree/Test-env")
    theirs = await get_json(client, "/artifact-lineage/tangled-tree/Other-env")
    assert mine[:2] == EXAMPLE_ARTIFACT_TREE
    assert theirs[:2] == [
        [{"id": "other.xml:0123", "parents": []}],
        [{"id": "train.tsv:2aa6", "parents": ["other.xml:0123"]}],
    ]
    both = await get_json(client, "/artifact-execution-lineage/tangled-tree/Test-env")
    assert "other.xml" not in json.dumps(both)
    assert "Other-env" not in json.dumps(both)


async def test_trees_of_a_generator_chain_have_one_layer_per_step(
    client: httpx.AsyncClient, load: Any
) -> None:
    await load(chain("Chain", 30), "Chain")
    executions = await get_json(
        client, f"/execution-lineage/tangled-tree/{await last_uuid4(client)}/Chain"
    )
    assert len(executions) == 30
    assert all(len(layer) == 1 for layer in executions)
    assert executions[0][0]["parents"] == []
    for before, after in itertools.pairwise(executions):
        assert after[0]["parents"] == [before[0]["id"]]
    artifacts = await get_json(client, "/artifact-lineage/tangled-tree/Chain")
    # The chain's first inputs (two Datasets) are the roots; each step's pair shares parents.
    assert [len(layer) for layer in artifacts] == [2] * 31
    assert artifacts[1][0]["parents"] == [n["id"] for n in artifacts[0]]
    mixed = await get_json(client, "/artifact-execution-lineage/tangled-tree/Chain")
    assert [len(layer) for layer in mixed] == [2] + [1, 2] * 30


async def last_uuid4(client: httpx.AsyncClient) -> str:
    graph = await get_json(client, "/display_lineage", pipeline_name="Chain", level="execution")
    return str(graph["nodes"][-1]["uuid"][:4])


async def test_display_lineage_answers_each_level(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    full = await get_json(client, "/display_lineage", pipeline_name="Test-env", level="artifact")
    assert full["level"] == "artifact"
    kinds = [n["kind"] for n in full["nodes"]]
    assert kinds.count("execution") == 2 and kinds.count("artifact") == 7
    assert {e["kind"] for e in full["edges"]} == {"INPUT", "OUTPUT"}
    assert len(full["edges"]) == sum(len(x["events"]) for x in executions_of(payload))
    executions = await get_json(
        client, "/api/display_lineage", pipeline_name="Test-env", level="execution"
    )
    assert [n["display_name"] for n in executions["nodes"]] == ["Prepare_6e89", "Train_72d0"]
    assert len(executions["edges"]) == 1
    stages = await get_json(client, "/display_lineage", pipeline_name="Test-env", level="stage")
    assert [n["name"] for n in stages["nodes"]] == ["Test-env/Prepare", "Test-env/Train"]
    assert stages["edges"] == [
        {"source": "stage:Test-env/Prepare", "target": "stage:Test-env/Train", "kind": "DEPENDS_ON"}
    ]
    pipelines = await get_json(
        client, "/display_lineage", pipeline_name="Test-env", level="pipeline"
    )
    assert [n["name"] for n in pipelines["nodes"]] == ["Test-env"]


async def test_display_lineage_refuses_unknown_pipelines_and_levels(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.get("/display_lineage", params={"pipeline_name": "NoSuch"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    bad = await client.get("/display_lineage", params={"pipeline_name": "p", "level": "galaxy"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


async def _artifact_id(client: httpx.AsyncClient, pipeline: str, display: str) -> int:
    graph = await get_json(client, "/display_lineage", pipeline_name=pipeline, level="artifact")
    node = next(n for n in graph["nodes"] if n.get("display_name") == display)
    return int(node["id"].split(":")[1])


async def _chain_tail(client: httpx.AsyncClient) -> dict[str, Any]:
    graph = await get_json(client, "/display_lineage", pipeline_name="Chain", level="artifact")
    last = max((n for n in graph["nodes"] if n["kind"] == "execution"), key=_node_number)
    out = [e["target"] for e in graph["edges"] if e["source"] == last["id"]]
    return next(n for n in graph["nodes"] if n["id"] == sorted(out)[0])


def _node_number(node: dict[str, Any]) -> int:
    return int(node["id"].split(":")[1])


async def test_upstream_lineage_holds_depth_executions_and_their_inputs(
    client: httpx.AsyncClient, load: Any
) -> None:
    await load(chain("Chain", 12), "Chain")
    tail = await _chain_tail(client)
    answer = await get_json(client, f"/lineage/{_node_number(tail)}", direction="upstream", depth=3)
    assert answer["root"] == tail["id"] and answer["partial"] is False
    kinds = [n["kind"] for n in answer["nodes"]]
    # the root, 3 executions, the 2 Datasets each read and the shared Environment
    assert kinds.count("execution") == 3 and kinds.count("artifact") == 1 + 6 + 1
    assert answer["nodes"][0]["id"] == tail["id"]
    # each execution's 3 inputs; the root's producer wrote it, the two before wrote both inputs
    assert len(answer["edges"]) == 3 * 3 + 1 + 2 * 2
    assert answer["next_cursor"] is None and answer["reason"] is None
    api = await get_json(
        client, f"/api/lineage/{_node_number(tail)}", direction="upstream", depth=3
    )
    v1 = await get_json(
        client,
        f"/api/native/v1/lineage/artifacts/{_node_number(tail)}",
        direction="upstream",
        depth=3,
    )
    by_uri = await get_json(
        client, "/api/native/v1/lineage/artifacts", uri=tail["uri"], direction="upstream", depth=3
    )
    assert api == answer == v1 == by_uri


async def test_downstream_lineage_follows_readers(client: httpx.AsyncClient, load: Any) -> None:
    await load(chain("Chain", 6), "Chain")
    graph = await get_json(client, "/display_lineage", pipeline_name="Chain", level="artifact")
    first = min((n for n in graph["nodes"] if n["kind"] == "execution"), key=_node_number)
    inputs = [e["source"] for e in graph["edges"] if e["target"] == first["id"]]
    start = next(n for n in graph["nodes"] if n["id"] in inputs and n["type"] == "Dataset")
    answer = await get_json(client, f"/lineage/{_node_number(start)}", direction="downstream")
    kinds = [n["kind"] for n in answer["nodes"]]
    assert kinds.count("execution") == 6
    assert kinds.count("artifact") == 1 + 12
    both = await get_json(client, f"/lineage/{_node_number(start)}")
    assert {n["id"] for n in both["nodes"]} == {n["id"] for n in answer["nodes"]}


@pytest.mark.parametrize("types", [None, "Dataset"])
async def test_a_capped_answer_is_partial_and_its_pages_add_up_to_the_whole(
    client: httpx.AsyncClient, load: Any, types: str | None
) -> None:
    await load(chain("Chain", 12), "Chain")
    tail = _node_number(await _chain_tail(client))
    query: dict[str, Any] = {"direction": "upstream", "depth": 5}
    if types is not None:
        query["types"] = types
    whole = await get_json(client, f"/lineage/{tail}", **query)
    assert whole["partial"] is False
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {**query, "max_nodes": 4}
        if cursor is not None:
            params["cursor"] = cursor
        page = await get_json(client, f"/lineage/{tail}", **params)
        pages.append(page)
        assert len(page["nodes"]) <= 4
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert page["partial"] is True and "max_nodes" in page["reason"]
        assert len(page["nodes"]) == 4
    assert [n["id"] for p in pages for n in p["nodes"]] == [n["id"] for n in whole["nodes"]]
    assert {tuple(e.values()) for p in pages for e in p["edges"]} == {
        tuple(e.values()) for e in whole["edges"]
    }


async def test_types_filter_keeps_executions_and_the_named_artifact_types(
    client: httpx.AsyncClient, load: Any
) -> None:
    await load(chain("Chain", 4), "Chain")
    tail = _node_number(await _chain_tail(client))
    answer = await get_json(client, f"/lineage/{tail}", direction="upstream", types="Environment")
    assert {n["type"] for n in answer["nodes"] if n["kind"] == "artifact"} == {
        "Environment",
        "Dataset",  # the root is always shown
    }
    assert sum(n["kind"] == "artifact" for n in answer["nodes"]) == 2


async def test_execution_lineage_has_ancestry_and_descendants(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    uuid = executions_of(payload)[0]["properties"]["Execution_uuid"]
    answer = await get_json(client, f"/api/native/v1/lineage/executions/{uuid}")
    names = {n.get("display_name") for n in answer["nodes"]}
    assert {"Prepare_6e89", "data.xml:18b9", "train.tsv:2aa6", "Train_72d0"} <= names
    assert "model.pkl:cd24" in names  # downstream of Train, two executions away
    up = await get_json(client, f"/api/native/v1/lineage/executions/{uuid}", direction="upstream")
    assert {n["display_name"] for n in up["nodes"]} == {
        "Prepare_6e89",
        "data.xml:18b9",
        "labels.csv:800d",
        next(n["display_name"] for n in answer["nodes"] if n.get("type") == "Environment"),
    }


async def test_an_execution_in_two_pipelines_needs_its_pipeline_named(
    client: httpx.AsyncClient, load: Any, payload: dict[str, Any]
) -> None:
    await load(payload)
    await load(as_pipeline(payload, "Other-env"), "Other-env")
    uuid = executions_of(payload)[0]["properties"]["Execution_uuid"]
    ambiguous = await client.get(f"/api/native/v1/lineage/executions/{uuid}")
    assert ambiguous.status_code == 409 and ambiguous.headers["content-type"] == PROBLEM
    named = await client.get(
        f"/api/native/v1/lineage/executions/{uuid}", params={"pipeline": "Other-env"}
    )
    assert named.status_code == 200
    root = next(n for n in named.json()["nodes"] if n["id"] == named.json()["root"])
    assert root["pipelines"] == ["Other-env"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/lineage/999999", {}, 404),
        ("/api/native/v1/lineage/artifacts", {"uri": "no-such-uri"}, 404),
        ("/api/native/v1/lineage/executions/no-such-uuid", {}, 404),
        ("/lineage/1", {"depth": 0}, 422),
        ("/lineage/1", {"depth": 101}, 422),
        ("/api/native/v1/lineage/artifacts/1", {"max_nodes": 0}, 422),
        ("/lineage/1", {"direction": "sideways"}, 422),
        ("/lineage/not-a-number", {}, 422),
        ("/lineage/1", {"cursor": "not-base64!"}, 422),
        ("/lineage/1", {"cursor": "eyJvIjo0LCJxIjoiMDAwMDAwMDAwMDAwMDAwMCJ9"}, 422),
    ],
)
async def test_bad_lineage_requests_are_problem_4xx(
    client: httpx.AsyncClient,
    load: Any,
    payload: dict[str, Any],
    path: str,
    params: dict[str, Any],
    status: int,
) -> None:
    await load(payload)
    answer = await client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM


async def test_a_cursor_of_another_query_is_refused(client: httpx.AsyncClient, load: Any) -> None:
    await load(chain("Chain", 6), "Chain")
    tail = _node_number(await _chain_tail(client))
    page = await get_json(client, f"/lineage/{tail}", direction="upstream", max_nodes=2)
    assert page["next_cursor"]
    other = await client.get(
        f"/lineage/{tail}",
        params={"direction": "downstream", "max_nodes": 2, "cursor": page["next_cursor"]},
    )
    assert other.status_code == 422 and other.json()["code"] == "invalid_cursor"
