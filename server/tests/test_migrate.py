"""``cmf-server migrate``: the Kubernetes Job's and compose's one-shot migration step."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cmf_server import migrate as cmf_migrate
from cmf_testing.databases import run_blocking

CMF_SERVER = str(Path(sys.executable).with_name("cmf-server"))


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str


Migrate = Callable[..., Run]


@pytest.fixture
def migrate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Migrate:
    """``cmf-server migrate`` in this process (its imports are paid once), with ``env`` and
    only ``DATABASE_URL`` as the database; the CLI's own wiring is the last test's."""

    def run(database_url: str, **env: str) -> Run:
        with monkeypatch.context() as patch:
            for name in [k for k in os.environ if k.endswith("DATABASE_URL")]:
                patch.delenv(name)
            patch.delenv("NEO4J_URI", raising=False)
            patch.delenv("SECRETS_DIR", raising=False)
            for name, value in {"DATABASE_URL": database_url, **env}.items():
                patch.setenv(name, value)
            capsys.readouterr()
            code = run_blocking(cmf_migrate.run())
            return Run(code, capsys.readouterr().err)

    return run


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
    make_database_url: Callable[[], str], migrate: Migrate
) -> None:
    url = make_database_url()
    first = migrate(url)
    assert first.returncode == 0, first.stderr
    counts = run_blocking(_applied(url))
    assert set(counts) == {"metadata", "artifacts", "lineage", "gateway"}
    assert all(n > 0 for n in counts.values())

    again = migrate(url)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("up to date") == 4
    assert run_blocking(_applied(url)) == counts


def test_migrate_leaves_the_lineage_schema_to_neo4j_when_the_graph_is_there(
    make_database_url: Callable[[], str], migrate: Migrate
) -> None:
    url = make_database_url()
    done = migrate(url, NEO4J_URI="bolt://127.0.0.1:1")  # never dialled: migrate is SQL only
    assert done.returncode == 0, done.stderr
    assert set(run_blocking(_applied(url))) == {"metadata", "artifacts", "gateway"}


def test_migrate_without_a_database_says_so_and_fails() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    done = subprocess.run(
        [CMF_SERVER, "migrate"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "DATABASE_URL" in done.stderr


INIT_ROLES = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "init-roles.sh"
SERVICES = ("metadata", "lineage", "artifacts", "gateway")


def test_compose_roles_each_own_their_schema_and_see_no_other(
    make_database_url: Callable[[], str], tmp_path: Path, migrate: Migrate
) -> None:
    """deploy/postgres/init-roles.sh (compose's PostgreSQL, first start) makes a role per
    service from its URL secret; ``cmf-server migrate`` run with those URLs makes each schema as
    its role, which then sees nothing of the others'."""
    url = make_database_url()
    parts = urlsplit(url)
    tag = uuid.uuid4().hex[:8]
    urls = {
        s: urlunsplit(
            parts._replace(netloc=f"cmf_{tag}_{s}:pw-{s}-{tag}@{parts.hostname}:{parts.port}")
        )
        for s in SERVICES
    }
    for service, role_url in urls.items():
        (tmp_path / f"{service}_database_url").write_text(role_url + "\n")
    env = {
        **os.environ,
        "CMF_SECRETS_DIR": str(tmp_path),
        "POSTGRES_USER": parts.username or "",
        "POSTGRES_DB": parts.path.lstrip("/"),
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port),
        "PGPASSWORD": parts.password or "",
    }
    try:
        made = subprocess.run(
            ["bash", str(INIT_ROLES)], env=env, capture_output=True, text=True, timeout=60
        )
        assert made.returncode == 0, made.stderr
        done = migrate(url, **{f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()})
        assert done.returncode == 0, done.stderr
        owners = run_blocking(_schema_owners(url))
        for service in ("metadata", "lineage", "artifacts"):
            assert owners[service] == f"cmf_{tag}_{service}"
        denied = run_blocking(_reads_other_schema(urls["lineage"], "metadata"))
        assert denied
    finally:
        run_blocking(_drop_roles(url, [f"cmf_{tag}_{s}" for s in SERVICES]))


async def _schema_owners(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace"
        )
        return {row["nspname"]: row["owner"] for row in rows}
    finally:
        await conn.close()


async def _reads_other_schema(role_url: str, schema: str) -> bool:
    """Whether the role of ``role_url`` is refused the tables of ``schema``."""
    conn = await asyncpg.connect(role_url)
    try:
        await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations')
    except asyncpg.InsufficientPrivilegeError:
        return True
    finally:
        await conn.close()
    return False


async def _drop_roles(database_url: str, roles: list[str]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for role in roles:
            exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
            if exists:
                await conn.execute(f'DROP OWNED BY "{role}" CASCADE')
                await conn.execute(f'DROP ROLE "{role}"')
    finally:
        await conn.close()
