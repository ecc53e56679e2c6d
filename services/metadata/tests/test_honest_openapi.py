"""What schemathesis found against the metadata routes (issue 12 item 12), one test each: the
server's answers, fixed to be what /openapi.json says they are."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI


async def test_a_nul_in_a_v1_stage_body_is_a_422_not_a_database_error(
    client: httpx.AsyncClient, push_body: dict[str, Any]
) -> None:
    assert (await client.post("/api/mlmd_push", json=push_body)).status_code == 200
    answer = await client.post(
        "/v1/pipelines/Test-env/stages/Test-env%2FPrepare/executions",
        json={"filter_value": "a\x00b"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "filter_value"


async def test_a_boolean_last_sync_time_is_refused_not_read_as_0(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/api/mlmd_pull", "/v1/mlmd/pull"):
        answer = await client.post(path, json={"last_sync_time": False})
        assert answer.status_code == 422, (path, answer.text)


async def test_a_405_allows_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    """GET and POST /python-env are two routes; the 405 names both (Starlette: the first's)."""
    for path in ("/python-env", "/api/python-env", "/v1/python-env"):
        answer = await client.delete(path)
        assert answer.status_code == 405
        assert set(answer.headers["allow"].split(", ")) >= {"GET", "POST"}, path


def test_every_error_a_route_declares_has_its_dialect_body(app: FastAPI) -> None:
    spec = app.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert response.get("content"), (method, path, status)
            content = operation["responses"].get("422", {}).get("content", {})
            if path.startswith("/api/native/v1/"):
                assert "application/problem+json" in content, path


def test_parameters_say_what_the_edge_refuses(app: FastAPI) -> None:
    """No NUL in a string, an integer within int64, never JSON's null (cmf_common.parameters)."""
    spec = app.openapi()
    parameters = [
        p
        for operations in spec["paths"].values()
        for o in operations.values()
        for p in o.get("parameters", ())
    ]
    assert parameters
    for parameter in parameters:
        schema = parameter["schema"]
        assert all(o.get("type") != "null" for o in schema.get("anyOf", ())), parameter
        if parameter["in"] in ("path", "query") and schema.get("type") == "string":
            assert "pattern" in schema or "enum" in schema, parameter
        if schema.get("type") == "integer":
            assert schema["maximum"] <= 2**63 - 1, parameter
