"""Distributed mode end to end: every process of ``cmf_server.topology`` (gateway, metadata,
lineage, artifacts, UI, relay, projector) as a process of its own on loopback, with the real
PostgreSQL (each service on a role that sees only its own schema), Kafka, Neo4j, Redis and S3
(SeaweedFS), and the real ``cmf`` client against the gateway: a push with its uploads, a pull
into a fresh folder, ``cmf artifact push`` and ``pull`` beside the artifact routes, lineage
through Kafka (and every lineage route read at once after a push, without a token), /health
from every process. (Each role seeing only its own schema and the merged /openapi.json are
checked in test_distributed_faults, which needs no lock.)

Uses Kafka and Neo4j: run it under the shared lock (docs/development.md).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cmf_client import CmfClient, make_cmf_client
from distributed_stack import UNSIGNED, Roles, Stack, running_stack, service_roles
from lineage_reads import read_each_route_right_after_each_push
from support import KAFKA_BOOTSTRAP, neo4j_env, new_topic

from cmf_gateway.distributed import PROCESS_PARTS
from cmf_server import topology
from cmf_testing.s3 import TEST_S3, own_bucket
from cmf_testing.waiting import eventually

pytestmark = [pytest.mark.client, pytest.mark.neo4j]

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def roles() -> Iterator[Roles]:
    with service_roles() as made:
        yield made


@pytest.fixture(scope="module")
def bucket() -> Iterator[str]:
    with own_bucket("cmf-distributed") as name:
        yield name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, roles: Roles, bucket: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("distributed")
    topic = new_topic()
    settings = {
        "METADATA_DATABASE_URL": roles.urls[topology.METADATA],
        "ARTIFACTS_DATABASE_URL": roles.urls[topology.ARTIFACTS],
        "LINEAGE_DATABASE_URL": roles.urls[topology.LINEAGE],
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        "EVENTS_TOPIC": topic,
        "REDIS_URL": REDIS_URL,
        "LINEAGE_CONSUMER_GROUP": f"distributed-{uuid.uuid4().hex[:8]}",
        "FILES_DIR": str(tmp / "files"),
        **neo4j_env(),
        **TEST_S3.env(bucket),
        "PRINCIPAL_SECRET": uuid.uuid4().hex,
        "LOG_LEVEL": "WARNING",
    }
    every = {name: UNSIGNED for name in topology.names()}
    # Tokens through the real client are test_auth*'s; here the transport (docs/access.md).
    every[topology.GATEWAY] = {**UNSIGNED, "AUTH": "off-i-know"}
    with running_stack(tmp, topology.names(), settings, every) as running:
        yield running


@pytest.fixture(scope="module")
def cmf_client(tmp_path_factory: pytest.TempPathFactory) -> CmfClient:
    return make_cmf_client(tmp_path_factory.mktemp("cmf-client"))


def files_by_md5(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in folder.rglob("*"):
        if path.is_file() and not {".git", ".dvc", "mlmd"} & set(path.relative_to(folder).parts):
            found[hashlib.md5(path.read_bytes()).hexdigest()] = path
    return found


def artifacts_of(gateway: str, pipeline: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{gateway}/api/native/v1/artifacts", params={"pipeline": pipeline, "limit": 100}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_the_real_client_pushes_pulls_and_moves_artifacts_through_the_gateway(
    stack: Stack, cmf_client: CmfClient, bucket: str
) -> None:
    gateway = stack.gateway
    pushed = cmf_client.scratch / "pushed"
    cmf_client.init_minio(pushed, gateway, bucket, TEST_S3)
    cmf_client.script("pipeline.py", "--pipeline", "Distributed", cwd=pushed)
    output = cmf_client.cmf("metadata", "push", "-p", "Distributed", cwd=pushed)
    assert "mlmd is successfully pushed" in output, output
    # The push's upload of the label csv went through the gateway too (file name: its md5).
    csv = (pushed / "artifacts" / "labels.csv").read_bytes()
    labels = httpx.get(
        f"{gateway}/api/label-data", params={"file_name": hashlib.md5(csv).hexdigest()}
    )
    assert labels.status_code == 200, labels.text
    assert labels.content == csv

    # cmf artifact push writes to the bucket; the artifact service serves it by name.
    assert "files pushed" in cmf_client.cmf("artifact", "push", "-p", "Distributed", cwd=pushed)
    local = files_by_md5(pushed)
    stored = [a for a in artifacts_of(gateway, "Distributed") if a["type"] == "Model"]
    assert stored, artifacts_of(gateway, "Distributed")
    for artifact in stored:
        pulled = httpx.get(
            f"{gateway}/api/artifact_pull",
            params={"pipeline_name": "Distributed", "artifact_name": artifact["name"]},
        )
        assert pulled.status_code == 200, pulled.text
        assert pulled.content == local[artifact["uri"]].read_bytes()
    # The artifact service catalogued what it served; the metadata service learns it over HTTP.
    assert all(a["stored"] for a in artifacts_of(gateway, "Distributed") if a["type"] == "Model")

    # A fresh folder pulls the metadata back, then the artifacts the service holds.
    fresh = cmf_client.scratch / "pulled"
    cmf_client.init_minio(fresh, gateway, bucket, TEST_S3)
    output = cmf_client.cmf("metadata", "pull", "-p", "Distributed", cwd=fresh)
    assert "SUCCESS" in output, output
    output = cmf_client.cmf("artifact", "pull", "-p", "Distributed", cwd=fresh)
    assert "SUCCESS: Number of files downloaded" in output, output
    assert {a["uri"] for a in stored} <= set(files_by_md5(fresh))


def test_lineage_reaches_the_graph_through_kafka_and_answers_through_the_gateway(
    stack: Stack,
) -> None:
    from cmf_testing.generator import push_body

    gateway = stack.gateway
    pipeline = f"Lineage-{uuid.uuid4().hex[:6]}"
    pushed = httpx.post(f"{gateway}/api/mlmd_push", json=push_body(pipeline, 3), timeout=60)
    assert pushed.json() == {"status": "success"}, pushed.text
    token = pushed.headers["x-cmf-consistency-token"]

    def tree() -> None:
        answer = httpx.get(
            f"{gateway}/api/artifact-lineage/tangled-tree/{pipeline}",
            headers={"X-CMF-Consistency-Token": token},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json(), "an empty tree"

    eventually(tree, timeout=60, interval=0.5)


def test_every_lineage_route_answers_a_push_at_once_without_a_token(stack: Stack) -> None:
    """Read-after-write across processes: the metadata service posts each push's committed
    sequence on Redis before it answers; the lineage service, a process of its own behind the
    relay, Kafka and the projector, waits for it on every route (cmf_lineage.consistency)."""
    with httpx.Client(base_url=stack.gateway, timeout=60) as client:
        read_each_route_right_after_each_push(client, pushes=16)


def test_health_gathers_every_process_and_part(stack: Stack) -> None:
    def healthy() -> dict[str, Any]:
        answer = httpx.get(f"{stack.gateway}/health", timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    body = eventually(healthy, timeout=30, interval=0.5)
    assert body["status"] == "ok"
    checks = body["checks"]
    for part in ("database", "neo4j", "storage", "kafka", "redis", "loops", *PROCESS_PARTS):
        assert checks[part]["status"] == "ok", (part, checks[part])
        assert checks[part]["latency_ms"] is not None, (part, checks[part])
    one = httpx.get(f"{stack.gateway}/api/health/storage")
    assert one.status_code == 200 and one.json()["status"] == "ok"
