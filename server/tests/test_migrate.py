"""``cmf-server migrate``: the Kubernetes Job's and compose's one-shot migration step."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg

from cmf_testing.databases import run_blocking

CMF_SERVER = str(Path(sys.executable).with_name("cmf-server"))


def _migrate(database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k != "NEO4J_URI"
    }
    return subprocess.run(
        [CMF_SERVER, "migrate"],
        env={**environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _applied(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables"
            " WHERE table_name = 'schema_migrations'"
        )
        counts = {}
        for row in rows:
            schema = row["table_schema"]
            counts[schema] = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".schema_migrations'
            )
        return counts
    finally:
        await conn.close()


def test_migrate_makes_every_schema_then_finds_nothing_to_do(
    make_database_url: Callable[[], str],
) -> None:
    url = make_database_url()
    first = _migrate(url)
    assert first.returncode == 0, first.stderr
    counts = run_blocking(_applied(url))
    assert set(counts) == {"metadata", "artifacts", "lineage"}
    assert all(n > 0 for n in counts.values())

    again = _migrate(url)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("up to date") == 3
    assert run_blocking(_applied(url)) == counts


def test_migrate_leaves_the_lineage_schema_to_neo4j_when_the_graph_is_there(
    make_database_url: Callable[[], str],
) -> None:
    url = make_database_url()
    done = _migrate(url, NEO4J_URI="bolt://127.0.0.1:1")  # never dialled: migrate is SQL only
    assert done.returncode == 0, done.stderr
    assert set(run_blocking(_applied(url))) == {"metadata", "artifacts"}


def test_migrate_without_a_database_says_so_and_fails() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    done = subprocess.run(
        [CMF_SERVER, "migrate"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "DATABASE_URL" in done.stderr
