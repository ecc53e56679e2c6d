"""The Python SDK (``cmf_server_client``) against a server with auth on: its token goes as the
gateway expects it (``Authorization: Bearer``), from the argument or ``$CMF_SERVER_TOKEN``, and
the gateway's refusals arrive as the SDK's typed errors (docs/access.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import drop_database, free_port, new_database, start_server
from test_auth_client import create_token

from cmf_server_client import Client
from cmf_server_client.errors import Forbidden, Unauthorized
from cmf_testing.generator import push_body

PIPELINE = "Sdk-Auth"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """The server's URL, a read token and a write token; one pipeline pushed."""
    url = new_database()
    try:
        folder = tmp_path_factory.mktemp("sdk-auth")
        with start_server(folder, free_port(), {"DATABASE_URL": url, "AUTH": "on"}) as process:
            read = create_token(url, "--name", "notebook", "--scope", "read")["token"]
            write = create_token(url, "--name", "ci", "--scope", "write")["token"]
            pushed = httpx.post(
                f"{process.base_url}/api/mlmd_push",
                json=push_body(PIPELINE, 3),
                headers={"Authorization": f"Bearer {write}"},
                timeout=60,
            )
            assert pushed.status_code == 200, pushed.text
            yield process.base_url, read, write
    finally:
        drop_database(url)


def test_a_read_token_reads(server: tuple[str, str, str]) -> None:
    base_url, read, _ = server
    with Client(base_url, token=read) as client:
        assert [p["name"] for p in client.pipelines()] == [PIPELINE]
        assert len(list(client.executions(pipeline=PIPELINE))) == 3


def test_the_token_comes_from_the_environment_too(
    server: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, read, _ = server
    monkeypatch.setenv("CMF_SERVER_TOKEN", read)
    with Client(base_url) as client:
        assert [p["name"] for p in client.pipelines()] == [PIPELINE]


def test_no_token_or_a_wrong_one_is_unauthorized(
    server: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, read, _ = server
    monkeypatch.delenv("CMF_SERVER_TOKEN", raising=False)
    for token in (None, read[:-4] + "xxxx"):
        with Client(base_url, token=token) as client, pytest.raises(Unauthorized):
            list(client.pipelines())


def test_a_read_token_may_not_upload(server: tuple[str, str, str], tmp_path: Path) -> None:
    base_url, read, _ = server
    blob = tmp_path / "model.bin"
    blob.write_bytes(b"weights" * 100)
    with Client(base_url, token=read) as client, pytest.raises(Forbidden):
        client.upload_blob(blob)
