"""Upstream v1 file routes (docs/upstream-v1.md §7) over the 0.1.0 file domain, files kept in a
folder of the test's own."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from metadata_support import PIPELINE, push
from upstream_support import enveloped, failed, invalid

from cmf_metadata.api.deps import get_upload_limit

ENV_NAME = "python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt"  # the captured push's Python_Env
LABEL_MD5 = "800d3d1d5fb149cbdf2e138cb024c9a6"
TRAIN_UUID = "72d025da-e9d5-11f1-a002-02fc00000001"


# Files go to a folder of the test's own (conftest's files_root and store).
pytestmark = pytest.mark.usefixtures("store")


def stored(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_python_env_upload_is_http_200_with_code_201(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    answer = await client.post(
        "/v1/python-env", files={"file": (f"cmf_artifacts/{ENV_NAME}", b"numpy==2.0\n")}
    )
    data = enveloped(answer, 200, code=201)
    assert data == {"message": f"File 'cmf_artifacts/{ENV_NAME}' uploaded successfully"}
    assert answer.json()["message"] == "Python environment uploaded successfully"
    assert stored(files_root) == [f"env/{ENV_NAME}"]


@pytest.mark.parametrize(
    "read",
    [
        f"/v1/python-env?file_name={ENV_NAME}",
        f"/v1/python-env?file_name=cmf_artifacts/{ENV_NAME}",  # the name cmflib records
        f"/v1/python-env/{ENV_NAME}",
    ],
)
async def test_python_env_reads_back_in_the_envelope_by_query_and_by_path(
    client: httpx.AsyncClient, read: str
) -> None:
    await client.post("/v1/python-env", files={"file": (ENV_NAME, b"numpy==2.0\npandas\n")})
    assert enveloped(await client.get(read), 200) == "numpy==2.0\npandas\n"


@pytest.mark.parametrize(
    ("read", "status", "message"),
    [
        ("/v1/python-env?file_name=env.json", 400, "Unsupported file extension. Use .txt or .yaml"),
        ("/v1/python-env/env.json", 400, "Unsupported file extension. Use .txt or .yaml"),
        ("/v1/python-env?file_name=gone.txt", 404, "File not found"),
        ("/v1/python-env/gone.yaml", 404, "File not found"),
        ("/v1/python-env?file_name=../../etc/passwd.txt", 400, None),
        ("/v1/python-env?file_name=/etc/x.txt", 400, None),
        ("/v1/python-env?file_name=a\\x.txt", 400, None),
        ("/v1/python-env?file_name=x%00.txt", 400, None),
        ("/v1/python-env/..%5Cx.txt", 400, None),
        ("/v1/python-env/x%00.txt", 400, None),
    ],
)
async def test_python_env_reads_refused_are_enveloped(
    client: httpx.AsyncClient, read: str, status: int, message: str | None
) -> None:
    failed(await client.get(read), status, message)


async def test_python_env_without_a_name_is_a_422_envelope(client: httpx.AsyncClient) -> None:
    invalid(await client.get("/v1/python-env"), "file_name")


async def test_python_env_of_an_execution_is_its_recorded_file(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    await client.post("/v1/python-env", files={"file": (ENV_NAME, b"numpy==2.0\n")})
    for uuid in (TRAIN_UUID, TRAIN_UUID[:4]):
        answer = await client.get(f"/v1/pipelines/{PIPELINE}/executions/{uuid}/python-env")
        assert enveloped(answer, 200) == "numpy==2.0\n"


async def test_python_env_of_an_unknown_execution_is_404(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    answer = await client.get(f"/v1/pipelines/{PIPELINE}/executions/zzzz/python-env")
    failed(answer, 404, "Execution not found")
    answer = await client.get("/v1/pipelines/NoSuch/executions/zzzz/python-env")
    failed(answer, 404, "Pipeline NoSuch not found.")


async def test_python_env_of_an_execution_whose_file_was_not_uploaded_is_404(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    await push(client, push_body)
    answer = await client.get(f"/v1/pipelines/{PIPELINE}/executions/{TRAIN_UUID}/python-env")
    failed(answer, 404, "File not found")


async def test_python_env_download_is_the_raw_zip(client: httpx.AsyncClient) -> None:
    await client.post("/v1/python-env", files={"file": ("a.txt", b"A\n")})
    await client.post("/v1/python-env", files={"file": ("b.yaml", b"B\n")})
    answer = await client.get("/v1/python-env/download")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert "python_env_folder.zip" in answer.headers["content-disposition"]
    assert zipfile.ZipFile(io.BytesIO(answer.content)).namelist() == ["a.txt", "b.yaml"]
    some = await client.get("/v1/python-env/download", params={"list_of_files": ["b.yaml"]})
    assert zipfile.ZipFile(io.BytesIO(some.content)).namelist() == ["b.yaml"]


async def test_python_env_download_of_nothing_is_an_enveloped_404(
    client: httpx.AsyncClient,
) -> None:
    failed(await client.get("/v1/python-env/download"), 404, "Directory does not exist")
    answer = await client.get("/v1/python-env/download", params={"list_of_files": ["x.txt"]})
    failed(answer, 404, "File x.txt does not exist")


async def test_label_upload_and_read_back(client: httpx.AsyncClient, files_root: Path) -> None:
    answer = await client.post("/v1/label", files={"file": (LABEL_MD5, b"a,b\n1,2\n")})
    data = enveloped(answer, 200, code=201)
    assert data["message"].startswith(f"File '{LABEL_MD5}' uploaded successfully to ")
    again = await client.post("/v1/label", files={"file": (LABEL_MD5, b"other\n")})
    assert enveloped(again, 200, code=201)["message"].endswith("Skipping upload.")
    read = await client.get("/v1/label-data", params={"file_name": LABEL_MD5})
    assert enveloped(read, 200) == "a,b\n1,2\n"
    assert stored(files_root) == [f"labels/{LABEL_MD5}"]


async def test_label_data_of_no_file_is_404(client: httpx.AsyncClient) -> None:
    failed(await client.get("/v1/label-data", params={"file_name": "nope"}), 404, "File not found")
    invalid(await client.get("/v1/label-data"), "file_name")


async def test_tensorboard_upload_keeps_its_relative_path(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    answer = await client.post(
        "/v1/tensorboard",
        params={"pipeline_name": PIPELINE},
        files={"file": ("run1/events.out", b"\x00\x01")},
    )
    data = enveloped(answer, 200)
    assert data == {"message": "File 'run1/events.out' uploaded successfully"}
    assert stored(files_root) == [f"tensorboard-logs/{PIPELINE}/run1/events.out"]


@pytest.mark.parametrize(
    ("route", "params", "name"),
    [
        ("/v1/python-env", {}, "../escape.txt"),
        ("/v1/python-env", {}, "/abs.txt"),
        ("/v1/label", {}, "../escape"),
        ("/v1/tensorboard", {"pipeline_name": PIPELINE}, "../../escape"),
        ("/v1/tensorboard", {"pipeline_name": "../up"}, "x"),
    ],
)
async def test_unsafe_upload_names_are_400_and_write_nothing(
    client: httpx.AsyncClient, files_root: Path, route: str, params: dict[str, str], name: str
) -> None:
    answer = await client.post(route, params=params, files={"file": (name, b"x")})
    failed(answer, 400)
    assert stored(files_root) == []


@pytest.mark.parametrize("route", ["/v1/python-env", "/v1/label", "/v1/tensorboard"])
async def test_uploads_without_a_file_are_422_envelopes_and_write_nothing(
    client: httpx.AsyncClient, files_root: Path, route: str
) -> None:
    params = {"pipeline_name": PIPELINE} if route == "/v1/tensorboard" else {}
    answer = await client.post(route, params=params, files={"other": ("a.txt", b"x")})
    invalid(answer)
    plain = await client.post(route, params=params, content=b"x")
    invalid(plain)
    assert stored(files_root) == []


async def test_tensorboard_without_a_pipeline_is_a_422_envelope(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    answer = await client.post("/v1/tensorboard", files={"file": ("a", b"x")})
    invalid(answer, "pipeline_name")
    assert stored(files_root) == []


@pytest.mark.parametrize("route", ["/v1/python-env", "/v1/label"])
async def test_upload_over_the_limit_is_an_enveloped_413_and_leaves_nothing(
    app: FastAPI, client: httpx.AsyncClient, files_root: Path, route: str
) -> None:
    app.dependency_overrides[get_upload_limit] = lambda: 1024
    answer = await client.post(route, files={"file": (ENV_NAME, b"x" * 4096)})
    failed(answer, 413)
    assert stored(files_root) == []


async def test_python_env_download_of_an_unsafe_name_is_an_enveloped_400(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/v1/python-env/download", params={"list_of_files": ["../x"]})
    failed(answer, 400)


@pytest.mark.parametrize(
    "read",
    [
        f"/v1/python-env?file_name={ENV_NAME}",
        f"/v1/python-env/{ENV_NAME}",
        f"/v1/label-data?file_name={LABEL_MD5}",
        f"/v1/python-env/download?list_of_files={ENV_NAME}",
        "/v1/python-env/download",
    ],
)
async def test_symlinks_leading_out_of_the_store_are_not_served(
    client: httpx.AsyncClient, files_root: Path, tmp_path: Path, read: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    for folder, name in (("env", ENV_NAME), ("labels", LABEL_MD5)):
        (files_root / folder).mkdir(parents=True, exist_ok=True)
        (files_root / folder / name).symlink_to(secret)
    answer = await client.get(read)
    assert answer.status_code in (200, 404)
    assert b"hunter2" not in answer.content
    if answer.headers["content-type"] == "application/zip":  # deflated: look at the names
        assert ENV_NAME not in zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    elif answer.status_code == 200:
        assert answer.json()["code"] == 404
