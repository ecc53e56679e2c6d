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
