"""Auth end to end: ``cmf-server up --auth``, tokens made with ``cmf-server token`` against its
``DATABASE_URL``, and the real ``cmf`` client pushing (its uploads included) and pulling with
``http://cmf:<token>@127.0.0.1:PORT`` as its server URL, unchanged (docs/access.md)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cmf_client import CmfClient, make_cmf_client
from support import drop_database, free_port, new_database, start_server

from cmf_testing.servers import CMF_SERVER, ServerProcess
from cmf_testing.waiting import eventually

pytestmark = pytest.mark.client

PIPELINE = "Auth-Test"


def token_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    return subprocess.run(
        [str(CMF_SERVER), "token", *args],
        env={**env, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_token(database_url: str, *args: str) -> dict[str, Any]:
    done = token_cli(database_url, "create", "--json", *args)
    assert done.returncode == 0, done.stderr
    created: dict[str, Any] = json.loads(done.stdout)
    return created


@dataclass(frozen=True)
class Stack:
    server: ServerProcess
    database_url: str
    read: str
    write: str

    def url(self, token: str) -> str:
        return f"http://cmf:{token}@127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = new_database()
    try:
        folder = tmp_path_factory.mktemp("auth-server")
        with start_server(folder, free_port(), {"DATABASE_URL": url, "AUTH": "on"}) as server:
            read = create_token(url, "--name", "reader", "--scope", "read")["token"]
            write = create_token(url, "--name", "ci", "--scope", "write")["token"]
            yield Stack(server, url, read, write)
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def cmf_client(tmp_path_factory: pytest.TempPathFactory) -> CmfClient:
    return make_cmf_client(tmp_path_factory.mktemp("cmf-client"))


def test_the_token_cli_creates_lists_and_revokes(stack: Stack) -> None:
    done = token_cli(stack.database_url, "create", "--name", "once", "--scope", "admin")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("cmf_") and "shown this once" in done.stderr
    token_id = token.split("_")[1]
    listed = token_cli(stack.database_url, "list", "--json")
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[token_id]["state"] == "active" and rows[token_id]["scope"] == "admin"
    assert token not in listed.stdout
    table = token_cli(stack.database_url, "list").stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "NAME", "SCOPE"] and token_id in table
    headers = {"Authorization": f"Bearer {token}"}
    tokens_url = f"{stack.server.base_url}/api/native/v1/tokens"
    assert httpx.get(tokens_url, headers=headers, timeout=10).status_code == 200
    revoked = token_cli(stack.database_url, "revoke", token_id)
    assert revoked.returncode == 0 and token_id in revoked.stdout

    # The gateway's token cache learns of a revocation at its next poll of the revocation
    # version (every 0.2 s; at most 1 s, docs/access.md): the next request may still be early.
    def refused() -> None:
        assert httpx.get(tokens_url, headers=headers, timeout=10).status_code == 401

    eventually(refused, timeout=10, interval=0.1)
    missing = token_cli(stack.database_url, "revoke", "0123456789ab")
    assert missing.returncode == 1 and "no token" in missing.stderr


def test_the_token_cli_refuses_a_bad_expiry(stack: Stack) -> None:
    done = token_cli(
        stack.database_url, "create", "--name", "x", "--scope", "read", "--expires", "1y"
    )
    assert done.returncode == 2 and "expiry" in done.stderr


def test_without_a_token_the_server_asks_for_one(stack: Stack) -> None:
    answer = httpx.get(f"{stack.server.base_url}/api/pipelines", timeout=10)
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate") == [
        'Bearer realm="cmf"',
        'Basic realm="cmf", charset="UTF-8"',
    ]
    assert httpx.get(f"{stack.server.base_url}/livez", timeout=10).status_code == 200


def test_the_real_client_pushes_uploads_and_pulls_with_the_token_in_its_url(
    stack: Stack, cmf_client: CmfClient
) -> None:
    folder = cmf_client.scratch / "workspace"
    cmf_client.init(folder, stack.url(stack.write))
    cmf_client.script("pipeline.py", "--pipeline", PIPELINE, cwd=folder)
    output = cmf_client.cmf("metadata", "push", "-p", PIPELINE, cwd=folder)
    assert "SUCCESS: ./mlmd is successfully pushed." in output, output

    read = {"Authorization": f"Bearer {stack.read}"}
    base = stack.server.base_url
    summary = cmf_client.summary(folder)
    (label,) = {a["uri"] for a in summary["artifacts"] if a["type"] == "Label"}
    labels = httpx.get(f"{base}/api/label-data", params={"file_name": label}, headers=read)
    assert labels.status_code == 200, (output, labels.text)
    assert labels.text == (folder / "artifacts" / "labels.csv").read_text()
    (env_name,) = {
        a["name"].split(":")[0] for a in summary["artifacts"] if a["type"] == "Environment"
    }
    env = httpx.get(
        f"{base}/api/python-env", params={"file_name": Path(env_name).name}, headers=read
    )
    assert env.status_code == 200 and env.text == (folder / env_name).read_text()

    fresh = cmf_client.scratch / "fresh"
    cmf_client.init(fresh, stack.url(stack.read))
    pulled = cmf_client.cmf("metadata", "pull", "-p", PIPELINE, cwd=fresh)
    assert f"SUCCESS: {fresh / 'mlmd'} is successfully pulled." in pulled, pulled


def test_a_read_token_cannot_push(stack: Stack, cmf_client: CmfClient) -> None:
    # The workspace the pushes above came from, pointed at the server with a read token.
    folder = cmf_client.scratch / "workspace"
    cmf_client.init(folder, stack.url(stack.read))
    output = cmf_client.cmf("metadata", "push", "-p", PIPELINE, cwd=folder)
    assert "successfully pushed" not in output and "already exists" not in output, output
    tokens = httpx.get(
        f"{stack.server.base_url}/api/native/v1/tokens",
        headers={"Authorization": f"Bearer {stack.write}"},
        timeout=10,
    )
    assert tokens.status_code == 403
