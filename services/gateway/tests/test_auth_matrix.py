"""The auth matrix: every route of the gateway's table (every service's, in every dialect and
path form, and the gateway's own token routes) × no token, a wrong, an expired and a revoked
one, and a read, a write and an admin token. A request the scope allows reaches its service
with the signed principal of its token; every other is refused with 401 (``WWW-Authenticate``
offering Bearer and Basic) or 403, in the route's dialect. And every operation of the merged
OpenAPI says what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from auth_support import (
    SECRET,
    AuthGateway,
    Tokens,
    auth_gateway,
    auth_settings,
    body_shape,
    concrete,
    make_tokens,
    services,
)

from cmf_common.dialects import Entry
from cmf_common.principal import verify_principal
from cmf_gateway.app import create_gateway
from cmf_gateway.auth.scopes import (
    ADMINISTRATION,
    READ_POSTS,
    AccessTable,
    declared_path,
    is_public,
)
from cmf_gateway.settings import GatewaySettings

KINDS = ("none", "wrong", "expired", "revoked", "read", "write", "admin")
ALLOWED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}


@pytest.fixture(scope="module")
async def gateway(fresh_database_url: str) -> AsyncIterator[AuthGateway]:
    # No rate limit: the matrix sends a thousand requests from one address.
    settings = auth_settings(fresh_database_url, rate_limit_token_rps=0, rate_limit_address_rps=0)
    async with auth_gateway(settings) as started:
        yield started


@pytest.fixture(scope="module")
async def tokens(gateway: AuthGateway) -> Tokens:
    return await make_tokens(gateway.store)


def _rules(gateway: AuthGateway) -> AccessTable:
    assert gateway.gateway.access is not None and gateway.gateway.access.rules is not None
    return gateway.gateway.access.rules


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


async def test_every_route_by_every_credential(gateway: AuthGateway, tokens: Tokens) -> None:
    rules = _rules(gateway)
    entries = rules.entries
    assert {e.owner for e in entries} == {"metadata", "lineage", "artifacts", "gateway"}
    assert len(entries) > 100
    checked = 0
    for entry in entries:
        for method in sorted(entry.methods):
            path = concrete(entry.path)
            rule = rules.rule(method, path)
            if is_public(path):  # the CMF root, "/", which the gateway gives the UI
                assert path == "/", (method, entry.path)
                continue
            assert rule.scope in ("read", "write", "admin"), (method, entry.path)
            for kind in KINDS:
                await _check(gateway, tokens, entry, method, path, rule.scope, kind)
                checked += 1
    assert checked > 700


async def _check(
    gateway: AuthGateway,
    tokens: Tokens,
    entry: Entry,
    method: str,
    path: str,
    scope: str,
    kind: str,
) -> None:
    before = len(gateway.recorder.seen)
    body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
    answer = await gateway.client.request(
        method, path, headers=_headers(tokens.of(kind)), json=body
    )
    where = (method, path, kind, answer.status_code, answer.text[:200])
    if kind in ALLOWED and scope in ALLOWED[kind]:
        if entry.owner == "gateway":  # answered by the gateway itself, for real
            assert answer.status_code not in (401, 403), where
            return
        assert answer.status_code == 200, where
        assert len(gateway.recorder.seen) == before + 1, where
        principal = gateway.recorder.principal()
        assert principal is not None and principal.token_id == tokens.ids[kind], where
        assert principal.scopes == frozenset({kind}), where
        return
    assert len(gateway.recorder.seen) == before, where  # never reached a service
    status = 403 if kind in ALLOWED else 401
    assert answer.status_code == status, where
    if method != "HEAD":  # a HEAD's answer has no body
        assert body_shape(answer) is entry.dialect, where
    challenges = answer.headers.get_list("www-authenticate")
    if status == 401:
        assert [c.split()[0] for c in challenges] == ["Bearer", "Basic"], where
    else:
        assert challenges == ['Bearer realm="cmf", error="insufficient_scope"'], where


@pytest.mark.parametrize("kind", ["expired", "revoked", "wrong"])
async def test_why_a_token_is_refused_is_said(
    gateway: AuthGateway, tokens: Tokens, kind: str
) -> None:
    answer = await gateway.client.get("/api/native/v1/pipelines", headers=_headers(tokens.of(kind)))
    assert answer.status_code == 401
    expected = {"expired": "token expired", "revoked": "token revoked", "wrong": "unknown token"}
    assert answer.json()["detail"] == expected[kind]
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


async def test_no_token_asks_for_one_without_an_error_code(gateway: AuthGateway) -> None:
    answer = await gateway.client.get("/api/pipelines")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "a token is required"}
    assert answer.headers.get_list("www-authenticate") == [
        'Bearer realm="cmf"',
        'Basic realm="cmf", charset="UTF-8"',
    ]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer not-a-token",
        "Basic !!!",
        "Basic Y21m",  # "cmf": no colon
        "Token abc",
        "Bearer cmf_0123456789ab_" + "A" * 42,
    ],
)
async def test_malformed_authorization_is_a_401_in_each_dialect(
    gateway: AuthGateway, authorization: str
) -> None:
    for path, shape in (
        ("/api/pipelines", "detail"),
        ("/api/v1/pipelines", "envelope"),
        ("/api/native/v1/pipelines", "problem"),
    ):
        answer = await gateway.client.get(path, headers={"Authorization": authorization})
        assert answer.status_code == 401, (path, answer.text)
        body = answer.json()
        if shape == "problem":
            assert body["code"] == "unauthorized"
        elif shape == "envelope":
            assert body["status"] == "error" and body["code"] == 401
        else:
            assert set(body) == {"detail"}


async def test_basic_with_the_token_as_password_is_the_token(
    gateway: AuthGateway, tokens: Tokens
) -> None:
    for auth in (("cmf", tokens.write), (tokens.write, "")):
        answer = await gateway.client.post("/api/mlmd_push", json={}, auth=auth)
        assert answer.status_code == 200, answer.text
        principal = gateway.recorder.principal()
        assert principal is not None and principal.token_id == tokens.ids["write"]


async def test_a_principal_the_client_sends_never_reaches_a_service(
    gateway: AuthGateway, tokens: Tokens
) -> None:
    forged = "v1.eyJzdWIiOiJ4Iiwic2NwIjpbImFkbWluIl0sImV4cCI6OTk5OTk5OTk5OTl9.x"
    answer = await gateway.client.get(
        "/api/pipelines",
        headers={"X-CMF-Principal": forged, "Authorization": f"Bearer {tokens.prefixed}"},
    )
    assert answer.status_code == 200
    raw = gateway.recorder.seen[-1][2]
    assert raw is not None and raw.decode() != forged
    principal = verify_principal(raw.decode(), SECRET, now=0)
    assert principal.pipeline_prefix == "team-a/" and principal.scopes == frozenset({"read"})


async def test_public_paths_need_no_token(gateway: AuthGateway) -> None:
    for path in ("/livez", "/openapi.json", "/health/nothing", "/ui/"):
        answer = await gateway.client.get(path)
        assert answer.status_code not in (401, 403), path


async def test_a_path_no_route_takes_needs_a_token_before_its_404(
    gateway: AuthGateway, tokens: Tokens
) -> None:
    assert (await gateway.client.get("/api/native/v1/nothing")).status_code == 401
    answer = await gateway.client.get("/api/native/v1/nothing", headers=_headers(tokens.read))
    assert answer.status_code == 404


def test_every_declared_exception_names_a_route(gateway: AuthGateway) -> None:
    routes = {(m, declared_path(e.path)) for e in _rules(gateway).entries for m in e.methods}
    assert {("POST", p) for p in READ_POSTS} <= routes
    assert set(ADMINISTRATION) <= routes


def test_every_operation_of_the_merged_openapi_has_a_scope(gateway: AuthGateway) -> None:
    document = gateway.gateway.own.openapi()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "basic"}
    operations = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            operations += 1
            if is_public(path):
                assert operation["security"] == [], (method, path)
                continue
            scope = operation["x-cmf-scope"]
            assert scope in ("read", "write", "admin"), (method, path)
            assert operation["security"] == [{"bearer": [scope]}, {"basic": [scope]}]
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
    assert operations > 100


async def test_the_openapi_document_claims_no_security_when_auth_is_off() -> None:
    gateway = create_gateway(GatewaySettings(), services())
    document = gateway.own.openapi()
    assert "securitySchemes" not in document.get("components", {})
    assert not any("security" in o for ops in document["paths"].values() for o in ops.values())
