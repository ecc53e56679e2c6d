"""``cmf-server migrate``: every service's PostgreSQL migrations, applied before a rollout.

Distributed deployments run it once per release (the Kubernetes Job ``cmf-migrate``, compose's
``migrate`` service) before the new processes start. The services also migrate on start, under
the same per-schema advisory lock (:mod:`cmf_common.migrations`), so a process that starts first
finds nothing left to do or waits its turn: the Job makes a failing migration fail the rollout
instead of a crash loop, and lets the services run on database roles that may not change the
schema. Each schema is found as its service finds it (``<SERVICE>_DATABASE_URL``, else
``DATABASE_URL``); the lineage schema only when the graph lives in PostgreSQL (no ``NEO4J_URI``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from cmf_common.settings import ServiceSettings


@dataclass(frozen=True)
class Schema:
    """One service's schema and the migration packages that make it."""

    settings: ServiceSettings
    migrations: list[str]


def schemas() -> list[Schema]:
    """The schemas this deployment's services keep in PostgreSQL, in the order they start."""
    from cmf_artifacts.app import MIGRATIONS as ARTIFACT_MIGRATIONS
    from cmf_artifacts.settings import ArtifactSettings
    from cmf_gateway.auth.store import MIGRATIONS as GATEWAY_MIGRATIONS
    from cmf_gateway.settings import GatewaySettings
    from cmf_lineage.settings import LineageSettings
    from cmf_lineage.store import MIGRATIONS as LINEAGE_MIGRATIONS
    from cmf_metadata.app import MIGRATIONS as METADATA_MIGRATIONS
    from cmf_metadata.settings import MetadataSettings

    found = [
        Schema(MetadataSettings(), METADATA_MIGRATIONS),
        Schema(ArtifactSettings(), ARTIFACT_MIGRATIONS),
        Schema(GatewaySettings(), GATEWAY_MIGRATIONS),  # its tokens (docs/access.md)
    ]
    lineage = LineageSettings()
    if not lineage.neo4j_uri:
        found.append(Schema(lineage, LINEAGE_MIGRATIONS))
    return found


async def run() -> int:
    """Migrate every schema; 0 when all are up to date, 1 (with the reason) when one fails."""
    from cmf_common.db import close_pool, create_pool
    from cmf_common.migrations import migrate

    for schema in schemas():
        settings = schema.settings
        try:
            pool = await create_pool(
                settings.require_database_url(),
                settings.db_schema,
                min_size=1,
                max_size=1,
                application_name="cmf-migrate",
                connect_timeout_s=settings.database_connect_timeout_s,
            )
        except Exception as exc:
            print(f"migrate: {settings.db_schema}: {exc}", file=sys.stderr)
            return 1
        try:
            applied = await migrate(pool, settings.db_schema, schema.migrations)
        finally:
            await close_pool(pool)
        done = ", ".join(applied) if applied else "up to date"
        print(f"migrate: {settings.db_schema}: {done}", file=sys.stderr)
    return 0
