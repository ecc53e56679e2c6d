"""Metahub when the syncing server dies mid-sync (docs/metahub.md): ``kill -9`` while B merges
A's pipelines one by one, then a re-sync after B's restart completes the rest and doubles
nothing. B keeps its data in a database of its own on the test PostgreSQL, which outlives B."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
from support import drop_database, free_port, new_database, start_server
from test_metahub_sync import executions, pulled

from cmf_testing.generator import push_body

PIPELINES = [f"Crash-{i}" for i in range(4)]
EXECUTIONS = 800  # each pipeline's merge takes most of a second: time to kill B between two


def test_a_sync_cut_off_by_kill_9_completes_on_the_next_with_nothing_doubled(
    tmp_path: Path,
) -> None:
    database_url = new_database()
    env = {"METAHUB_SYNC_OVERLAP_MS": "0"}
    try:
        with start_server(tmp_path, free_port(), env) as a:
            for seed, name in enumerate(PIPELINES):
                pushed = httpx.post(
                    f"{a.base_url}/api/mlmd_push",
                    json=push_body(name, EXECUTIONS, seed=seed),
                    timeout=120,
                )
                assert pushed.json() == {"status": "success"}, pushed.text
            peer = {"server_name": "a", "server_url": a.base_url}
            b_env = {"DATABASE_URL": database_url, **env}
            with start_server(tmp_path, free_port(), b_env) as b:
                registered = httpx.post(f"{b.base_url}/register-server", json=peer, timeout=30)
                assert registered.status_code == 200, registered.text
                syncing = threading.Thread(target=_sync_until_cut_off, args=(b.base_url, peer))
                syncing.start()
                merged_before = _wait_for_a_partial_merge(b.base_url)
                b.process.kill()
                b.process.wait(timeout=30)
                syncing.join(timeout=60)
            assert 1 <= merged_before < len(PIPELINES)

            with start_server(tmp_path, free_port(), b_env) as again:
                kept = httpx.get(f"{again.base_url}/api/pipelines", timeout=30).json()
                assert 1 <= len(kept) < len(PIPELINES)  # what committed before the kill
                done = httpx.post(f"{again.base_url}/sync", json=peer, timeout=300)
                assert done.status_code == 200, done.text
                assert httpx.get(f"{again.base_url}/api/pipelines").json() == sorted(PIPELINES)
                for name in PIPELINES:
                    assert executions(again.base_url, name) == EXECUTIONS
                    assert pulled(again.base_url, name) == pulled(a.base_url, name)
                # The sync point moved only now: the next sync finds nothing new.
                later = httpx.post(f"{again.base_url}/api/v1/servers/sync", json=peer, timeout=60)
                assert later.json()["data"]["executions_merged"] == 0
    finally:
        drop_database(database_url)


def _sync_until_cut_off(base_url: str, peer: dict[str, str]) -> None:
    """The sync request that B's death cuts off (its answer never comes)."""
    with contextlib.suppress(httpx.TransportError):
        httpx.post(f"{base_url}/sync", json=peer, timeout=300)


def _wait_for_a_partial_merge(base_url: str) -> int:
    """How many of A's pipelines B holds once it holds one (polled while it merges)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        names = httpx.get(f"{base_url}/api/pipelines", timeout=10).json()
        if names:
            return len(names)
        time.sleep(0.02)
    raise AssertionError("B merged nothing of A within 120 s")
