"""Helpers for tests that run the real stack: our ``cmf-server`` as a subprocess (from
``cmf_testing.servers``, shared with server/tests), the real Kafka, Neo4j and databases.

``running_server`` (conftest) is the one-server fixture built on ``start_server``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from cmf_testing import databases
from cmf_testing.databases import ADMIN_URL, create_database, run_blocking, with_database
from cmf_testing.kafka import KAFKA_BOOTSTRAP as KAFKA_BOOTSTRAP
from cmf_testing.kafka import create_topic
from cmf_testing.neo4j import neo4j_env as neo4j_env
from cmf_testing.network import free_port as free_port
from cmf_testing.servers import ServerExited as ServerExited
from cmf_testing.servers import ServerProcess as ServerProcess
from cmf_testing.servers import start_cmf_process as start_cmf_process
from cmf_testing.servers import start_server as start_server
from cmf_testing.servers import start_worker as start_worker

REPO = Path(__file__).resolve().parents[2]


def run_checked(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end (no stdin, its output captured as text); fail the test with
    everything it printed unless it exits 0."""
    done = subprocess.run(
        [os.fspath(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    command = [os.fspath(a) for a in args]
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


def services(command: str, env: Mapping[str, str] | None = None) -> None:
    """``scripts/services.sh <command>`` (in ``env``, the runner's by default); fails with the
    script's output when it does."""
    done = subprocess.run(
        [str(REPO / "scripts" / "services.sh"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode:
        raise AssertionError(f"services.sh {command} failed:\n{done.stderr}")


def services_up() -> None:
    """Start again whatever real server a test stopped (``make services-up``, idempotent)."""
    services("up")


class OwnKafka:
    """A Kafka broker of a test's own, in ``folder`` on free ports (``scripts/services.sh
    kafka-up``): a test that stops its broker stops this one, never the shared broker that the
    tests running beside it use."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        self._env = {
            **os.environ,
            "CMF_SERVICES_DIR": str(folder),
            "CMF_KAFKA_PORT": str(port),
            "CMF_KAFKA_CONTROLLER_PORT": str(free_port()),
            "CMF_KAFKA_TOPICS": "",  # its tests make their own
        }

    def start(self) -> None:
        services("kafka-up", self._env)

    def stop(self) -> None:
        services("kafka-down", self._env)


@contextmanager
def own_kafka(folder: Path) -> Iterator[OwnKafka]:
    """A started :class:`OwnKafka`, stopped afterwards."""
    kafka = OwnKafka(folder)
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


def new_database() -> str:
    """An empty database on the test PostgreSQL; its URL."""
    return with_database(ADMIN_URL, run_blocking(create_database("cmf_test")))


def drop_database(url: str) -> None:
    run_blocking(databases.drop_database(url.rsplit("/", 1)[1]))


@contextmanager
def server_on_new_database(tmp_path: Path, env: Mapping[str, str]) -> Iterator[ServerProcess]:
    """``cmf-server up`` on a database of its own on the test PostgreSQL (it starts in seconds,
    without an embedded PostgreSQL to create), with ``env``; the database is dropped after."""
    url = new_database()
    try:
        with start_server(tmp_path, free_port(), {"DATABASE_URL": url, **env}) as server:
            yield server
    finally:
        drop_database(url)


def new_topic(partitions: int = 3) -> str:
    """A fresh Kafka topic (and its dead-letter topic); fails, naming Kafka, if unreachable."""
    return run_blocking(create_topic(partitions))
