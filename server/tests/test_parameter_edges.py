"""Every path and query parameter of every route of the embedded server, sent a NUL byte, an
overlong value, an integer beyond int64 and a value of the wrong type, is a 4xx, never a 5xx
(issue 12 item 9). The routes come from each service's own OpenAPI, so a new route is walked
without this test changing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from pydantic import SecretStr

from cmf_gateway.app import Gateway
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.settings import LineageSettings
from cmf_metadata.settings import MetadataSettings
from cmf_server.embedded import embedded_server
from cmf_testing.fixtures import cmf_fixture

BAD_VALUES = {
    "nul": "a\x00b",
    "overlong": "x" * 10_000,
    "beyond_int64": str(2**63),
    "below_int64": str(-(2**63) - 1),
    "wrong_type": "not-a-number[]",
}
PIPELINE = "Test-env"


@pytest.fixture
async def gateway(
    make_database_url: Callable[[], str], tmp_path: Path
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    url = SecretStr(make_database_url())
    server = embedded_server(
        GatewaySettings(database_url=url, kafka_bootstrap_servers=None),
        MetadataSettings(database_url=url, files_dir=tmp_path / "files"),
        LineageSettings(database_url=url, neo4j_uri=None, redis_url=None),
    )
    transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
    async with (
        server.own.router.lifespan_context(server.own),
        httpx.AsyncClient(transport=transport, base_url="http://cmf") as client,
    ):
        answer = await client.post("/api/mlmd_push", json=cmf_fixture("push_example.json"))
        assert answer.json()["status"] == "success"
        yield server, client


def _schema_type(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") == "array":
            return str(option.get("items", {}).get("type", "string"))
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _good(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if "default" in schema and schema["default"] is not None:
        return (
            str(schema["default"]).lower()
            if isinstance(schema["default"], bool)
            else str(schema["default"])
        )
    if "enum" in schema:
        return str(schema["enum"][0])
    return {"integer": "1", "number": "1", "boolean": "true"}.get(_schema_type(parameter), PIPELINE)


def _calls(server: Gateway) -> list[tuple[str, str, str, str, str]]:
    """(method, path template, parameter, kind of bad value, URL) for every pair."""
    calls = []
    for service in server.services.values():
        spec = service.openapi()  # type: ignore[attr-defined]
        for template, operations in spec["paths"].items():
            for method, operation in operations.items():
                parameters = [
                    p for p in operation.get("parameters", []) if p["in"] in ("path", "query")
                ]
                for target in parameters:
                    for kind, bad in BAD_VALUES.items():
                        path, query = template, {}
                        for p in parameters:
                            value = bad if p is target else _good(p)
                            if p["in"] == "path":
                                path = path.replace("{" + p["name"] + "}", quote(value, safe=""))
                            elif p is target or p.get("required"):
                                query[p["name"]] = value
                        url = path + ("?" + urlencode(query) if query else "")
                        calls.append((method.upper(), template, target["name"], kind, url))
    return calls


async def _stored(client: httpx.AsyncClient) -> list[Any]:
    """What the server holds, as its listings say: pipelines, artifacts, executions."""
    held = []
    for path in (
        "/api/native/v1/pipelines",
        "/api/native/v1/artifacts?limit=1000",
        "/api/native/v1/executions?limit=1000",
    ):
        answer = await client.get(path)
        assert answer.status_code == 200, answer.text
        held.append(answer.json()["items"])
    return held


async def test_no_parameter_value_gets_a_5xx(gateway: tuple[Gateway, httpx.AsyncClient]) -> None:
    server, client = gateway
    calls = _calls(server)
    assert len(calls) > 100
    before = await _stored(client)
    failures = []
    for method, template, name, kind, url in calls:
        answer = await client.request(method, url)
        if answer.status_code >= 500:
            failures.append(f"{method} {template} {name}={kind}: {answer.status_code}")
    assert not failures, "\n".join(failures)
    assert await _stored(client) == before, "a refused request stored something"


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("/api/pipeline-stages/a%00b", "cmf"),
        ("/api/native/v1/lineage/artifacts/9223372036854775808", "problem"),
        ("/v1/pipelines/a%00b/stages", "envelope"),
        ("/api/v1/pipelines/a%00b/stages", "envelope"),
    ],
)
async def test_a_refused_parameter_answers_in_the_route_dialect(
    gateway: tuple[Gateway, httpx.AsyncClient], url: str, dialect: str
) -> None:
    _, client = gateway
    answer = await client.get(url)
    assert answer.status_code == 422
    content_type = answer.headers["content-type"]
    if dialect == "problem":
        assert content_type == "application/problem+json"
    elif dialect == "envelope":
        assert answer.json()["status"] == "error"
    else:
        assert content_type == "application/json"
