"""The v1 paths as a whole: unknown paths and methods enveloped, Metahub's routes served in
both generations' shapes, and the gateway handing /v1/ to the metadata service."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from upstream_support import failed

from cmf_common.prefixes import UPSTREAM_V1
from cmf_common.service import Service
from cmf_gateway.app import create_gateway
from cmf_gateway.routing import METADATA
from cmf_gateway.settings import GatewaySettings
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.api.upstream import include_upstream_v1

V1_ROUTES = (
    ("POST", "/acknowledge"),
    ("POST", "/servers/register"),
    ("POST", "/servers/sync"),
    ("GET", "/servers"),
    ("GET", "/servers/{server_id}/completed-logs"),
    ("POST", "/schedules"),
    ("GET", "/schedules"),
    ("GET", "/schedules/{schedule_id}/logs"),
    ("DELETE", "/schedules/{schedule_id}"),
)
REFERENCE_ROUTES = (
    ("POST", "/register-server"),
    ("POST", "/acknowledge"),
    ("POST", "/sync"),
    ("GET", "/server-list"),
    ("POST", "/schedule-sync"),
    ("GET", "/schedules"),
    ("GET", "/schedule-sync/logs/{schedule_id}"),
    ("DELETE", "/schedule-sync/{schedule_id}"),
    ("GET", "/server/{server_id}/completed-logs"),
)


@pytest.mark.parametrize("prefix", UPSTREAM_V1)
async def test_an_unknown_v1_path_is_an_enveloped_404(
    client: httpx.AsyncClient, prefix: str
) -> None:
    failed(await client.get(f"{prefix}/no-such-route"), 404, "Not Found")
    failed(await client.get(f"{prefix}/pipelines/p/no/such"), 404, "Not Found")
    failed(await client.get(f"{prefix}/executions"), 404, "Not Found")  # ours moved out
    failed(await client.get(prefix), 404, "Not Found")
    failed(await client.get(f"{prefix}/"), 404, "Not Found")


@pytest.mark.parametrize("prefix", UPSTREAM_V1)
async def test_a_wrong_method_on_a_v1_path_is_an_enveloped_405(
    client: httpx.AsyncClient, prefix: str
) -> None:
    answer = await client.get(f"{prefix}/mlmd/push")
    failed(answer, 405, "Method Not Allowed")
    assert answer.headers["allow"] == "POST"


async def test_the_lineage_routes_are_not_served_here(client: httpx.AsyncClient) -> None:
    failed(await client.get("/v1/pipelines/p/artifacts/lineage"), 404)
    failed(await client.get("/v1/pipelines/p/hierarchical-lineage"), 404)


async def test_errors_outside_v1_keep_their_own_shapes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/no-such-route")).json() == {"detail": "Not Found"}
    answer = await client.get("/api/native/v1/executions", params={"limit": 0})
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/native/v1/nothing")).json()["code"] == "http_404"


def _concrete(template: str) -> str:
    return template.replace("{server_id}", "1").replace("{schedule_id}", "1")


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
async def test_v1_metahub_routes_answer_envelopes(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """An empty body is a 422 envelope; a route without one answers (the rest: test_metahub)."""
    answer = await client.request(method, f"/v1{_concrete(path)}", json={})
    assert answer.status_code in (200, 404, 422), answer.text
    assert answer.json()["status"] == ("success" if answer.status_code == 200 else "error")


@pytest.mark.parametrize(("method", "path"), REFERENCE_ROUTES)
@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_reference_metahub_routes_answer_in_the_reference_shape(
    client: httpx.AsyncClient, method: str, path: str, prefix: str
) -> None:
    answer = await client.request(method, f"{prefix}{_concrete(path)}", json={})
    assert answer.status_code in (200, 404, 422), answer.text
    if answer.status_code != 200:
        assert "detail" in answer.json()


async def test_the_gateway_hands_v1_paths_to_the_metadata_service(
    service: Service[MetadataState],
) -> None:
    gateway = create_gateway(GatewaySettings(), {METADATA: service})
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        answer = await http.get("/v1/pipelines")
        assert answer.status_code == 200 and answer.json()["status"] == "success"
        failed(await http.get("/v1/no-such-route"), 404)
        assert (await http.post("/api/acknowledge", json={})).status_code == 422


async def test_the_routers_mount_at_another_prefix_with_one_call(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """One more prefix, as /api/v1 took them: same answers, each prefix enveloped alone."""
    include_upstream_v1(app, prefixes=("/probe/v1",))
    ours = await client.get("/probe/v1/pipelines")
    assert ours.json()["data"] == (await client.get("/v1/pipelines")).json()["data"]
    failed(await client.get("/probe/v1/no-such-route"), 404, "Not Found")
    failed(await client.get("/v1/no-such-route"), 404, "Not Found")


def test_openapi_documents_the_envelope_on_every_v1_route(app: FastAPI) -> None:
    raw = {("/v1/mlmd/pull", "post", "200"), ("/v1/python-env/download", "get", "200")}
    paths = {p: ops for p, ops in app.openapi()["paths"].items() if p.startswith("/v1/")}
    assert len(paths) >= 25
    for path, operations in paths.items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if (path, method, status) in raw:
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Envelope"}, (path, method, status)
