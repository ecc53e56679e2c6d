"""The artifact service with the real ``cmf`` client, on the real S3 server (SeaweedFS):
what ``cmf artifact push`` put in the bucket this service serves by pipeline and name, and what
this service stored ``cmf artifact pull`` reads (both use DVC's layout, files/md5/xx/yyyy)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cmf_client import CmfClient, make_cmf_client
from support import free_port, start_server

from cmf_testing.s3 import TEST_S3, own_bucket

pytestmark = pytest.mark.client


@pytest.fixture(scope="module")
def bucket() -> Iterator[str]:
    """A bucket of the module's own (cmf's minio remote takes a bucket, no prefix)."""
    with own_bucket("cmf-e2e") as name:
        yield name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, bucket: str) -> Iterator[str]:
    """``cmf-server up`` with its artifacts in ``bucket``."""
    with start_server(tmp_path_factory.mktemp("server"), free_port(), TEST_S3.env(bucket)) as up:
        yield up.base_url


@pytest.fixture(scope="module")
def cmf_client(tmp_path_factory: pytest.TempPathFactory) -> CmfClient:
    return make_cmf_client(tmp_path_factory.mktemp("cmf-client"))


def with_bytes(server: str, pipeline: str) -> list[dict[str, Any]]:
    """The pipeline's artifacts that have bytes (all but Metrics), as the server lists them."""
    answer = httpx.get(
        f"{server}/api/native/v1/artifacts", params={"pipeline": pipeline, "limit": 100}
    )
    assert answer.status_code == 200, answer.text
    return [a for a in answer.json()["items"] if a["type"] != "Metrics"]


def files_by_md5(folder: Path) -> dict[str, Path]:
    """The files of a cmf workspace by their md5 (an artifact shared by two pipelines keeps
    the name it was first pushed with, so its path there may be another one's)."""
    found: dict[str, Path] = {}
    for path in folder.rglob("*"):
        if path.is_file() and not {".git", ".dvc"} & set(path.relative_to(folder).parts):
            found[hashlib.md5(path.read_bytes()).hexdigest()] = path
    return found


def test_the_service_serves_what_cmf_artifact_push_stored(
    cmf_client: CmfClient, server: str, bucket: str
) -> None:
    folder = cmf_client.scratch / "pushed-by-dvc"
    cmf_client.init_minio(folder, server, bucket, TEST_S3)
    cmf_client.script("pipeline.py", "--pipeline", "By-DVC", cwd=folder)
    assert "successfully pushed" in cmf_client.cmf("metadata", "push", "-p", "By-DVC", cwd=folder)
    assert "files pushed" in cmf_client.cmf("artifact", "push", "-p", "By-DVC", cwd=folder)
    artifacts = with_bytes(server, "By-DVC")
    assert {a["type"] for a in artifacts} >= {"Dataset", "Model", "Step_Metrics"}
    local = files_by_md5(folder)
    for artifact in artifacts:
        if artifact["type"] == "Label":
            continue  # cmf artifact push leaves label csvs to the metadata push's upload
        pulled = httpx.get(
            f"{server}/api/artifact_pull",
            params={"pipeline_name": "By-DVC", "artifact_name": artifact["name"]},
        )
        assert pulled.status_code == 200, (artifact["name"], pulled.text)
        assert pulled.content == local[artifact["uri"]].read_bytes()
        assert pulled.headers["etag"] == f'"{artifact["uri"]}"'
    model = next(a for a in with_bytes(server, "By-DVC") if a["type"] == "Model")
    assert model["stored"] is True
    # The UI's artifacts table says so too.
    page = httpx.get(
        f"{server}/api/native/v1/views/artifacts", params={"pipeline": "By-DVC", "type": "Model"}
    )
    assert [a["stored"] for a in page.json()["items"]] == [True]


def test_cmf_artifact_pull_reads_what_the_service_stored(
    cmf_client: CmfClient, server: str, bucket: str
) -> None:
    pushed = cmf_client.scratch / "pushed-to-service"
    cmf_client.init_minio(pushed, server, bucket, TEST_S3)
    cmf_client.script("pipeline.py", "--pipeline", "By-Service", "--salt", "service", cwd=pushed)
    cmf_client.cmf("metadata", "push", "-p", "By-Service", cwd=pushed)
    artifacts = with_bytes(server, "By-Service")
    local = files_by_md5(pushed)
    for artifact in artifacts:
        answer = httpx.post(
            f"{server}/artifact_push",
            params={"pipeline_name": "By-Service", "artifact_name": artifact["name"]},
            content=local[artifact["uri"]].read_bytes(),
        )
        assert answer.status_code in (200, 201), (artifact["name"], answer.text)
    assert all(a["stored"] for a in with_bytes(server, "By-Service"))

    fresh = cmf_client.scratch / "pulled"
    cmf_client.init_minio(fresh, server, bucket, TEST_S3)
    cmf_client.cmf("metadata", "pull", "-p", "By-Service", cwd=fresh)
    output = cmf_client.cmf("artifact", "pull", "-p", "By-Service", cwd=fresh)
    assert "SUCCESS: Number of files downloaded" in output, output
    pulled = files_by_md5(fresh)
    for artifact in artifacts:
        if artifact["type"] == "Label":
            continue  # cmf artifact pull skips labels
        assert artifact["uri"] in pulled, (artifact["name"], output)
