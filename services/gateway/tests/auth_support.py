"""A gateway with auth on over the real services' routes, for the access tests: the
services' apps are built (their routes are the table) but never started; requests the access
layer lets through reach a recorder standing in for them, which answers 200 and keeps the
principal it was given. The gateway's own routes (the tokens) answer for real."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from cmf_artifacts.app import create_service as create_artifacts
from cmf_artifacts.settings import ArtifactSettings
from cmf_common.dialects import PROBLEM, REFERENCE, Dialect
from cmf_common.envelope import ENVELOPE
from cmf_common.health import Check
from cmf_common.principal import PRINCIPAL_HEADER, Principal, verify_principal
from cmf_gateway.app import Gateway, create_gateway
from cmf_gateway.auth.store import TokenStore
from cmf_gateway.routing import ARTIFACTS, LINEAGE, METADATA
from cmf_gateway.settings import GatewaySettings
from cmf_lineage.app import create_service as create_lineage
from cmf_lineage.settings import LineageSettings
from cmf_metadata.app import create_service as create_metadata
from cmf_metadata.settings import MetadataSettings

SECRET = b"a-test-principal-secret-of-32-by"
WRONG = "cmf_000000000000_" + "A" * 43


class Recorder:
    """Stands in for every service: answers 200 and keeps each request's principal."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        principal = dict(scope["headers"]).get(PRINCIPAL_HEADER.lower().encode())
        self.seen.append((scope["method"], scope["path"], principal))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"recorded":true}'})

    def principal(self) -> Principal | None:
        raw = self.seen[-1][2] if self.seen else None
        return verify_principal(raw.decode(), SECRET, now=0) if raw is not None else None


@asynccontextmanager
async def _nothing() -> AsyncIterator[list[Check]]:
    yield []


def auth_settings(database_url: str, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(
        auth="on",
        database_url=SecretStr(database_url),
        principal_secret=SecretStr(SECRET.decode()),
        database_pool_max=4,
        **overrides,
    )


@dataclass
class Tokens:
    read: str
    write: str
    admin: str
    expired: str
    revoked: str
    prefixed: str
    ids: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> str | None:
        if kind == "none":
            return None
        if kind == "wrong":
            return WRONG
        token: str = getattr(self, kind)
        return token


async def make_tokens(store: TokenStore) -> Tokens:
    made: dict[str, str] = {}
    ids: dict[str, str] = {}
    for kind, scope in (
        ("read", "read"),
        ("write", "write"),
        ("admin", "admin"),
        ("expired", "admin"),
        ("revoked", "admin"),
        ("prefixed", "read"),
    ):
        token, record = await store.create(
            f"test-{kind}",
            scope,
            pipeline_prefix="team-a/" if kind == "prefixed" else None,
            expires_in=timedelta(days=1),
        )
        made[kind], ids[kind] = token, record.id
    await store.pool.execute(
        "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = $1", ids["expired"]
    )
    await store.revoke(ids["revoked"])
    return Tokens(**made, ids=ids)


@lru_cache(maxsize=1)
def services() -> dict[str, Any]:
    """Every service, built once (a gateway reads their routes, never changes them)."""
    return {
        METADATA: create_metadata(MetadataSettings()),
        LINEAGE: create_lineage(LineageSettings()),
        ARTIFACTS: create_artifacts(ArtifactSettings()),
    }


@dataclass
class AuthGateway:
    gateway: Gateway
    recorder: Recorder
    client: httpx.AsyncClient
    store: TokenStore


@asynccontextmanager
async def auth_gateway(settings: GatewaySettings) -> AsyncIterator[AuthGateway]:
    """The gateway of ``settings`` started (its access control, not the services), its
    services replaced by a :class:`Recorder`."""
    gateway = create_gateway(settings, services(), run=_nothing)
    recorder = Recorder()
    gateway.services = {name: recorder for name in gateway.services}
    async with gateway.own.router.lifespan_context(gateway.own):
        transport = httpx.ASGITransport(app=gateway, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert gateway.access is not None and gateway.access.store is not None
            yield AuthGateway(gateway, recorder, client, gateway.access.store)


def concrete(path: str) -> str:
    """A path of ``path``'s template: every parameter filled in."""
    path = re.sub(r"\{[^}/]+:path\}", "a/b", path)
    return re.sub(r"\{[^}/]+\}", "x1", path)


def body_shape(answer: httpx.Response) -> Dialect:
    """The dialect an error answer is in, by its body."""
    body = answer.json()
    if answer.headers["content-type"].startswith("application/problem+json"):
        return PROBLEM
    if set(body) >= {"status", "code", "data", "message", "errors", "meta"}:
        return ENVELOPE
    assert set(body) <= {"detail", "status"} and "detail" in body, body
    return REFERENCE
