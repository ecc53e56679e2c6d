"""Distributed mode's gateway: one route table, two transports. Every route of the merged
OpenAPI has exactly one upstream, the service that documents it, the same one the embedded
server hands it to, in all three API dialects; and /health is gathered from the processes'
/readyz, each part with its latency."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from gateway_apps import every_app

from cmf_common.prefixes import NATIVE_V1
from cmf_gateway.app import Gateway
from cmf_gateway.distributed import (
    PROCESS_PARTS,
    create_distributed_gateway,
    gather_health,
    url_setting,
)
from cmf_gateway.routing import ARTIFACTS, LINEAGE, METADATA, route_table
from cmf_gateway.settings import GatewaySettings
from cmf_server import topology

URLS = {
    METADATA: "http://metadata:8081",
    LINEAGE: "http://lineage:8082",
    ARTIFACTS: "http://artifacts:8083",
}
GATEWAY_OWN = {
    *("/health", "/health/{part}", "/api/health", "/api/health/{part}"),
    *("/api/native/v1/tokens", "/api/native/v1/tokens/{token_id}"),  # cmf_gateway.auth
}


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    """The services' apps, built and never started: the gateway's table."""
    return every_app()


@pytest.fixture(scope="module")
def gateway(apps: dict[str, FastAPI]) -> Gateway:
    settings = GatewaySettings(
        metadata_url=URLS[METADATA],
        lineage_url=URLS[LINEAGE],
        artifacts_url=URLS[ARTIFACTS],
        auth="off-i-know",  # routing, not access (services/gateway/tests/test_auth_*.py)
    )
    return create_distributed_gateway(settings, apps)


def concrete(template: str) -> str:
    """A path the route ``template`` matches: each parameter a plain value."""
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "seg/ment" if m.group(1) else "value1", template)


def documented_by(apps: dict[str, FastAPI]) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for name, app in apps.items():
        for path in app.openapi()["paths"]:
            owners.setdefault(path, set()).add(name)
    return owners


def test_every_route_of_the_merged_openapi_has_exactly_one_upstream(
    gateway: Gateway, apps: dict[str, FastAPI]
) -> None:
    merged = gateway.own.openapi()["paths"]
    documenting = documented_by(apps)
    embedded = route_table(apps)
    assert set(merged) - GATEWAY_OWN, "the merged document lists the services' routes"
    for template in set(merged) - GATEWAY_OWN:
        path = concrete(template)
        target = gateway.target(path)
        assert target is not None, template
        assert target in documenting[template], (template, target)
        # The same owner as the embedded server's (the same table, another transport).
        assert embedded.resolve(path) == target, template
        upstream = gateway.services[target]
        assert upstream is not apps[target], "distributed mode forwards over HTTP"


def _short(path: str, prefix: str, but: str | None = None) -> str | None:
    """``path`` without ``/api`` when it starts with ``prefix`` (and not ``but``)."""
    if not path.startswith(prefix) or (but is not None and path.startswith(but)):
        return None
    return path.removeprefix("/api")


def test_each_dialect_answers_at_every_one_of_its_prefixes_through_one_upstream(
    gateway: Gateway,
) -> None:
    merged = set(gateway.own.openapi()["paths"]) - GATEWAY_OWN
    native = {p for p in merged if p.startswith(f"{NATIVE_V1}/")}
    upstream_v1 = {p: _short(p, "/api/v1/") for p in merged}
    cmf = {p: _short(p, "/api/", but="/api/v1/") for p in merged - native}
    pairs = [(long, short) for long, short in (*upstream_v1.items(), *cmf.items()) if short]
    assert native and any(upstream_v1.values()) and any(cmf.values())
    for long, short in pairs:
        assert short in merged, f"{long} is documented, {short} is not"
        assert gateway.target(concrete(long)) == gateway.target(concrete(short)), long
    for path in native:
        assert gateway.target(concrete(path)) is not None, path


def test_a_service_without_its_url_is_refused_at_start(apps: dict[str, FastAPI]) -> None:
    with pytest.raises(RuntimeError, match="ARTIFACTS_URL"):
        create_distributed_gateway(
            GatewaySettings(metadata_url=URLS[METADATA], lineage_url=URLS[LINEAGE]), apps
        )


def readyz(checks: dict[str, str], latency: float = 1.5) -> httpx.Response:
    body = {
        name: {"status": status, "latency_ms": latency if status == "ok" else None, "detail": None}
        for name, status in checks.items()
    }
    ready = all(s != "down" for s in checks.values())
    return httpx.Response(
        200 if ready else 503, json={"status": "ok" if ready else "down", "checks": body}
    )


PROCESSES = {
    "http://metadata": readyz({"database": "ok"}, 1.0),
    "http://lineage": readyz({"neo4j": "ok", "redis": "ok"}, 2.0),
    "http://artifacts": readyz({"database": "ok", "storage": "ok"}, 3.0),
    "http://relay": readyz({"database": "ok", "kafka": "ok", "loop": "ok"}, 4.0),
    "http://artifacts-relay": readyz({"database": "ok", "kafka": "ok", "loop": "ok"}, 2.5),
}


def client_of(answers: dict[str, httpx.Response]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}"
        if base not in answers:
            raise httpx.ConnectError("connection refused", request=request)
        assert request.url.path == "/readyz"
        return answers[base]

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def urls(*names: str) -> dict[str, str | None]:
    every = ("metadata", "lineage", "artifacts", "ui", "relay", "projector", "artifacts-relay")
    return {n: f"http://{n}" if n in names else None for n in every}


async def test_health_reports_each_part_from_the_processes_that_use_it() -> None:
    async with client_of(PROCESSES) as client:
        results = await gather_health(
            client, urls("metadata", "lineage", "artifacts", "relay", "artifacts-relay"), 1.0
        )
    status = {name: r.status for name, r in results.items()}
    assert status == {
        "database": "ok",
        "neo4j": "ok",
        "storage": "ok",
        "kafka": "ok",
        "redis": "ok",
        "loops": "ok",
        "metadata": "ok",
        "lineage": "ok",
        "artifacts": "ok",
        "ui": "disabled",
        "relay": "ok",
        "projector": "disabled",
        "artifacts-relay": "ok",
    }
    assert results["database"].latency_ms == 4.0  # the slowest of those that use it
    assert results["storage"].latency_ms == 3.0
    assert results["metadata"].latency_ms is not None


async def test_a_process_that_does_not_answer_is_down_with_the_parts_only_it_reports() -> None:
    answers = {k: v for k, v in PROCESSES.items() if k != "http://relay"}
    async with client_of(answers) as client:
        results = await gather_health(
            client, urls("metadata", "lineage", "artifacts", "relay"), 1.0
        )
    assert results["relay"].status == "down"
    assert results["kafka"].status == "down" and results["loops"].status == "down"
    assert "relay" in (results["kafka"].detail or "")
    assert results["database"].status == "ok"


def test_health_asks_every_process_the_topology_runs() -> None:
    others = set(topology.names()) - {topology.GATEWAY}
    assert set(PROCESS_PARTS) == others
    assert set(topology.process(topology.GATEWAY).calls) >= others
    gateway_settings = set(GatewaySettings.model_fields)
    for name in others:
        assert url_setting(name) == topology.url_setting(name)
        assert url_setting(name).lower() in gateway_settings, name


async def test_every_process_of_distributed_mode_is_a_part_disabled_without_its_url() -> None:
    async with client_of(PROCESSES) as client:
        results = await gather_health(client, urls("metadata"), 1.0)
    processes = {"metadata", "lineage", "artifacts", "ui", "relay", "projector", "artifacts-relay"}
    assert processes <= set(results)
    for name in processes - {"metadata"}:
        assert results[name].status == "disabled", name
    assert results["artifacts-relay"].detail == "ARTIFACTS_RELAY_URL is not set"


async def test_an_artifacts_relay_that_does_not_answer_takes_kafka_down() -> None:
    answers = {k: v for k, v in PROCESSES.items() if k != "http://artifacts-relay"}
    async with client_of(answers) as client:
        results = await gather_health(client, urls("metadata", "relay", "artifacts-relay"), 1.0)
    assert results["artifacts-relay"].status == "down"
    assert results["kafka"].status == "down" and results["loops"].status == "down"
    assert "artifacts-relay" in (results["kafka"].detail or "")


async def test_a_part_a_process_reports_down_is_down_and_names_it() -> None:
    answers = {**PROCESSES, "http://artifacts": readyz({"database": "ok", "storage": "down"})}
    async with client_of(answers) as client:
        results = await gather_health(client, urls("metadata", "artifacts"), 1.0)
    assert results["storage"].status == "down"
    assert results["artifacts"].status == "down"
    assert "storage" in (results["artifacts"].detail or "")
    assert results["neo4j"].status == "disabled" and results["kafka"].status == "disabled"
