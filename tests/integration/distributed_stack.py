"""Distributed mode on loopback, for tests: every process ``cmf_server.topology`` lists, each
``cmf-server serve|worker`` of its own on a free port, started from the topology's own command
lines with only the settings it lists for that process (so compose, Kubernetes and these tests
run the same thing), and each service on a PostgreSQL role of its own that can see only its
own schema (:func:`service_roles`).
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from support import ServerProcess, start_cmf_process

from cmf_server import topology
from cmf_testing.databases import ADMIN_URL, create_database, drop_database, run_blocking
from cmf_testing.network import free_port

# The services that keep tables in PostgreSQL, each in its own schema, reached by its own role.
SCHEMAS = (topology.METADATA, topology.ARTIFACTS, topology.LINEAGE)
# Until the gateway signs principals (the access layer), the services accept requests without.
UNSIGNED = {"REQUIRE_PRINCIPAL": "false"}
# Several processes start at once, each importing its service; a shared 2-core machine under
# load takes far longer than the 60 s one server is given.
START_DEADLINE_S = 300.0


@dataclass(frozen=True)
class Roles:
    """A fresh database with one login role per service (``urls``: its URL as that role)."""

    database: str
    names: dict[str, str]
    urls: dict[str, str]


def _as_role(url: str, database: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


async def _create_roles(database: str, services: Iterable[str]) -> Roles:
    suffix = uuid.uuid4().hex[:8]
    names = {s: f"cmf_{s}_{suffix}" for s in services}
    password = uuid.uuid4().hex
    admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        for role in names.values():
            await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    finally:
        await admin.close()
    inside = await asyncpg.connect(_as_admin_of(database), timeout=10)
    try:
        # What the metadata schema's migrations need from outside it, made by the admin.
        await inside.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
        await inside.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
        await inside.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service, role in names.items():
            await inside.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
            await inside.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            await inside.execute(f'CREATE SCHEMA "{service}" AUTHORIZATION {role}')
    finally:
        await inside.close()
    urls = {s: _as_role(ADMIN_URL, database, r, password) for s, r in names.items()}
    return Roles(database, names, urls)


def _as_admin_of(database: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{database}"))


async def _drop_roles(roles: Roles) -> None:
    admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        for role in roles.names.values():
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await admin.close()


@contextmanager
def service_roles(services: Iterable[str] = SCHEMAS) -> Iterator[Roles]:
    """A fresh database on the test PostgreSQL where each of ``services`` has a login role
    owning its schema and nothing else: no other schema is usable by it (``public`` only for
    the ``pg_trgm`` functions). Dropped, roles included, afterwards."""
    database = run_blocking(create_database("cmf_test_roles"))
    roles: Roles | None = None
    try:
        roles = run_blocking(_create_roles(database, services))
        yield roles
    finally:
        run_blocking(drop_database(database))
        if roles is not None:
            run_blocking(_drop_roles(roles))


@dataclass
class Stack:
    """The processes of one distributed stack, by topology name."""

    tmp: Path
    layout: topology.Layout
    settings: dict[str, str]
    extra: dict[str, dict[str, str]]
    processes: dict[str, ServerProcess] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.layout.url(topology.GATEWAY)

    def url(self, name: str) -> str:
        return self.layout.url(name)

    def env_of(self, name: str) -> dict[str, str]:
        """Exactly the settings the topology lists for ``name``, from ``settings``; its
        upstream URLs from the layout; and the test's ``extra`` for it."""
        listed = topology.process(name).env_names
        env = {k: v for k, v in self.settings.items() if k in listed}
        return {**env, **self.layout.env(name), **self.extra.get(name, {})}

    def start(self, *names: str) -> None:
        """Start ``names`` at once and wait until each is live."""

        def one(name: str) -> tuple[str, ServerProcess]:
            folder = self.tmp / name
            folder.mkdir(exist_ok=True)
            argv = self.layout.argv(name)
            port = self.layout.ports[name]
            return name, start_cmf_process(
                argv[1:], folder, port, folder, self.env_of(name), deadline_s=START_DEADLINE_S
            )

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [pool.submit(one, name) for name in names]
            errors = []
            for future in futures:
                try:
                    name, process = future.result()
                    self.processes[name] = process
                except Exception as exc:  # every process is waited for, then the first error
                    errors.append(exc)
        if errors:
            raise errors[0]

    def kill(self, name: str) -> None:
        """SIGKILL: the process ends as a crash would end it."""
        process = self.processes.pop(name)
        process.process.send_signal(signal.SIGKILL)
        process.process.wait(timeout=30)

    def stop(self) -> None:
        """Every process stopped at once (each its SIGINT, then its clean exit)."""
        with ThreadPoolExecutor(max_workers=max(len(self.processes), 1)) as pool:
            list(pool.map(lambda p: p.stop(), self.processes.values()))
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.stderr()[-3000:]}" for n, p in self.processes.items())


@contextmanager
def running_stack(
    tmp: Path,
    names: Iterable[str],
    settings: Mapping[str, str],
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Stack]:
    """``names`` (topology processes) on free loopback ports, stopped afterwards."""
    chosen = list(names)
    layout = topology.Layout("127.0.0.1", {name: free_port() for name in chosen})
    stack = Stack(tmp, layout, dict(settings), {k: dict(v) for k, v in (extra or {}).items()})
    try:
        stack.start(*chosen)
        yield stack
    finally:
        stack.stop()
