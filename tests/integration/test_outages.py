"""PostgreSQL crashes (``pg_ctl stop -m immediate``) while pushes flow and comes back: every
acknowledged push reaches the lineage graph within seconds, with no restart, in both ways of
running (issue 12 item 1). Embedded: ``cmf-server up`` on its own PostgreSQL, which the test
crashes. Distributed: ``cmf-server up``, ``worker relay`` and ``worker lineage`` on Kafka and on
a PostgreSQL cluster of the test's own (never the shared one)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from support import KAFKA_BOOTSTRAP, free_port, new_topic, start_server, start_worker

from cmf_testing.databases import run_blocking
from cmf_testing.generator import push_body
from cmf_testing.postgres import Cluster, crash, embedded_socket_dir, restart_embedded
from cmf_testing.servers import ServerProcess
from cmf_testing.waiting import eventually

# How long PostgreSQL stays down, and how long after the pushes stop (PostgreSQL back and
# pushes acknowledged again) the last acknowledged push may take to reach the graph. Before
# the fix a loop's backoff had grown to 8-16 s by then, its LISTEN connection was lost for
# good (a poll every 5 s), and the backlog was projected an event per graph transaction.
DOWN_S = 12.0
AFTER = 24  # pushes acknowledged after PostgreSQL's return, while the loops catch up
CATCH_UP_S = 5.0


class Pushes:
    """Clients pushing small pipelines until stopped; remembers what was acknowledged."""

    def __init__(self, base_url: str, clients: int = 8) -> None:
        self.base_url = base_url
        self.acknowledged: list[str] = []
        self.refused: list[int] = []
        self.unexpected: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._push, args=(n,), daemon=True) for n in range(clients)
        ]

    def _push(self, client: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                name = f"outage-{client}-{i}"
                i += 1
                try:
                    answer = http.post("/api/mlmd_push", json=push_body(name, 5))
                except httpx.TransportError:
                    self.refused.append(0)
                    continue
                if answer.status_code == 200 and answer.json()["status"] == "success":
                    self.acknowledged.append(name)
                elif answer.status_code == 503 and answer.headers.get("retry-after") == "1":
                    self.refused.append(answer.status_code)
                else:
                    self.unexpected.append(f"{answer.status_code} {answer.text[:200]}")

    def at_least(self, count: int) -> None:
        assert len(self.acknowledged) >= count, f"{len(self.acknowledged)} acknowledged so far"

    @contextmanager
    def flowing(self) -> Iterator[Pushes]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=60)


async def _behind(connect: Callable[[], Any], pipelines: list[str]) -> dict[str, tuple[int, int]]:
    """The pipelines whose graph has not applied every committed event: name -> (applied,
    committed)."""
    conn = await connect()
    try:
        rows = await conn.fetch(
            "SELECT s.subject, s.last_seq, coalesce(p.seq, 0) AS applied"
            " FROM metadata.outbox_sequences s LEFT JOIN lineage.consumer_progress p"
            "   ON p.subject = s.subject"
            " WHERE s.subject = ANY($1::text[])",
            pipelines,
        )
    finally:
        await conn.close()
    committed = {r["subject"]: (r["applied"], r["last_seq"]) for r in rows}
    missing = {p: (0, -1) for p in pipelines if p not in committed}
    return {**missing, **{p: s for p, s in committed.items() if s[0] < s[1]}}


def _assert_caught_up(connect: Callable[[], Any], pipelines: list[str]) -> None:
    behind = run_blocking(_behind(connect, pipelines))
    assert not behind, f"{len(behind)} pipelines not in the graph yet, e.g. {list(behind)[:3]}"


def _assert_live(*processes: ServerProcess) -> None:
    for process in processes:
        live = httpx.get(f"{process.base_url}/livez", timeout=5)
        assert live.status_code == 200, f"{process.base_url}: {live.text}"


def _outage_while_pushing(
    server: ServerProcess, stop: Callable[[], None], start: Callable[[], None]
) -> list[str]:
    """Crash PostgreSQL while pushes flow, keep it down for ``DOWN_S`` (long enough for the
    loops' backoff to grow), start it again; once pushes are acknowledged again, stop pushing.
    Returns what was acknowledged."""
    with Pushes(server.base_url).flowing() as pushes:
        eventually(lambda: pushes.at_least(6), timeout=60, interval=0.2)
        stop()
        time.sleep(DOWN_S)  # the outage itself, not a wait for a condition
        before = len(pushes.acknowledged)
        start()
        eventually(lambda: pushes.at_least(before + AFTER), timeout=60, interval=0.2)
    assert pushes.refused, "some pushes met the outage"
    assert not pushes.unexpected, f"answers other than 200 and 503: {pushes.unexpected[:3]}"
    return pushes.acknowledged


def _catch_up(connect: Callable[[], Any], acknowledged: list[str]) -> float:
    """Seconds until every acknowledged push is in the graph (at most ``CATCH_UP_S``)."""
    started = time.monotonic()
    eventually(lambda: _assert_caught_up(connect, acknowledged), timeout=CATCH_UP_S)
    return time.monotonic() - started


def test_the_embedded_delivery_catches_up_by_itself_after_postgres_crashed(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path, free_port()) as server:
        pgdata = server.data_dir / "postgres"
        socket_dir = embedded_socket_dir(server.data_dir)
        acknowledged = _outage_while_pushing(
            server, lambda: crash(pgdata), lambda: restart_embedded(server.data_dir, socket_dir)
        )

        def connect() -> Any:
            return asyncpg.connect(
                host=embedded_socket_dir(server.data_dir), user="postgres", database="postgres"
            )

        _catch_up(connect, acknowledged)
        _assert_live(server)
        tree = httpx.get(
            f"{server.base_url}/api/artifact-lineage/tangled-tree/{acknowledged[-1]}", timeout=10
        )
        assert tree.status_code == 200 and tree.json(), tree.text


def test_the_relay_and_the_projector_catch_up_by_themselves_after_postgres_crashed(
    tmp_path: Path,
) -> None:
    topic = new_topic(partitions=3)
    with Cluster(tmp_path / "pg") as cluster:
        env = {
            "DATABASE_URL": cluster.url,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            "EVENTS_TOPIC": topic,
            "LINEAGE_CONSUMER_GROUP": f"outage-{topic}",
        }
        with (
            start_server(tmp_path, free_port(), env) as server,
            start_worker("relay", tmp_path, env) as relay,
            start_worker("lineage", tmp_path, env) as projector,
        ):
            acknowledged = _outage_while_pushing(server, cluster.crash, cluster.start)
            _catch_up(lambda: asyncpg.connect(cluster.url), acknowledged)
            _assert_live(server, relay, projector)
