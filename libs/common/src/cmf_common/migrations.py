"""A small versioned-SQL migration runner.

Each service ships ``NNNN_name.sql`` files in a ``migrations`` package; shared tables (the
outbox) ship theirs in ``cmf_common``. Each package is a track of its own, applied in order, each
file in its own transaction, and recorded in ``<schema>.schema_migrations`` by track and version.
A transaction-scoped advisory lock makes concurrent starts of several replicas safe: one
migrates, the others wait and then find nothing to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {package}: {versions}")
    return found


async def migrate(pool: asyncpg.Pool, schema: str, packages: list[str]) -> list[str]:
    """Apply every pending migration of ``packages`` to ``schema``; returns those applied."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        for package in packages:
            for migration in load_migrations(package):
                async with conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                        f"cmf.migrate.{schema}",
                    )
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " track text NOT NULL, version integer NOT NULL, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now(),"
                        " PRIMARY KEY (track, version))"
                    )
                    done = await conn.fetchval(
                        "SELECT true FROM schema_migrations WHERE track = $1 AND version = $2",
                        package,
                        migration.version,
                    )
                    if done:
                        continue
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (track, version, name) VALUES ($1, $2, $3)",
                        package,
                        migration.version,
                        migration.name,
                    )
                    applied.append(f"{package}:{migration.version:04d}")
                    log.info(
                        "db.migrated",
                        schema=schema,
                        track=package,
                        version=migration.version,
                        name=migration.name,
                    )
    return applied
