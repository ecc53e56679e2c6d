"""The blob catalogue and the upload sessions. Functions take a connection the caller's
transaction owns; nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cmf_common.db import Connection


async def blob(conn: Connection, digest: str) -> Any:
    return await conn.fetchrow("SELECT digest, size, sha256 FROM blobs WHERE digest = $1", digest)


async def add_blob(conn: Connection, digest: str, size: int, sha256: str | None) -> bool:
    """Record a stored blob; ``False`` when it was recorded already (a sha256 learnt later is
    kept)."""
    added = await conn.fetchval(
        "INSERT INTO blobs (digest, size, sha256) VALUES ($1, $2, $3)"
        " ON CONFLICT (digest) DO UPDATE SET sha256 = coalesce(blobs.sha256, EXCLUDED.sha256)"
        " RETURNING (xmax = 0)",
        digest,
        size,
        sha256,
    )
    return bool(added)


async def stored_among(conn: Connection, digests: Sequence[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT digest FROM blobs WHERE digest = ANY($1::text[]) ORDER BY digest", list(digests)
    )
    return [r["digest"] for r in rows]


async def add_session(conn: Connection, session: uuid.UUID, digest: str, handle: str) -> Any:
    return await conn.fetchrow(
        "INSERT INTO upload_sessions (id, digest, handle) VALUES ($1, $2, $3)"
        " RETURNING id, digest, handle, created_at, touched_at",
        session,
        digest,
        handle,
    )


async def session(conn: Connection, session: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT id, digest, handle, created_at, touched_at FROM upload_sessions WHERE id = $1",
        session,
    )


async def touch_session(conn: Connection, session: uuid.UUID) -> None:
    await conn.execute("UPDATE upload_sessions SET touched_at = now() WHERE id = $1", session)


async def drop_session(conn: Connection, session: uuid.UUID) -> None:
    await conn.execute("DELETE FROM upload_sessions WHERE id = $1", session)


async def expired_sessions(conn: Connection, idle_since: datetime) -> list[Any]:
    return await conn.fetch(
        "DELETE FROM upload_sessions WHERE touched_at < $1 RETURNING id, handle", idle_since
    )


async def live_handles(conn: Connection) -> set[str]:
    return {r["handle"] for r in await conn.fetch("SELECT handle FROM upload_sessions")}


async def record_part(conn: Connection, session: uuid.UUID, number: int, etag: str) -> None:
    await conn.execute(
        "INSERT INTO upload_parts (session_id, number, etag) VALUES ($1, $2, $3)"
        " ON CONFLICT (session_id, number) DO UPDATE SET etag = EXCLUDED.etag",
        session,
        number,
        etag,
    )
    await touch_session(conn, session)


async def sent_parts(conn: Connection, session: uuid.UUID) -> dict[int, str]:
    rows = await conn.fetch("SELECT number, etag FROM upload_parts WHERE session_id = $1", session)
    return {r["number"]: r["etag"] for r in rows}


async def blobs_after(conn: Connection, after: str, limit: int) -> list[Any]:
    """The catalogue in digest order, ``limit`` blobs after ``after`` (a backup pages through
    it)."""
    return await conn.fetch(
        "SELECT digest, size, sha256 FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
        after,
        limit,
    )


async def blob_totals(conn: Connection) -> tuple[int, int]:
    """How many blobs the catalogue holds and their bytes."""
    row = await conn.fetchrow("SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM blobs")
    assert row is not None  # an aggregate always answers one row
    return int(row["n"]), int(row["bytes"])
