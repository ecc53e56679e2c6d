"""Every SQL statement on the ``gateway`` schema's tokens (``cmf_gateway.migrations``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import asyncpg

from cmf_gateway.auth.tokens import Minted, TokenRecord, mint

MIGRATIONS = ["cmf_gateway.migrations"]
_COLUMNS = "id, name, scope, pipeline_prefix, created_at, expires_at, revoked_at, last_used_at"


def _record(row: asyncpg.Record) -> TokenRecord:
    return TokenRecord(**dict(row))


class TokenStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(
        self,
        name: str,
        scope: str,
        *,
        pipeline_prefix: str | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token: its text (to show once) and its record."""
        minted: Minted = mint()
        row = await self.pool.fetchrow(
            "INSERT INTO tokens (id, name, secret_sha256, scope, pipeline_prefix, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING id, name, scope,"
            " pipeline_prefix, created_at, expires_at, revoked_at, last_used_at",
            minted.id,
            name,
            minted.digest,
            scope,
            pipeline_prefix,
            expires_in,
        )
        assert row is not None
        return minted.token, _record(row)

    async def find(self, digest: bytes) -> TokenRecord | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, scope, pipeline_prefix, created_at, expires_at, revoked_at,"
            " last_used_at FROM tokens WHERE secret_sha256 = $1",
            digest,
        )
        return _record(row) if row is not None else None

    async def get(self, token_id: str) -> TokenRecord | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, scope, pipeline_prefix, created_at, expires_at, revoked_at,"
            " last_used_at FROM tokens WHERE id = $1",
            token_id,
        )
        return _record(row) if row is not None else None

    async def list(self) -> list[TokenRecord]:
        rows = await self.pool.fetch(
            "SELECT id, name, scope, pipeline_prefix, created_at, expires_at, revoked_at,"
            " last_used_at FROM tokens ORDER BY created_at, id"
        )
        return [_record(row) for row in rows]

    async def revoke(self, token_id: str) -> TokenRecord | None:
        """Revoke the token (``None``: there is none of that id); revoking it again changes
        nothing. The revocation version moves in the same transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
                " RETURNING id, name, scope, pipeline_prefix, created_at, expires_at,"
                " revoked_at, last_used_at",
                token_id,
            )
            if row is None:
                return None
            await conn.execute("UPDATE token_revocations SET version = version + 1")
        return _record(row)

    async def revocation_version(self) -> int:
        version = await self.pool.fetchval("SELECT version FROM token_revocations")
        return int(version)

    async def record_use(self, last_used: Mapping[str, datetime]) -> None:
        """Each token's last use, in one statement."""
        if not last_used:
            return
        ids, times = zip(*sorted(last_used.items()), strict=True)
        await self.pool.execute(
            "UPDATE tokens AS t SET last_used_at = greatest(t.last_used_at, u.at)"
            " FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE t.id = u.id",
            list(ids),
            list(times),
        )
