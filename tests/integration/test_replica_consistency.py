"""Two ``cmf-server up`` processes on one database, without Redis (replicas behind a load
balancer): a push acknowledged by one is in every lineage read the other answers at once, token
or not. Each process delivers the outbox to the projector in-process; the committed sequences a
read must wait for are the database's, not the process's (docs/architecture.md). The shared
PostgreSQL only: no lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lineage_reads import read_each_route_right_after_each_push
from support import drop_database, free_port, new_database, start_server


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    url = new_database()
    env = {"DATABASE_URL": url, "LINEAGE_CONSISTENCY_WAIT_S": "10"}
    tmp: Path = tmp_path_factory.mktemp("replicas")
    try:
        with (
            start_server(tmp / "a", free_port(), env) as a,
            start_server(tmp / "b", free_port(), env) as b,
            httpx.Client(base_url=a.base_url, timeout=60) as to_a,
            httpx.Client(base_url=b.base_url, timeout=60) as to_b,
        ):
            yield to_a, to_b
    finally:
        drop_database(url)


def test_a_push_to_one_replica_is_in_every_lineage_read_of_the_other_at_once(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    read_each_route_right_after_each_push(b, pushes=16, push_to=a)
