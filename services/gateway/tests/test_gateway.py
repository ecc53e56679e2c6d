"""The gateway: its route table (one, read off the services' routers: every route has exactly
one owner, every CMF and seed route answers at /x and /api/x, a path no route matches takes its
prefix owner's error dialect), both path forms of every CMF route, and /health."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from gateway_apps import counted
from pydantic import SecretStr

from cmf_common.dialects import PROBLEM, REFERENCE, Dialect, RouteTable, served_routes
from cmf_common.envelope import ENVELOPE
from cmf_common.prefixes import NATIVE_V1, UPSTREAM_V1
from cmf_common.service import Service, install_state
from cmf_gateway.app import create_gateway
from cmf_gateway.routing import LINEAGE, METADATA, route_table
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.api import explorer as lineage_explorer
from cmf_lineage.api import lineage as lineage_routes
from cmf_lineage.app import create_app as create_lineage_app
from cmf_lineage.settings import LineageSettings
from cmf_metadata.api import native as metadata_native
from cmf_metadata.api import views as metadata_views
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import create_app as create_metadata_app
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings

NATIVE = f"{NATIVE_V1}/"  # our own API: only under /api/native/v1
UPSTREAM = tuple(f"{prefix}/" for prefix in UPSTREAM_V1)  # upstream's v1: /v1/ and /api/v1/
VERSIONED = (NATIVE, "/api/v1/")  # the versioned generations under /api/ (not CMF's /api/x)


@pytest.fixture(scope="session")
def service_apps() -> dict[str, FastAPI]:
    """Every service's app, not started: their routes are all the table needs."""
    return {
        METADATA: create_metadata_app(MetadataSettings()),
        LINEAGE: create_lineage_app(LineageSettings()),
    }


@pytest.fixture(scope="session")
def table(service_apps: dict[str, FastAPI]) -> RouteTable:
    """The gateway's table, as ``cmf-server up`` builds it."""
    return route_table(service_apps)


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
        ("/api/native/v1/unknown", None),
        ("/api/native/v1/executions", METADATA),
        ("/executions-by-stage/p", METADATA),
        ("/artifact-lineage/tangled-tree/p", LINEAGE),
        ("/api/artifact-execution-lineage/tangled-tree/p", LINEAGE),
        ("/api/execution-lineage/tangled-tree/6e89/p", LINEAGE),
        ("/lineage/12", LINEAGE),
        ("/api/display_lineage", LINEAGE),
        ("/api/native/v1/lineage/artifacts/12", LINEAGE),
        ("/api/native/v1/lineage/executions/u", LINEAGE),
        ("/v1/mlmd/push", METADATA),
        ("/v1/pipelines/p/stages", METADATA),
        ("/v1/pipelines/p/executions/u/lineage", LINEAGE),
        ("/v1/pipelines/p/hierarchical-lineage", LINEAGE),
        ("/v1/artifacts/types", METADATA),
        ("/v1/artifacts/name/a/b.csv:12/ancestors", LINEAGE),
        ("/v1/artifacts/name/a/b.csv:12", LINEAGE),
        ("/v1/executions/id/3/parents/ids", LINEAGE),
        ("/v1/pipelines/names", METADATA),  # CMFQuery's table questions: the metadata's
        ("/v1/pipelines/sync/0/json", METADATA),
        ("/v1/artifacts", METADATA),
        ("/v1/artifacts/p", METADATA),
        ("/v1/artifacts/metrics/a/b:1", METADATA),
        ("/v1/artifacts/batch-get", METADATA),
        ("/v1/executions/stages/name/p/s/list", METADATA),
        ("/v1/executions/stages/id/3", METADATA),
        ("/api/v1/executions/batch-summary", METADATA),
        ("/api/v1/mlmd/push", METADATA),
        ("/api/v1/pipelines/p/stages", METADATA),
        ("/api/v1/pipelines/p/artifacts/lineage", LINEAGE),
        ("/api/register-server", METADATA),
        ("/schedule-sync/logs/1", METADATA),
    ],
)
def test_route_table_resolves_paths_to_services(
    table: RouteTable, path: str, service: str | None
) -> None:
    assert table.resolve(path) == service


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
        p for p in documented if p.startswith("/api/") and not p.startswith(VERSIONED)
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


@pytest.mark.parametrize(
    ("method", "path", "status", "shape"),
    [
        ("GET", "/api/native/v1/nothing", 404, "problem"),
        ("GET", "/api/v1/nothing", 404, "envelope"),
        ("GET", "/api/v1", 404, "envelope"),
        ("GET", "/nothing", 404, "reference"),
        ("GET", "/api/nothing", 404, "reference"),
        ("GET", "/mlmd_push", 405, "reference"),
        ("GET", "/executions-by-stage/p", 422, "reference"),
        ("GET", "/executions?limit=0", 422, "problem"),
        ("GET", "/api/native/v1/executions/0", 422, "problem"),
        ("POST", "/api/native/v1/executions", 405, "problem"),
        ("GET", "/v1/nothing", 404, "envelope"),
        ("GET", "/v1/mlmd/push", 405, "envelope"),
        ("GET", "/api/v1/mlmd/push", 405, "envelope"),
        ("POST", "/api/v1/pipelines", 405, "envelope"),
    ],
)
async def test_errors_answer_in_the_dialect_of_their_route_or_prefix_owner(
    gateway_client: httpx.AsyncClient, method: str, path: str, status: int, shape: str
) -> None:
    answer = await gateway_client.request(method, path)
    assert answer.status_code == status, answer.text
    body = answer.json()
    if shape == "problem":
        assert answer.headers["content-type"] == "application/problem+json"
        assert body["status"] == status and "code" in body
    elif shape == "envelope":
        assert body["status"] == "error" and body["code"] == status and "meta" in body
    else:
        assert answer.headers["content-type"] == "application/json"
        assert "detail" in body and "code" not in body
        if status == 422:
            assert body["status"] == "invalid_request"


# Each process's own routes, which no dialect owns and the gateway does not route.
PROCESS_ROUTES = {"/livez", "/readyz", "/metrics"}


def _sample(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", template)


def test_every_api_route_declares_a_dialect(service_apps: dict[str, FastAPI]) -> None:
    for name, app in service_apps.items():
        undeclared = {
            e.path
            for e in served_routes(name, app.routes)
            if isinstance(e.route, APIRoute) and e.dialect is None
        }
        assert undeclared <= PROCESS_ROUTES, undeclared


def test_every_route_has_exactly_one_owner(
    service_apps: dict[str, FastAPI], table: RouteTable
) -> None:
    owners: dict[tuple[str, str], set[str]] = {}
    for entry in table.entries:
        for method in entry.methods:
            owners.setdefault((method, entry.path), set()).add(entry.owner)
    assert owners and all(len(o) == 1 for o in owners.values()), owners
    for name, app in service_apps.items():
        for entry in served_routes(name, app.routes):
            if entry.dialect is not None:
                assert table.resolve(_sample(entry.path)) == name, entry.path


def test_every_cmf_and_seed_route_answers_at_both_path_forms(
    service_apps: dict[str, FastAPI],
) -> None:
    for name, app in service_apps.items():
        routes = {
            (method, e.path, e.dialect)
            for e in served_routes(name, app.routes)
            if e.dialect in (REFERENCE, PROBLEM)
            for method in e.methods
        }
        plain = {(m, p, d) for m, p, d in routes if not p.startswith("/api/")}
        prefixed = {(m, p, d) for m, p, d in routes if p.startswith("/api/")}
        assert plain, name
        assert {(m, f"/api{p}", d) for m, p, d in plain} == {
            r for r in prefixed if not r[1].startswith(NATIVE)
        }


@pytest.mark.parametrize(
    ("path", "owner", "dialect"),
    [
        ("/api/native/v1/nothing", None, PROBLEM),  # our own API: problem+json
        ("/api/native/v1", None, PROBLEM),
        ("/api/nothing", None, REFERENCE),  # the /api routes disagree: the default
        ("/nothing", None, REFERENCE),
        ("/health/nothing", None, REFERENCE),
        ("/pipelines/p/more", METADATA, REFERENCE),
        ("/executions/p/more", METADATA, REFERENCE),  # /executions (seed) and the legacy one
        ("/api/native/v1/executions/1/more", METADATA, PROBLEM),
        ("/lineage/12/more", LINEAGE, PROBLEM),
        ("/api/native/v1/lineage/nothing", LINEAGE, PROBLEM),
        ("/artifact-lineage/nothing", LINEAGE, REFERENCE),
        # /v1 routes are the metadata's and the lineage's: the gateway answers, in the envelope.
        ("/v1/nothing", None, ENVELOPE),
        ("/v1", None, ENVELOPE),
        ("/v1/pipelines/p/hierarchical-lineage", LINEAGE, ENVELOPE),
        ("/v1/pipelines/p/executions/list", METADATA, ENVELOPE),
        ("/api/v1/nothing", None, ENVELOPE),  # the same at upstream's public prefix
        ("/api/v1", None, ENVELOPE),
        ("/api/v1/pipelines/p/hierarchical-lineage", LINEAGE, ENVELOPE),
        ("/api/v1/pipelines/p/executions/list", METADATA, ENVELOPE),
    ],
)
def test_a_path_without_a_route_takes_its_prefix_owner(
    table: RouteTable, path: str, owner: str | None, dialect: Dialect
) -> None:
    assert table.resolve(path) == owner
    assert table.dialect_of(path) is dialect


UI_ORIGIN = "http://ui.example:8000"


@pytest.fixture
async def cors_client(metadata: Service[MetadataState]) -> AsyncIterator[httpx.AsyncClient]:
    gateway = create_gateway(GatewaySettings(cors_origins=f" {UI_ORIGIN}/ ,"), {METADATA: metadata})
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


async def test_a_preflight_from_an_allowed_origin_is_answered(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.options("/api/mlmd_pull", headers=preflight(UI_ORIGIN))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"].lower()


async def test_a_preflight_is_counted_under_its_route(cors_client: httpx.AsyncClient) -> None:
    labels = {"service": "gateway", "route": "/api/mlmd_pull", "method": "OPTIONS"}
    before = (await cors_client.get("/metrics")).text
    answer = await cors_client.options("/api/mlmd_pull", headers=preflight(UI_ORIGIN))
    assert answer.status_code == 200
    assert len(answer.headers.get_list("x-request-id")) == 1
    after = (await cors_client.get("/metrics")).text
    assert counted(after, **labels, status="200") == counted(before, **labels, status="200") + 1


async def test_a_preflight_from_another_origin_is_refused(cors_client: httpx.AsyncClient) -> None:
    answer = await cors_client.options("/api/mlmd_pull", headers=preflight("http://evil.example"))
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers


async def test_a_request_from_an_allowed_origin_may_be_read_by_its_page(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.get("/api/pipelines", headers={"Origin": UI_ORIGIN})
    # The database may hold other gateway tests' pipelines: what matters is the CORS answer.
    assert answer.status_code == 200 and isinstance(answer.json(), list)
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "X-CMF-Consistency-Token" in answer.headers["access-control-expose-headers"]


async def test_a_request_from_another_origin_gets_no_cors_headers(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.get("/api/pipelines", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 200  # answered, but the browser keeps it from the page
    assert "access-control-allow-origin" not in answer.headers


async def test_without_cors_origins_no_other_origin_is_allowed(
    gateway_client: httpx.AsyncClient,
) -> None:
    answer = await gateway_client.get("/api/pipelines", headers={"Origin": UI_ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


# ---- the three generations under /api/ never share a path (docs/api.md) --------------------

NATIVE_ENDPOINTS = {
    route.endpoint
    for route in (
        *metadata_native.router.routes,
        *metadata_views.router.routes,
        *lineage_routes.v1.routes,
        *lineage_explorer.router.routes,
    )
    if isinstance(route, APIRoute)
}


def test_nothing_of_ours_answers_under_an_upstream_prefix(
    service_apps: dict[str, FastAPI],
) -> None:
    for name, app in service_apps.items():
        for entry in served_routes(name, app.routes):
            if entry.path.startswith(UPSTREAM) or entry.path in UPSTREAM_V1:
                assert entry.dialect is ENVELOPE, (name, entry.path)


def test_every_native_route_is_under_api_native_v1_and_only_there(
    service_apps: dict[str, FastAPI],
) -> None:
    served = set()
    for name, app in service_apps.items():
        for entry in served_routes(name, app.routes):
            endpoint = entry.route.endpoint if isinstance(entry.route, APIRoute) else None
            assert (endpoint in NATIVE_ENDPOINTS) == entry.path.startswith(NATIVE), entry.path
            if entry.path.startswith(NATIVE):
                assert entry.dialect is PROBLEM, entry.path
                served.add(endpoint)
    assert served == NATIVE_ENDPOINTS


def test_every_upstream_route_is_served_at_both_prefixes(
    service_apps: dict[str, FastAPI],
) -> None:
    for name, app in service_apps.items():
        upstream = {
            (method, e.path)
            for e in served_routes(name, app.routes)
            if e.dialect is ENVELOPE
            for method in e.methods
        }
        by_prefix = [
            {(m, p.removeprefix(prefix)) for m, p in upstream if p.startswith(f"{prefix}/")}
            for prefix in UPSTREAM_V1
        ]
        assert sum(map(len, by_prefix)) == len(upstream), name
        assert all(routes == by_prefix[0] for routes in by_prefix), name
        assert by_prefix[0] or name != METADATA, "the metadata service serves upstream's v1"


def _without_time(answer: httpx.Response) -> object:
    try:
        body = answer.json()
    except ValueError:
        return answer.content
    if isinstance(body, dict) and isinstance(body.get("meta"), dict):
        body["meta"].pop("timestamp", None)
    return body


async def test_every_upstream_route_answers_alike_at_v1_and_api_v1(
    gateway_client: httpx.AsyncClient, metadata_app: FastAPI
) -> None:
    routes = [
        (method, e.path.removeprefix("/v1"))
        for e in served_routes(METADATA, metadata_app.routes)
        if e.dialect is ENVELOPE and e.path.startswith("/v1/")
        for method in e.methods
    ]
    assert routes
    for method, template in routes:
        path = _sample(template)
        plain = await gateway_client.request(method, f"/v1{path}", json={})
        public = await gateway_client.request(method, f"/api/v1{path}", json={})
        assert plain.status_code == public.status_code, (method, path, public.text)
        assert _without_time(plain) == _without_time(public), (method, path)
        assert public.status_code != 405, (method, path)
        assert public.status_code != 404 or public.json()["message"] != "Not Found", (method, path)
