"""The file routes (docs/wire-contract.md §1.3) in-process, files kept in a folder of the
test's own."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cmf_metadata.api.deps import get_upload_limit
from cmf_metadata.files import LocalFileStore

ENV_NAME = "python_env_869c15551fd0f53a7c07e1d2b4ee7ed5.txt"
LABEL_MD5 = "800d3d1d5fb149cbdf2e138cb024c9a6"
BOUNDARY = "cmf-test-boundary"


# Files go to a folder of the test's own (conftest's files_root and store).
pytestmark = pytest.mark.usefixtures("store")


def multipart(filename: str, content: bytes, field: str = "file") -> dict[str, object]:
    """A form body written by hand, so names reach the server byte for byte as given."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return {
        "content": head + content + f"\r\n--{BOUNDARY}--\r\n".encode(),
        "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    }


def stored(root: Path) -> list[str]:
    """Every file under the store's folder, temporary ones included."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_python_env_upload_keeps_the_basename(
    client: httpx.AsyncClient, files_root: Path, prefix: str
) -> None:
    answer = await client.post(
        f"{prefix}/python-env", files={"file": (f"cmf_artifacts/{ENV_NAME}", b"numpy==2.0\n")}
    )
    assert answer.status_code == 200
    assert answer.json() == {"message": f"File 'cmf_artifacts/{ENV_NAME}' uploaded successfully"}
    assert stored(files_root) == [f"env/{ENV_NAME}"]


async def test_python_env_reads_back_as_plain_text(client: httpx.AsyncClient) -> None:
    await client.post("/api/python-env", files={"file": (ENV_NAME, b"numpy==2.0\npandas\n")})
    answer = await client.get("/api/python-env", params={"file_name": ENV_NAME})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text == "numpy==2.0\npandas\n"


async def test_python_env_upload_again_replaces_the_file(client: httpx.AsyncClient) -> None:
    await client.post("/api/python-env", files={"file": (ENV_NAME, b"old\n")})
    await client.post("/api/python-env", files={"file": (ENV_NAME, b"new\n")})
    answer = await client.get("/api/python-env", params={"file_name": ENV_NAME})
    assert answer.text == "new\n"


async def test_python_env_of_another_extension_is_400(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/python-env", params={"file_name": "env.json"})
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Unsupported file extension. Use .txt or .yaml"}


async def test_python_env_not_uploaded_is_404_file_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/python-env", params={"file_name": "python_env_none.yaml"})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "File not found"}


async def test_python_env_without_file_name_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/python-env")
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"


async def test_label_upload_answers_uploaded_then_skipped(
    client: httpx.AsyncClient, store: LocalFileStore
) -> None:
    where = store.location("labels")
    first = await client.post("/api/label", files={"file": (LABEL_MD5, b"id,label\n1,cat\n")})
    assert first.json() == {"message": f"File '{LABEL_MD5}' uploaded successfully to {where}."}
    again = await client.post("/api/label", files={"file": (LABEL_MD5, b"other\n")})
    assert again.json() == {
        "message": f"File '{LABEL_MD5}' already exists at {where}. Skipping upload."
    }


async def test_label_upload_again_keeps_the_first_content(client: httpx.AsyncClient) -> None:
    await client.post("/api/label", files={"file": (LABEL_MD5, b"id,label\n1,cat\n")})
    await client.post("/api/label", files={"file": (LABEL_MD5, b"other\n")})
    answer = await client.get("/api/label-data", params={"file_name": LABEL_MD5})
    assert answer.text == "id,label\n1,cat\n"


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_label_data_reads_back_the_csv_as_plain_text(
    client: httpx.AsyncClient, prefix: str
) -> None:
    await client.post(f"{prefix}/label", files={"file": (LABEL_MD5, b"id,label\n1,cat\n")})
    answer = await client.get(f"{prefix}/label-data", params={"file_name": LABEL_MD5})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text == "id,label\n1,cat\n"


async def test_label_data_not_uploaded_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/label-data", params={"file_name": LABEL_MD5})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "File not found"}


async def test_tensorboard_upload_keeps_its_relative_path_in_the_pipeline_folder(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    answer = await client.post(
        "/api/tensorboard",
        params={"pipeline_name": "Test-env"},
        files={"file": ("run1/events.out.tfevents.1", b"\x00\x01binary")},
    )
    assert answer.status_code == 200
    assert answer.json() == {"message": "File 'run1/events.out.tfevents.1' uploaded successfully"}
    assert stored(files_root) == ["tensorboard-logs/Test-env/run1/events.out.tfevents.1"]
    path = files_root / "tensorboard-logs/Test-env/run1/events.out.tfevents.1"
    assert path.read_bytes() == b"\x00\x01binary"


async def test_tensorboard_logs_lists_the_pipeline_uploads(client: httpx.AsyncClient) -> None:
    for name, body in (("run2/b", b"22"), ("run1/a", b"1")):
        await client.post(
            "/tensorboard", params={"pipeline_name": "P"}, files={"file": (name, body)}
        )
    await client.post("/tensorboard", params={"pipeline_name": "Q"}, files={"file": ("c", b"3")})
    answer = await client.get("/api/tensorboard-logs", params={"pipeline_name": "P"})
    assert answer.status_code == 200
    assert answer.json() == {
        "pipeline_name": "P",
        "files": [{"path": "run1/a", "size": 1}, {"path": "run2/b", "size": 2}],
    }


async def test_tensorboard_logs_of_a_pipeline_without_uploads_is_empty(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/tensorboard-logs", params={"pipeline_name": "Nothing"})
    assert answer.json() == {"pipeline_name": "Nothing", "files": []}


async def test_tensorboard_without_pipeline_name_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/tensorboard", files={"file": ("a", b"1")})
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"


async def test_download_python_env_zips_every_env_file(client: httpx.AsyncClient) -> None:
    await client.post("/api/python-env", files={"file": ("a.txt", b"A\n")})
    await client.post("/api/python-env", files={"file": ("b.yaml", b"B\n")})
    answer = await client.get("/api/download-python-env")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    assert "python_env_folder.zip" in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert {n: archive.read(n) for n in archive.namelist()} == {"a.txt": b"A\n", "b.yaml": b"B\n"}


async def test_download_python_env_zips_only_the_listed_files(client: httpx.AsyncClient) -> None:
    await client.post("/api/python-env", files={"file": ("a.txt", b"A\n")})
    await client.post("/api/python-env", files={"file": ("b.txt", b"B\n")})
    answer = await client.get("/download-python-env", params={"list_of_files": ["b.txt"]})
    assert "python_env_files.zip" in answer.headers["content-disposition"]
    assert zipfile.ZipFile(io.BytesIO(answer.content)).namelist() == ["b.txt"]


async def test_download_python_env_of_a_missing_file_is_200_with_error(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/python-env", files={"file": ("a.txt", b"A\n")})
    answer = await client.get(
        "/api/download-python-env", params={"list_of_files": ["a.txt", "gone.txt"]}
    )
    assert answer.status_code == 200
    assert answer.json() == {"error": "File gone.txt does not exist"}


async def test_download_python_env_with_nothing_uploaded_is_200_with_error(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/download-python-env")
    assert answer.status_code == 200
    assert answer.json() == {"error": "Directory does not exist"}


@pytest.mark.parametrize(
    "filename",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/escape.txt",
        "..",
        "a\\escape.txt",
        "nul\x00.txt",
    ],
)
@pytest.mark.parametrize("route", ["/api/python-env", "/api/label"])
async def test_upload_with_an_unsafe_name_is_400_and_writes_nothing(
    client: httpx.AsyncClient, files_root: Path, route: str, filename: str
) -> None:
    answer = await client.post(route, **multipart(filename, b"payload"))  # type: ignore[arg-type]
    assert answer.status_code == 400, answer.text
    assert "invalid file name" in answer.json()["detail"]
    assert stored(files_root) == []
    assert not (files_root.parent / "escape.txt").exists()


@pytest.mark.parametrize(
    ("pipeline", "filename"),
    [
        ("P", "../../escape"),
        ("P", "run/../../../escape"),
        ("P", "/abs/escape"),
        ("P", "run//escape"),
        ("..", "escape"),
        ("a/b", "escape"),
        ("P\x00", "escape"),
    ],
)
async def test_tensorboard_with_an_unsafe_path_is_400_and_writes_nothing(
    client: httpx.AsyncClient, files_root: Path, pipeline: str, filename: str
) -> None:
    answer = await client.post(
        "/api/tensorboard",
        params={"pipeline_name": pipeline},
        **multipart(filename, b"payload"),  # type: ignore[arg-type]
    )
    assert answer.status_code == 400, answer.text
    assert stored(files_root) == []


@pytest.mark.parametrize("file_name", ["../x.txt", "a/x.txt", "a\\x.txt", "..", "x\x00.txt"])
async def test_reading_an_unsafe_label_name_is_400(
    client: httpx.AsyncClient, file_name: str
) -> None:
    answer = await client.get("/api/label-data", params={"file_name": file_name})
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize(
    "file_name",
    ["../x.txt", "a/../x.txt", "/etc/x.txt", "a\\x.txt", "..\\x.txt", "..", "x\x00.txt", "a/.txt/"],
)
async def test_reading_an_unsafe_python_env_name_is_400(
    client: httpx.AsyncClient, file_name: str
) -> None:
    answer = await client.get("/api/python-env", params={"file_name": file_name})
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_python_env_read_by_the_recorded_path_answers_the_file(
    client: httpx.AsyncClient, prefix: str
) -> None:
    """The UI sends the ``Python_Env`` property as cmflib records it; the reference reads the
    base name (server/app/main.py ``get_python_env``)."""
    await client.post("/api/python-env", files={"file": (f"cmf_artifacts/{ENV_NAME}", b"numpy\n")})
    answer = await client.get(
        f"{prefix}/python-env", params={"file_name": f"cmf_artifacts/{ENV_NAME}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.text == "numpy\n"


async def test_download_python_env_of_an_unsafe_name_is_400(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/download-python-env", params={"list_of_files": ["../x"]})
    assert answer.status_code == 400


async def test_upload_over_the_limit_is_413_and_leaves_nothing(
    app: FastAPI, client: httpx.AsyncClient, files_root: Path
) -> None:
    app.dependency_overrides[get_upload_limit] = lambda: 1024
    answer = await client.post("/api/python-env", files={"file": (ENV_NAME, b"x" * 4096)})
    assert answer.status_code == 413
    assert "1024" in answer.json()["detail"]
    assert stored(files_root) == []


async def test_large_upload_is_stored_intact(client: httpx.AsyncClient, files_root: Path) -> None:
    content = hashlib.sha256(b"seed").digest() * (1536 * 1024 // 32 + 7)  # over one write
    answer = await client.post(
        "/api/tensorboard", params={"pipeline_name": "P"}, files={"file": ("big.bin", content)}
    )
    assert answer.status_code == 200
    assert (files_root / "tensorboard-logs/P/big.bin").read_bytes() == content
    assert stored(files_root) == ["tensorboard-logs/P/big.bin"]


async def test_upload_that_is_not_a_form_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/python-env", content=b"plain", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 422
    assert answer.json()["status"] == "invalid_request"


async def test_upload_without_a_file_field_is_422_and_writes_nothing(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    answer = await client.post("/api/label", **multipart(LABEL_MD5, b"x", field="other"))  # type: ignore[arg-type]
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "file"]
    assert stored(files_root) == []


async def test_upload_cut_off_inside_the_file_is_422_and_writes_nothing(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    body = multipart(ENV_NAME, b"partial content")
    body["content"] = body["content"][:-20]  # type: ignore[index]
    answer = await client.post("/api/python-env", **body)  # type: ignore[arg-type]
    assert answer.status_code == 422
    assert stored(files_root) == []


@pytest.fixture
def planted(files_root: Path, tmp_path: Path) -> Path:
    """A secret outside the store, reachable by symlinks planted in every folder a read uses."""
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    for folder in ("env", "labels"):
        (files_root / folder).mkdir(parents=True, exist_ok=True)
    (files_root / "env" / ENV_NAME).symlink_to(secret)
    (files_root / "labels" / LABEL_MD5).symlink_to(secret)
    return secret


@pytest.mark.usefixtures("planted")
@pytest.mark.parametrize("prefix", ["", "/api"])
@pytest.mark.parametrize(
    "read",
    [f"/python-env?file_name={ENV_NAME}", f"/label-data?file_name={LABEL_MD5}"],
)
async def test_a_symlink_leading_out_of_the_store_is_not_served(
    client: httpx.AsyncClient, prefix: str, read: str
) -> None:
    answer = await client.get(prefix + read)
    assert answer.status_code == 404
    assert "hunter2" not in answer.text


@pytest.mark.usefixtures("planted")
@pytest.mark.parametrize("query", ["", f"?list_of_files={ENV_NAME}"])
async def test_the_env_archive_leaves_out_symlinks_leading_out_of_the_store(
    client: httpx.AsyncClient, query: str
) -> None:
    answer = await client.get(f"/api/download-python-env{query}")
    assert b"hunter2" not in answer.content
    if answer.headers["content-type"] == "application/zip":
        names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
        assert ENV_NAME not in names


async def test_a_symlink_to_another_file_of_the_store_is_served(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    await client.post("/api/label", files={"file": (LABEL_MD5, b"id,label\n1,cat\n")})
    (files_root / "labels" / "alias").symlink_to(files_root / "labels" / LABEL_MD5)
    answer = await client.get("/api/label-data", params={"file_name": "alias"})
    assert answer.status_code == 200
    assert answer.text == "id,label\n1,cat\n"


async def test_label_upload_answers_do_not_reveal_the_files_path(
    client: httpx.AsyncClient, files_root: Path
) -> None:
    first = await client.post("/api/label", files={"file": (LABEL_MD5, b"id,label\n1,cat\n")})
    again = await client.post("/api/label", files={"file": (LABEL_MD5, b"id,label\n1,cat\n")})
    for answer in (first, again):
        assert list(answer.json()) == ["message"]
        assert str(files_root) not in answer.text
        assert str(files_root.parent) not in answer.text
