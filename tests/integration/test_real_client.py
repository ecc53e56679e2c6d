"""The real ``cmf`` client (cmflib from PyPI, in its own venv) against our server.

A pipeline logged with ``cmflib`` is pushed with ``cmf metadata push`` and pulled back into a
fresh folder with ``cmf metadata pull``; ``tests/client/query.py`` (``CmfQuery``) compares what
came back. The client's exit code is always 0, so every check reads its printed messages.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from cmf_client import CmfClient, Workspace, make_cmf_client

from cmf_testing.envelopes import enveloped
from cmf_testing.waiting import eventually

pytestmark = pytest.mark.client

PIPELINE = "Client-Test"


@pytest.fixture(scope="module")
def cmf_client(tmp_path_factory: pytest.TempPathFactory) -> CmfClient:
    return make_cmf_client(tmp_path_factory.mktemp("cmf-client"))


@pytest.fixture(scope="module")
def workspace(cmf_client: CmfClient, module_server: str) -> Workspace:
    """A folder where ``pipeline.py`` logged the two-stage pipeline (nothing pushed yet)."""
    folder = cmf_client.scratch / "workspace"
    cmf_client.init(folder, module_server)
    result = cmf_client.script("pipeline.py", "--pipeline", PIPELINE, cwd=folder)
    assert set(result["executions"]) == {"Prepare", "Train"}, result
    return Workspace(folder, PIPELINE, result["executions"])


@pytest.fixture(scope="module")
def local_summary(cmf_client: CmfClient, workspace: Workspace) -> dict[str, Any]:
    return cmf_client.summary(workspace.folder)


@pytest.fixture(scope="module")
def first_push(cmf_client: CmfClient, workspace: Workspace) -> str:
    """The output of the first ``cmf metadata push`` of the whole pipeline."""
    return cmf_client.cmf("metadata", "push", "-p", workspace.pipeline, cwd=workspace.folder)


def _pull(base_url: str, pipeline: str) -> httpx.Response:
    return httpx.post(f"{base_url}/api/mlmd_pull", json={"pipeline_name": pipeline}, timeout=30)


def _uuids_in_payload(payload: dict[str, Any]) -> set[str]:
    return {
        uuid
        for pipeline in payload["Pipeline"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
        for uuid in execution["properties"]["Execution_uuid"].split(",")
    }


def _uris_in_payload(payload: dict[str, Any]) -> set[str]:
    return {
        event["artifact"]["uri"]
        for pipeline in payload["Pipeline"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
        for event in execution["events"]
    }


def _uuids_in_summary(summary: dict[str, Any]) -> set[str]:
    return {
        execution["Execution_uuid"]
        for pipeline in summary["pipelines"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
    }


def _lineage(summary: dict[str, Any]) -> dict[str, set[tuple[str, str, str]]]:
    """Execution uuid -> its (event, artifact type, artifact uri) triples."""
    return {
        execution["Execution_uuid"]: {
            (artifact["event"], artifact["type"], artifact["uri"])
            for artifact in execution["artifacts"]
        }
        for pipeline in summary["pipelines"]
        for stage in pipeline["stages"]
        for execution in stage["executions"]
    }


def _artifact_kinds(summary: dict[str, Any]) -> set[tuple[str, str]]:
    return {(artifact["type"], artifact["uri"]) for artifact in summary["artifacts"]}


def _stages(summary: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (pipeline["name"], stage["name"])
        for pipeline in summary["pipelines"]
        for stage in pipeline["stages"]
    }


def test_pipeline_logs_both_stages_locally(
    workspace: Workspace, local_summary: dict[str, Any]
) -> None:
    assert _stages(local_summary) == {
        (PIPELINE, f"{PIPELINE}/Prepare"),
        (PIPELINE, f"{PIPELINE}/Train"),
    }
    assert _uuids_in_summary(local_summary) == set(workspace.executions.values())
    types = {kind for kind, _ in _artifact_kinds(local_summary)}
    assert {"Dataset", "Label", "Model", "Metrics", "Step_Metrics", "Environment"} <= types


def test_push_of_new_pipeline_reports_success(first_push: str) -> None:
    assert "SUCCESS: ./mlmd is successfully pushed." in first_push, first_push


def test_server_holds_every_pushed_execution_and_artifact(
    module_server: str,
    workspace: Workspace,
    local_summary: dict[str, Any],
    first_push: str,
) -> None:
    def held() -> None:
        response = _pull(module_server, workspace.pipeline)
        assert response.status_code == 200, response.text
        payload = json.loads(response.text)
        assert _uuids_in_payload(payload) == set(workspace.executions.values())
        assert _uris_in_payload(payload) == {uri for _, uri in _artifact_kinds(local_summary)}

    eventually(held)


def test_pull_answer_is_text_html(
    module_server: str, workspace: Workspace, first_push: str
) -> None:
    response = _pull(module_server, workspace.pipeline)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers


def test_repush_of_same_pipeline_reports_exists(
    cmf_client: CmfClient, workspace: Workspace, first_push: str
) -> None:
    output = cmf_client.cmf("metadata", "push", "-p", workspace.pipeline, cwd=workspace.folder)
    assert "Executions already exists." in output, output


def test_push_of_known_execution_reports_exists(
    cmf_client: CmfClient, workspace: Workspace, first_push: str
) -> None:
    train = workspace.executions["Train"]
    output = cmf_client.cmf(
        "metadata", "push", "-p", workspace.pipeline, "-e", train, cwd=workspace.folder
    )
    assert "Executions already exists." in output, output


def test_pull_into_fresh_folder_restores_every_execution_and_artifact(
    cmf_client: CmfClient,
    module_server: str,
    workspace: Workspace,
    local_summary: dict[str, Any],
    first_push: str,
) -> None:
    fresh = cmf_client.scratch / "fresh"
    cmf_client.init(fresh, module_server)
    output = cmf_client.cmf("metadata", "pull", "-p", workspace.pipeline, cwd=fresh)
    assert f"SUCCESS: {fresh / 'mlmd'} is successfully pulled." in output, output

    pulled = cmf_client.summary(fresh)
    assert _stages(pulled) == _stages(local_summary)
    assert _uuids_in_summary(pulled) == set(workspace.executions.values())
    assert _lineage(pulled) == _lineage(local_summary)
    assert _artifact_kinds(pulled) == _artifact_kinds(local_summary)


def test_pull_of_unknown_pipeline_fails_cleanly(
    cmf_client: CmfClient, workspace: Workspace, first_push: str
) -> None:
    output = cmf_client.cmf("metadata", "pull", "-p", "No-Such-Pipeline", cwd=workspace.folder)
    assert "ERROR: Pipeline name No-Such-Pipeline doesn't exist." in output, output
    assert "Traceback" not in output, output


def test_pull_of_unknown_execution_reports_it_missing(
    cmf_client: CmfClient, workspace: Workspace, first_push: str
) -> None:
    unknown = "00000000-0000-11f1-0000-000000000000"
    output = cmf_client.cmf(
        "metadata", "pull", "-p", workspace.pipeline, "-e", unknown, cwd=workspace.folder
    )
    assert f"ERROR: Execution uuid {unknown} is not present in mlmd." in output, output


def test_push_of_one_execution_merges_only_that_execution(
    cmf_client: CmfClient,
    running_server: str,
    workspace: Workspace,
    tmp_path: Path,
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(workspace.folder, copy, symlinks=True)
    cmf_client.init(copy, running_server)  # re-points the copy at the fresh server
    train = workspace.executions["Train"]

    output = cmf_client.cmf("metadata", "push", "-p", workspace.pipeline, "-e", train, cwd=copy)
    assert "SUCCESS: ./mlmd is successfully pushed." in output, output

    def only_train() -> None:
        response = _pull(running_server, workspace.pipeline)
        assert response.status_code == 200, response.text
        assert _uuids_in_payload(json.loads(response.text)) == {train}

    eventually(only_train)


def test_push_uploads_label_csv(
    module_server: str, workspace: Workspace, local_summary: dict[str, Any], first_push: str
) -> None:
    (label_md5,) = {uri for kind, uri in _artifact_kinds(local_summary) if kind == "Label"}
    csv = (workspace.folder / "artifacts" / "labels.csv").read_text()
    response = httpx.get(
        f"{module_server}/api/label-data", params={"file_name": label_md5}, timeout=10
    )
    assert response.status_code == 200, (first_push, response.text)
    assert response.text == csv


def test_push_uploads_python_env(
    module_server: str, workspace: Workspace, local_summary: dict[str, Any], first_push: str
) -> None:
    (env_name,) = {
        artifact["name"].split(":")[0]
        for artifact in local_summary["artifacts"]
        if artifact["type"] == "Environment"
    }
    response = httpx.get(
        f"{module_server}/api/python-env",
        params={"file_name": Path(env_name).name},
        timeout=10,
    )
    assert response.status_code == 200, (first_push, response.text)
    assert response.text == (workspace.folder / env_name).read_text()


def test_pushed_executions_are_listed_by_stage(
    module_server: str, workspace: Workspace, first_push: str
) -> None:
    stages = httpx.get(f"{module_server}/api/pipeline-stages/{workspace.pipeline}", timeout=10)
    assert stages.json() == {
        "stages": [f"{workspace.pipeline}/Prepare", f"{workspace.pipeline}/Train"],
        "total_stages": 2,
    }, (first_push, stages.text)
    listed = httpx.get(
        f"{module_server}/api/executions-by-stage/{workspace.pipeline}",
        params={"stage_name": f"{workspace.pipeline}/Train"},
        timeout=10,
    ).json()
    uuids = [
        p["value"]
        for item in listed["items"]
        for p in item["execution_properties"]
        if p["name"] == "Execution_uuid"
    ]
    assert (listed["total_items"], uuids) == (1, [workspace.executions["Train"]]), listed


def _v1(base_url: str, path: str, body: Any = None) -> Any:
    """A v1 route's ``data``, checked to be upstream's success envelope (docs/upstream-v1.md)."""
    if body is None:
        answer = httpx.get(f"{base_url}{path}", timeout=30)
    else:
        answer = httpx.post(f"{base_url}{path}", json=body, timeout=30)
    return enveloped(answer, 200)


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_every_v1_route_answers_the_real_clients_push_as_its_twin(
    module_server: str,
    workspace: Workspace,
    local_summary: dict[str, Any],
    first_push: str,
    prefix: str,
) -> None:
    """Upstream's v1 generation over what the real client pushed and uploaded: each route in its
    envelope, holding what its 0.1.0 twin answers (or, for CMFQuery, what was pushed)."""
    server, p = module_server, workspace.pipeline
    v1 = f"{server}{prefix}"
    prepare, train = f"{p}/Prepare", f"{p}/Train"

    def twin(path: str, **params: Any) -> Any:
        answer = httpx.get(f"{server}/api{path}", params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert p in _v1(v1, "/pipelines")
    assert _v1(v1, f"/pipelines/{p}/stages")["stages"] == twin(f"/pipeline-stages/{p}")["stages"]
    for stage in (prepare, train):
        assert _v1(v1, f"/pipelines/{p}/stages/{stage}/artifacts/types", {}) == twin(
            f"/artifact-types-by-stage/{p}", stage_name=stage
        )
        assert _v1(v1, f"/pipelines/{p}/stages/{stage}/executions", {}) == twin(
            f"/executions-by-stage/{p}", stage_name=stage
        )
    assert _v1(v1, f"/pipelines/{p}/stages/{train}/artifacts", {"artifact_type": "Model"}) == (
        twin(f"/artifacts-by-stage/{p}", stage_name=train, artifact_type="Model")
    )
    assert _v1(v1, f"/pipelines/{p}/executions/list") == twin(f"/list-of-executions/{p}")
    assert _v1(v1, "/artifacts/types") == twin("/artifact_types")
    executions = _v1(v1, f"/pipelines/{p}/executions")
    assert {e["Execution_uuid"] for e in executions} == set(workspace.executions.values())
    artifacts = _v1(v1, f"/pipelines/{p}/artifacts")
    assert {a["uri"] for a in artifacts} == {uri for _, uri in _artifact_kinds(local_summary)}

    (model,) = (a for a in artifacts if a["type"] == "Model")
    card = twin("/model-card", modelId=model["id"])
    assert _v1(v1, f"/artifacts/models/{model['id']}/card") == card
    assert _v1(v1, f"/model-card?modelId={model['id']}") == card

    # The lineage service's v1 routes: the 0.1.0 twins' bodies (the push is acknowledged, so a
    # read answers it at once).
    uuid4 = workspace.executions["Train"][:4]
    assert _v1(v1, f"/pipelines/{p}/artifacts/lineage") == twin(
        f"/artifact-lineage/tangled-tree/{p}"
    )
    assert _v1(v1, f"/pipelines/{p}/artifact-executions/lineage") == twin(
        f"/artifact-execution-lineage/tangled-tree/{p}"
    )
    assert _v1(v1, f"/pipelines/{p}/executions/{uuid4}/lineage") == twin(
        f"/execution-lineage/tangled-tree/{uuid4}/{p}"
    )
    flow = _v1(v1, f"/pipelines/{p}/hierarchical-lineage")
    assert {n["id"] for n in flow["nodes"] if n["type"] == "stage"} == {
        f"stage:{prepare}",
        f"stage:{train}",
    }

    # The files the client uploaded after its push.
    (env_name,) = {
        a["name"].split(":")[0] for a in local_summary["artifacts"] if a["type"] == "Environment"
    }
    env_text = (workspace.folder / env_name).read_text()
    assert _v1(v1, f"/python-env?file_name={env_name}") == env_text  # as the UI sends it
    assert _v1(v1, f"/python-env/{Path(env_name).name}") == env_text
    assert _v1(v1, f"/pipelines/{p}/executions/{workspace.executions['Train']}/python-env") == (
        env_text
    )
    (label_md5,) = {uri for kind, uri in _artifact_kinds(local_summary) if kind == "Label"}
    labels = (workspace.folder / "artifacts" / "labels.csv").read_text()
    assert _v1(v1, f"/label-data?file_name={label_md5}") == labels

    # CMFQuery over REST: the tables from the metadata store, the questions from the graph.
    assert p in _v1(v1, "/pipelines/names")["pipelines"]
    assert isinstance(_v1(v1, f"/pipelines/{p}/id")["pipeline_id"], int)
    pulled = json.loads(_pull(server, p).text)
    assert _v1(v1, f"/pipelines/{p}/json") == pulled
    assert {e["Execution_uuid"] for e in _v1(v1, f"/executions/pipeline/{p}")["executions"]} == (
        set(workspace.executions.values())
    )
    model_name = model["name"]
    ancestors = _v1(v1, f"/artifacts/name/{model_name}/ancestors")["artifacts"]
    assert "Dataset" in {a["type"] for a in ancestors}
    producer = _v1(v1, f"/artifacts/name/{model_name}/producer-execution")["execution"]
    assert producer["Execution_uuid"] == workspace.executions["Train"]
    dataset = next(a["name"] for a in ancestors if a["type"] == "Dataset")
    assert _v1(v1, f"/artifacts/name/{dataset}/children")["artifacts"]

    # The push and pull of v1: the raw MLMD document of 0.1.0's pull, and the same merge.
    v1_pull = httpx.post(f"{v1}/mlmd/pull", json={"pipeline_name": p}, timeout=30)
    assert v1_pull.status_code == 200 and v1_pull.headers["content-type"].startswith("text/html")
    assert json.loads(v1_pull.text) == pulled
    body = {"pipeline_name": p, "json_payload": json.dumps(pulled), "exec_uuid": None}
    assert _v1(v1, "/mlmd/push", body) == {"status": "exists"}
