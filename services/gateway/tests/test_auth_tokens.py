"""Tokens kept and checked: the admin routes mint (shown once), list and revoke; a revocation
reaches another gateway replica within a second; last use is written in batches; the cache
is not trusted once the revocation version cannot be read; rate limits and body limits answer
in the route's dialect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from auth_support import SECRET, AuthGateway, auth_gateway, auth_settings
from pydantic import SecretStr

from cmf_common.db import create_pool
from cmf_common.migrations import migrate
from cmf_gateway.auth import Access
from cmf_gateway.auth.settings import AuthRequired
from cmf_gateway.auth.store import MIGRATIONS, TokenStore
from cmf_gateway.auth.tokens import digest
from cmf_gateway.auth.verifier import TokenRefused, TokensUnavailable, TokenVerifier
from cmf_gateway.settings import GatewaySettings


@pytest.fixture(scope="module")
async def gateway(fresh_database_url: str) -> AsyncIterator[AuthGateway]:
    settings = auth_settings(fresh_database_url, rate_limit_address_rps=0)
    async with auth_gateway(settings) as started:
        yield started


@pytest.fixture(scope="module")
async def admin(gateway: AuthGateway) -> dict[str, str]:
    token, _ = await gateway.store.create("test-admin", "admin")
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_is_shown_once_and_kept_only_as_its_digest(
    gateway: AuthGateway, admin: dict[str, str]
) -> None:
    created = await gateway.client.post(
        "/api/native/v1/tokens",
        json={"name": "ci", "scope": "write", "pipeline_prefix": "team-a/", "expires": "90d"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    token = body["token"]
    assert token.startswith(f"cmf_{body['id']}_")
    assert body["scope"] == "write" and body["pipeline_prefix"] == "team-a/"
    assert body["state"] == "active" and body["expires_at"] is not None
    listed = (await gateway.client.get("/api/native/v1/tokens", headers=admin)).json()
    mine = [t for t in listed["items"] if t["id"] == body["id"]]
    assert len(mine) == 1 and "token" not in mine[0]
    assert token not in str(listed)
    one = await gateway.client.get(f"/api/native/v1/tokens/{body['id']}", headers=admin)
    assert one.json()["name"] == "ci" and "token" not in one.json()
    stored = await gateway.store.pool.fetch("SELECT * FROM tokens WHERE id = $1", body["id"])
    assert stored[0]["secret_sha256"] == digest(token)
    assert token.encode() not in repr(dict(stored[0])).encode()


async def test_a_bad_request_for_a_token_is_a_422(
    gateway: AuthGateway, admin: dict[str, str]
) -> None:
    for body in (
        {"name": "x", "scope": "root"},
        {"name": "", "scope": "read"},
        {"name": "x", "scope": "read", "expires": "soon"},
        {"name": "x", "scope": "read", "pipeline_prefix": ""},
    ):
        answer = await gateway.client.post("/api/native/v1/tokens", json=body, headers=admin)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


async def test_tokens_are_administration(gateway: AuthGateway) -> None:
    token, _ = await gateway.store.create("test-writer", "write")
    answer = await gateway.client.get(
        "/api/native/v1/tokens", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "insufficient_scope"


async def test_a_revoked_token_is_refused_at_once_here(
    gateway: AuthGateway, admin: dict[str, str]
) -> None:
    token, record = await gateway.store.create("test-revoked-here", "read")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await gateway.client.get("/api/pipelines", headers=headers)).status_code == 200
    revoked = await gateway.client.delete(f"/api/native/v1/tokens/{record.id}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = await gateway.client.get("/api/pipelines", headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "token revoked"
    again = await gateway.client.delete(f"/api/native/v1/tokens/{record.id}", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    missing = await gateway.client.delete("/api/native/v1/tokens/0123456789ab", headers=admin)
    assert missing.status_code == 404


async def test_a_revocation_reaches_another_replica_within_a_second(
    gateway: AuthGateway, fresh_database_url: str
) -> None:
    settings = auth_settings(fresh_database_url, rate_limit_address_rps=0)
    async with auth_gateway(settings) as other:
        token, record = await gateway.store.create("test-replicas", "read")
        headers = {"Authorization": f"Bearer {token}"}
        for replica in (gateway, other):
            assert (await replica.client.get("/api/pipelines", headers=headers)).status_code == 200
        await gateway.store.revoke(record.id)  # as `cmf-server token revoke` does
        revoked_at = time.monotonic()
        while True:
            answer = await other.client.get("/api/pipelines", headers=headers)
            if answer.status_code == 401 or time.monotonic() - revoked_at > 1.0:
                break
            await asyncio.sleep(0.01)
        assert answer.status_code == 401 and answer.json()["detail"] == "token revoked"
        assert time.monotonic() - revoked_at < 1.0


async def _store(url: str) -> TokenStore:
    pool = await create_pool(url, "gateway", min_size=1, max_size=2)
    await migrate(pool, "gateway", MIGRATIONS)
    return TokenStore(pool)


async def test_last_use_is_written_in_one_batch(fresh_database_url: str) -> None:
    store = await _store(fresh_database_url)
    try:
        verifier = TokenVerifier(store, flush_s=3600)
        await verifier.poll_once()
        made = [await store.create(f"test-use-{i}", "read") for i in range(3)]
        for token, _ in made:
            await verifier.verify(token)
            await verifier.verify(token)
        for _, record in made:
            unwritten = await store.get(record.id)
            assert unwritten is not None and unwritten.last_used_at is None
        await verifier.flush_once()
        for _, record in made:
            found = await store.get(record.id)
            assert found is not None and found.last_used_at is not None
    finally:
        await store.pool.close()


class _FailingStore(TokenStore):
    def __init__(self, inner: TokenStore) -> None:
        super().__init__(inner.pool)
        self.down = False

    async def revocation_version(self) -> int:
        if self.down:
            raise ConnectionError("down")
        return await super().revocation_version()

    async def find(self, digest: bytes) -> object:  # type: ignore[override]
        if self.down:
            raise ConnectionError("down")
        return await super().find(digest)


async def test_a_cache_whose_revocations_cannot_be_read_is_not_trusted(
    fresh_database_url: str,
) -> None:
    inner = await _store(fresh_database_url)
    try:
        store = _FailingStore(inner)
        clock = [100.0]
        verifier = TokenVerifier(store, stale_after_s=1.0, clock=lambda: clock[0])
        await verifier.poll_once()
        token, _ = await store.create("test-stale", "read")
        await verifier.verify(token)
        store.down = True
        await verifier.verify(token)  # cached, and the last poll is fresh
        clock[0] += 1.5  # no successful poll for longer than stale_after_s
        with pytest.raises(TokensUnavailable):
            await verifier.verify(token)
        store.down = False
        await verifier.poll_once()
        await verifier.verify(token)
    finally:
        await inner.pool.close()


async def test_an_unknown_token_is_looked_up_once(fresh_database_url: str) -> None:
    inner = await _store(fresh_database_url)
    try:
        lookups = 0

        class Counting(TokenStore):
            async def find(self, digest: bytes) -> object:  # type: ignore[override]
                nonlocal lookups
                lookups += 1
                return await super().find(digest)

        verifier = TokenVerifier(Counting(inner.pool))
        await verifier.poll_once()
        wrong = "cmf_000000000000_" + "B" * 43
        results = await asyncio.gather(
            *(verifier.verify(wrong) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, TokenRefused) for r in results)
        with pytest.raises(TokenRefused):
            await verifier.verify(wrong)
        assert lookups == 1
    finally:
        await inner.pool.close()


async def test_the_token_limit_answers_429_with_retry_after(fresh_database_url: str) -> None:
    settings = auth_settings(
        fresh_database_url,
        rate_limit_token_rps=0.5,
        rate_limit_token_burst=2,
        rate_limit_address_rps=0,
    )
    async with auth_gateway(settings) as limited:
        token, _ = await limited.store.create("test-limited", "read")
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            assert (await limited.client.get("/api/pipelines", headers=headers)).status_code == 200
        refused = await limited.client.get("/api/v1/pipelines", headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["status"] == "error" and refused.json()["code"] == 429
        # Another token (here a wrong one) has a limit of its own.
        wrong = {"Authorization": "Bearer cmf_000000000000_" + "C" * 43}
        assert (await limited.client.get("/api/pipelines", headers=wrong)).status_code == 401


async def test_the_address_limit_holds_whatever_the_token(fresh_database_url: str) -> None:
    settings = auth_settings(
        fresh_database_url,
        rate_limit_token_rps=0,
        rate_limit_address_rps=0.5,
        rate_limit_address_burst=3,
    )
    async with auth_gateway(settings) as limited:
        statuses = [
            (
                await limited.client.get(
                    "/api/native/v1/pipelines",
                    headers={"Authorization": f"Bearer cmf_00000000000{i}_" + "D" * 43},
                )
            ).status_code
            for i in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]


async def test_a_query_body_over_its_limit_is_a_413(fresh_database_url: str) -> None:
    settings = auth_settings(fresh_database_url, max_query_body_bytes=100)
    async with auth_gateway(settings) as small:
        token, _ = await small.store.create("test-bodies", "write")
        headers = {"Authorization": f"Bearer {token}"}
        big = {"pipeline_name": "x" * 200}
        pulled = await small.client.post("/api/mlmd_pull", json=big, headers=headers)
        assert pulled.status_code == 413 and set(pulled.json()) == {"detail"}
        pushed = await small.client.post("/api/mlmd_push", json=big, headers=headers)
        assert pushed.status_code == 200  # a push is bounded by MAX_BODY_BYTES


def test_distributed_mode_refuses_auth_off_and_auth_without_a_secret() -> None:
    with pytest.raises(AuthRequired, match="off-i-know"):
        Access(GatewaySettings(auth="off"), distributed=True)
    with pytest.raises(AuthRequired, match="PRINCIPAL_SECRET"):
        Access(GatewaySettings(), distributed=True)
    with pytest.raises(AuthRequired, match="database"):
        Access(GatewaySettings(principal_secret=SecretStr(SECRET.decode())), distributed=True)
    assert not Access(GatewaySettings(auth="off-i-know"), distributed=True).enabled
    assert not Access(GatewaySettings(), distributed=False).enabled
