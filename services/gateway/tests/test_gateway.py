"""The gateway: its route table, both path forms of every CMF route, and /health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from cmf_common.service import Service, install_state
from cmf_gateway.app import create_gateway
from cmf_gateway.routing import LINEAGE, METADATA, default_table
from cmf_gateway.settings import GatewaySettings
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings


@pytest.fixture
def metadata(single_connection_pool: Any, fresh_database_url: str) -> Service[MetadataState]:
    settings = MetadataSettings(database_url=SecretStr(fresh_database_url))
    service = create_metadata(settings)
    install_state(service.app, MetadataState.on(settings, single_connection_pool))
    return service


@pytest.fixture
def metadata_app(metadata: Service[MetadataState]) -> FastAPI:
    return metadata.app


@pytest.fixture
async def gateway_client(metadata: Service[MetadataState]) -> AsyncIterator[httpx.AsyncClient]:
    gateway = create_gateway(GatewaySettings(), {METADATA: metadata})
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/mlmd_push", METADATA),
        ("/api/mlmd_push", METADATA),
        ("/api/mlmd_pull/Test-env", METADATA),
        ("/", METADATA),
        ("/api", METADATA),
        ("/health", None),
        ("/api/health/database", None),
        ("/livez", None),
        ("/api/v1/unknown", None),
        ("/api/v1/executions", METADATA),
        ("/executions-by-stage/p", METADATA),
        ("/artifact-lineage/tangled-tree/p", LINEAGE),
        ("/api/artifact-execution-lineage/tangled-tree/p", LINEAGE),
        ("/api/execution-lineage/tangled-tree/6e89/p", LINEAGE),
        ("/lineage/12", LINEAGE),
        ("/api/display_lineage", LINEAGE),
        ("/api/v1/lineage/artifacts/12", LINEAGE),
        ("/api/v1/lineage/executions/u", LINEAGE),
        ("/v1/mlmd/push", METADATA),
        ("/v1/pipelines/p/stages", METADATA),
        ("/api/register-server", METADATA),
        ("/schedule-sync/logs/1", METADATA),
    ],
)
def test_route_table_resolves_paths_to_services(path: str, service: str | None) -> None:
    assert default_table().resolve(path) == service


def _cmf_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every documented route outside /api/ (and upstream's /v1/)."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if not path.startswith(("/api/", "/v1/"))
        for method in operations
    ]


async def test_every_cmf_route_answers_at_both_path_forms(
    gateway_client: httpx.AsyncClient, metadata_app: FastAPI
) -> None:
    routes = _cmf_routes(metadata_app)
    assert routes, "the metadata app has CMF routes"
    documented = set(metadata_app.openapi()["paths"])
    assert {f"/api{path}" for _, path in routes} == {
        p for p in documented if p.startswith("/api/") and not p.startswith("/api/v1/")
    }
    for method, template in routes:
        path = template.replace("{pipeline_name}", "NoSuch")
        plain = await gateway_client.request(method, path, json={})
        prefixed = await gateway_client.request(method, f"/api{path}", json={})
        assert plain.status_code == prefixed.status_code, (method, path)
        assert plain.content == prefixed.content, (method, path)
        assert plain.status_code != 404 or plain.json().get("detail", "").startswith("Pipeline"), (
            method,
            path,
            plain.text,
        )


async def test_health_reports_each_part_and_disables_what_is_not_configured(
    gateway_client: httpx.AsyncClient,
) -> None:
    answer = await gateway_client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert {body["checks"][p]["status"] for p in ("neo4j", "kafka", "redis", "storage")} == {
        "disabled"
    }
    one = await gateway_client.get("/health/neo4j")
    assert one.status_code == 200 and one.json()["status"] == "disabled"
    assert (await gateway_client.get("/health/nothing")).status_code == 404


async def test_liveness_and_metrics_answer_without_dependencies(
    gateway_client: httpx.AsyncClient,
) -> None:
    assert (await gateway_client.get("/livez")).json() == {"status": "ok"}
    metrics = await gateway_client.get("/metrics")
    assert metrics.status_code == 200 and "cmf_http_requests_total" in metrics.text
