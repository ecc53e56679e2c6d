"""Backup and restore on the embedded server: what the real cmf client pushed (with a blob and a
TensorBoard log beside it) goes out with ``cmf-server export`` from a running server, and into
a new data dir with ``cmf-server import``: an import cut short resumes where it stopped; then
``lineage rebuild`` and ``verify`` succeed and the restored server answers the same pulls and
the same bytes."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cmf_client import make_cmf_client
from support import free_port, start_server

from cmf_testing.servers import ServerProcess, start_cmf_process

pytestmark = pytest.mark.client

CMF_SERVER = Path(sys.executable).parent / "cmf-server"
PIPELINE = "Backup-Pipeline"


def _cmf_server(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    return subprocess.run(
        [str(CMF_SERVER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server holding what the real client pushed, a 2.5 MiB blob and a TensorBoard log."""
    tmp = tmp_path_factory.mktemp("original")
    with start_server(tmp, free_port()) as server:
        client = make_cmf_client(tmp / "client")
        folder = tmp / "client" / "workspace"
        client.init(folder, server.base_url)
        client.script("pipeline.py", "--pipeline", PIPELINE, cwd=folder)
        pushed = client.cmf("metadata", "push", "-p", PIPELINE, cwd=folder)
        assert "successfully pushed" in pushed, pushed
        blob = random.Random(7).randbytes(5 * 512 * 1024)
        put = httpx.put(
            f"{server.base_url}/api/native/v1/blobs/{hashlib.md5(blob).hexdigest()}",
            content=blob,
            timeout=60,
        )
        assert put.status_code in (200, 201), put.text
        log = httpx.post(
            f"{server.base_url}/tensorboard",
            params={"pipeline_name": PIPELINE},
            files={"file": ("run-1/events.out.tfevents.1", b"\x00tensorboard\x01" * 100)},
            timeout=60,
        )
        assert log.status_code == 200, log.text
        yield server


def _answers(base_url: str) -> dict[str, object]:
    """What a restore must give back alike: the pull, the listings, the bytes."""
    pull = httpx.get(f"{base_url}/api/mlmd_pull/{PIPELINE}", timeout=60)
    assert pull.status_code == 200, pull.text
    blobs = {}
    for digest in (hashlib.md5(random.Random(7).randbytes(5 * 512 * 1024)).hexdigest(),):
        got = httpx.get(f"{base_url}/api/native/v1/blobs/{digest}", timeout=60)
        assert got.status_code == 200, got.text
        blobs[digest] = hashlib.sha256(got.content).hexdigest()
    logs = httpx.get(f"{base_url}/tensorboard-logs", params={"pipeline_name": PIPELINE}, timeout=60)
    executions = httpx.get(f"{base_url}/executions/{PIPELINE}", timeout=60)
    return {
        "pull": pull.text,
        "blobs": blobs,
        "tensorboard": logs.json(),
        "executions": executions.text,
        "pipelines": httpx.get(f"{base_url}/pipelines", timeout=60).json(),
    }


def test_an_export_imported_into_a_new_server_answers_the_same(
    original: ServerProcess, tmp_path: Path
) -> None:
    before = _answers(original.base_url)
    backup = tmp_path / "backup.ndjson"
    exported = _cmf_server("export", "--data-dir", str(original.data_dir), "-o", str(backup))
    assert exported.returncode == 0, exported.stderr
    assert "metadata" in exported.stderr, "the progress bars go to stderr"

    lines = backup.read_bytes().splitlines(keepends=True)
    restored = tmp_path / "restored"
    backup.write_bytes(b"".join(lines[: len(lines) // 2]))
    cut = _cmf_server("import", str(backup), "--data-dir", str(restored))
    assert cut.returncode == 1 and "cut short" in cut.stderr, cut.stderr
    assert (tmp_path / "backup.ndjson.import-progress").exists()

    backup.write_bytes(b"".join(lines))
    imported = _cmf_server("import", str(backup), "--data-dir", str(restored))
    assert imported.returncode == 0, imported.stderr
    assert "resumed after line" in imported.stderr, imported.stderr
    assert not (tmp_path / "backup.ndjson.import-progress").exists()

    refused = _cmf_server("import", str(backup), "--data-dir", str(original.data_dir))
    assert refused.returncode == 1 and "not empty" in refused.stderr, refused.stderr

    rebuilt = _cmf_server("lineage", "rebuild", "--data-dir", str(restored))
    assert rebuilt.returncode == 0, rebuilt.stderr
    port = free_port()
    with start_cmf_process(
        ["up", "--port", str(port), "--data-dir", str(restored)], tmp_path, port, restored, None
    ) as server:
        assert _answers(server.base_url) == before
        verified = _cmf_server("lineage", "verify", "--data-dir", str(restored))
        assert verified.returncode == 0, verified.stdout + verified.stderr
