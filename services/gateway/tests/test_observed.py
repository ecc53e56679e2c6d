"""Every request the gateway answers is observed once, whoever answers it: a route a service
answers in-process (the embedded server) is counted under its full template, and a request the
access layer refuses (no token, a wrong one, a scope too small, a rate limit, a body too large)
carries an ``X-Request-ID``, is counted in ``cmf_http_requests_total`` under its route's
template and is logged as an ``http.request`` line. Read off ``/metrics`` as Prometheus scrapes
it. (The HTTP transport of distributed mode: ``test_proxy.py``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from auth_support import AuthGateway, auth_gateway, auth_settings
from gateway_apps import counted
from pydantic import SecretStr

from cmf_common.service import install_state
from cmf_gateway.app import create_gateway
from cmf_gateway.routing import METADATA
from cmf_gateway.settings import GatewaySettings
from cmf_metadata.api.deps import MetadataState
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings

PIPELINES = "/api/native/v1/pipelines"


async def scraped(client: httpx.AsyncClient) -> str:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    return answer.text


@pytest.fixture
async def embedded(
    single_connection_pool: Any, fresh_database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded server's gateway over the metadata service, in-process."""
    settings = MetadataSettings(database_url=SecretStr(fresh_database_url))
    service = create_metadata(settings)
    install_state(service.app, MetadataState.on(settings, single_connection_pool))
    gateway = create_gateway(GatewaySettings(), {METADATA: service})
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (f"{PIPELINES}?limit=5", PIPELINES),
        ("/api/native/v1/executions/0", "/api/native/v1/executions/{execution_id}"),
        ("/executions?limit=0", "/executions"),
        ("/api/executions?limit=0", "/api/executions"),
        ("/api/v1/pipelines/p/stages", "/api/v1/pipelines/{pipeline_name}/stages"),
    ],
)
async def test_a_route_answered_in_process_is_counted_under_its_full_template(
    embedded: httpx.AsyncClient, path: str, template: str
) -> None:
    before = await scraped(embedded)
    answer = await embedded.get(path)
    after = await scraped(embedded)
    labels = {"service": METADATA, "route": template, "status": str(answer.status_code)}
    assert counted(after, **labels) == counted(before, **labels) + 1, answer.text
    assert counted(after, route="unmatched") == counted(before, route="unmatched")


@pytest.fixture(scope="module")
async def guarded(fresh_database_url: str) -> AsyncIterator[AuthGateway]:
    settings = auth_settings(
        fresh_database_url,
        rate_limit_address_rps=0,
        rate_limit_token_rps=0.01,
        rate_limit_token_burst=1,
        max_query_body_bytes=1024,
    )
    async with auth_gateway(settings) as started:
        yield started


async def _refused(
    guarded: AuthGateway, method: str, path: str, status: int, **request: Any
) -> httpx.Response:
    """Send the request; assert the access layer refused it with ``status``, with a request
    id, counted once under the route's template and logged, and that no service saw it."""
    rules = guarded.gateway.access.rules if guarded.gateway.access else None
    assert rules is not None
    route = rules.rule(method, path.split("?")[0]).route
    assert route is not None
    labels = {"service": "gateway", "route": route, "status": str(status), "method": method}
    before, seen = await scraped(guarded.client), len(guarded.recorder.seen)
    with structlog.testing.capture_logs() as logs:
        answer = await guarded.client.request(method, path, **request)
    after = await scraped(guarded.client)
    assert answer.status_code == status, answer.text
    assert len(answer.headers.get_list("x-request-id")) == 1
    assert counted(after, **labels) == counted(before, **labels) + 1, labels
    lines = [e for e in logs if e["event"] == "http.request"]
    assert [(e["status"], e["route"]) for e in lines] == [(status, route)]
    assert len(guarded.recorder.seen) == seen
    return answer


async def test_a_request_without_a_token_is_observed_as_refused(guarded: AuthGateway) -> None:
    await _refused(guarded, "GET", f"{PIPELINES}?limit=5", 401)


async def test_a_refusal_keeps_the_clients_request_id(guarded: AuthGateway) -> None:
    answer = await _refused(
        guarded, "GET", "/api/mlmd_pull/p", 401, headers={"X-Request-ID": "theirs-7"}
    )
    assert answer.headers["x-request-id"] == "theirs-7"


async def test_a_wrong_token_and_a_scope_too_small_are_observed(guarded: AuthGateway) -> None:
    await _refused(guarded, "GET", PIPELINES, 401, headers={"Authorization": "Bearer not-a-token"})
    token, _ = await guarded.store.create("test-observed-read", "read")
    await _refused(
        guarded,
        "POST",
        "/api/mlmd_push",
        403,
        json={"json_payload": "{}"},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_rate_limited_request_is_observed(guarded: AuthGateway) -> None:
    token, _ = await guarded.store.create("test-observed-limited", "read")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await guarded.client.get(PIPELINES, headers=headers)).status_code == 200
    answer = await _refused(guarded, "GET", PIPELINES, 429, headers=headers)
    assert "retry-after" in answer.headers


async def test_a_body_over_the_gateways_limit_is_observed(guarded: AuthGateway) -> None:
    token, _ = await guarded.store.create("test-observed-body", "read")
    await _refused(
        guarded,
        "POST",
        "/api/mlmd_pull",
        413,
        content=b"{" + b" " * 4096 + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
