"""Backup and restore on the embedded server: what the real cmf client pushed (with a blob and a
TensorBoard log beside it) goes out with ``cmf-server export`` from a running server, and into
a new data dir with ``cmf-server import``: an import cut short resumes where it stopped; then
``lineage rebuild`` and ``verify`` succeed and the restored server answers the same pulls and
the same bytes.

What does not depend on another step runs beside it: the client logs its pipeline while the
server starts; the refused import into the running server beside the import cut short; the
lineage rebuild beside the restored server as it starts (both may run beside a running server,
and the export holds no outbox, so the server projects nothing meanwhile); verify beside the
answers read. The restored data dir's PostgreSQL, once the first import has made it, is held by
the test, so the commands after it and the restored server reuse it rather than each starting
and stopping it (as ``cmf-server lineage`` does beside a running server)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cmf_client import CmfClient, make_cmf_client
from support import free_port, start_server

from cmf_server import embedded_postgres
from cmf_server.backup import CHUNK_BYTES
from cmf_testing.servers import ServerProcess, start_cmf_process

pytestmark = pytest.mark.client

CMF_SERVER = Path(sys.executable).parent / "cmf-server"
PIPELINE = "Backup-Pipeline"
# Over one chunk line of the export (the blob goes out in two), its size otherwise beside the
# point.
BLOB = random.Random(7).randbytes(CHUNK_BYTES + CHUNK_BYTES // 2)
DIGEST = hashlib.md5(BLOB).hexdigest()


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


def _logged(client: CmfClient, folder: Path, server_url: str) -> None:
    """``cmf init`` and the pipeline logged, which need no server yet."""
    client.init(folder, server_url)
    client.script("pipeline.py", "--pipeline", PIPELINE, cwd=folder)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server holding what the real client pushed, a blob and a TensorBoard log."""
    tmp = tmp_path_factory.mktemp("original")
    client = make_cmf_client(tmp / "client")
    folder = tmp / "client" / "workspace"
    port = free_port()
    with ThreadPoolExecutor(max_workers=1) as pool:
        logging = pool.submit(_logged, client, folder, f"http://127.0.0.1:{port}")
        server = start_server(tmp, port)
        with server:
            logging.result()
            pushed = client.cmf("metadata", "push", "-p", PIPELINE, cwd=folder)
            assert "successfully pushed" in pushed, pushed
            put = httpx.put(
                f"{server.base_url}/api/native/v1/blobs/{DIGEST}", content=BLOB, timeout=60
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
    blob = httpx.get(f"{base_url}/api/native/v1/blobs/{DIGEST}", timeout=60)
    assert blob.status_code == 200, blob.text
    logs = httpx.get(f"{base_url}/tensorboard-logs", params={"pipeline_name": PIPELINE}, timeout=60)
    executions = httpx.get(f"{base_url}/executions/{PIPELINE}", timeout=60)
    return {
        "pull": pull.text,
        "blob": hashlib.sha256(blob.content).hexdigest(),
        "tensorboard": logs.json(),
        "executions": executions.text,
        "pipelines": httpx.get(f"{base_url}/pipelines", timeout=60).json(),
    }


@pytest.fixture
def held() -> Iterator[list[Any]]:
    """Data dirs whose embedded PostgreSQL the test holds; each is stopped at the end."""
    handles: list[Any] = []
    try:
        yield handles
    finally:
        for handle in handles:
            embedded_postgres.stop(handle)


def test_an_export_imported_into_a_new_server_answers_the_same(
    original: ServerProcess, tmp_path: Path, held: list[Any]
) -> None:
    before = _answers(original.base_url)
    assert before["blob"] == hashlib.sha256(BLOB).hexdigest()
    backup = tmp_path / "backup.ndjson"
    exported = _cmf_server("export", "--data-dir", str(original.data_dir), "-o", str(backup))
    assert exported.returncode == 0, exported.stderr
    assert "metadata" in exported.stderr, "the progress bars go to stderr"

    whole = backup.read_bytes()
    lines = whole.splitlines(keepends=True)
    cut_file = tmp_path / "cut" / "backup.ndjson"
    cut_file.parent.mkdir()
    cut_file.write_bytes(b"".join(lines[: len(lines) // 2]))
    restored = tmp_path / "restored"
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Into the running server, which holds data: refused.
        refusing = pool.submit(
            _cmf_server, "import", str(backup), "--data-dir", str(original.data_dir)
        )
        cut = _cmf_server("import", str(cut_file), "--data-dir", str(restored))
        refused = refusing.result()
    assert refused.returncode == 1 and "not empty" in refused.stderr, refused.stderr
    assert cut.returncode == 1 and "cut short" in cut.stderr, cut.stderr
    assert (cut_file.parent / "backup.ndjson.import-progress").exists()

    # The import made the data dir's PostgreSQL (and stopped it); from here on the test holds it.
    held.append(embedded_postgres.start(restored.resolve())[1])
    cut_file.write_bytes(whole)
    imported = _cmf_server("import", str(cut_file), "--data-dir", str(restored))
    assert imported.returncode == 0, imported.stderr
    assert "resumed after line" in imported.stderr, imported.stderr
    assert not (cut_file.parent / "backup.ndjson.import-progress").exists()

    port = free_port()
    with ThreadPoolExecutor(max_workers=1) as pool:
        rebuilding = pool.submit(_cmf_server, "lineage", "rebuild", "--data-dir", str(restored))
        with start_cmf_process(
            ["up", "--port", str(port), "--data-dir", str(restored)], tmp_path, port, restored, None
        ) as server:
            rebuilt = rebuilding.result()
            assert rebuilt.returncode == 0, rebuilt.stderr
            verifying = pool.submit(_cmf_server, "lineage", "verify", "--data-dir", str(restored))
            assert _answers(server.base_url) == before
            verified = verifying.result()
            assert verified.returncode == 0, verified.stdout + verified.stderr
