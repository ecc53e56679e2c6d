"""``cmf-server up`` stops everything it started, its embedded PostgreSQL included, on SIGTERM
(what process managers send) as on SIGINT (Ctrl-C), within a bound, and also after its
PostgreSQL crashed and came back (issue 12 item 3)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from cmf_testing.generator import push_body
from cmf_testing.network import free_port
from cmf_testing.postgres import crash, embedded_socket_dir, postgres_pids, restart_embedded
from cmf_testing.servers import ServerProcess, start_server
from cmf_testing.waiting import eventually

# Generous for a loaded machine; the server's own bounds are ~10 s for open connections, 10 s
# for its loops, 15 s for PostgreSQL.
STOP_BOUND_S = 30.0


def _stopped_within_bound(
    server: ServerProcess, sig: signal.Signals, *, postgres_up: bool = True
) -> None:
    pgdata = server.data_dir / "postgres"
    assert bool(postgres_pids(pgdata)) == postgres_up, "the embedded PostgreSQL runs or not"
    started = time.monotonic()
    server.process.send_signal(sig)
    try:
        code = server.process.wait(timeout=STOP_BOUND_S)
    except subprocess.TimeoutExpired:
        server.process.kill()
        pytest.fail(f"still running {STOP_BOUND_S:g} s after {sig.name}:\n{server.stderr()}")
    took = time.monotonic() - started
    assert code == 0, f"exit code {code} after {sig.name}:\n{server.stderr()}"
    assert not postgres_pids(pgdata), f"PostgreSQL outlived the server ({sig.name})"
    assert "Application shutdown failed" not in server.stderr()
    assert took < STOP_BOUND_S


def _push(server: ServerProcess, name: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/api/mlmd_push", json=push_body(name, 2), timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_the_server_and_its_postgres(
    tmp_path: Path, sig: signal.Signals
) -> None:
    server = start_server(tmp_path, free_port())
    try:
        assert _push(server, "signalled").json() == {"status": "success"}
        _stopped_within_bound(server, sig)
    finally:
        server.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_after_an_outage_stops_the_restarted_postgres(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """pgserver's own exit hook stopped the postmaster it started, by pid: one that had
    restarted meanwhile was left running (and Ctrl-C logged "Application shutdown failed")."""
    server = start_server(tmp_path, free_port())
    try:
        assert _push(server, "before").json() == {"status": "success"}
        socket_dir = embedded_socket_dir(server.data_dir)
        crash(server.data_dir / "postgres")
        assert _push(server, "during").status_code == 503
        restart_embedded(server.data_dir, socket_dir)

        def pushes_again() -> None:
            assert _push(server, "after").json() == {"status": "success"}

        eventually(pushes_again, timeout=30, interval=0.5)
        _stopped_within_bound(server, sig)
    finally:
        server.stop()


def test_sigterm_while_postgres_is_down_stops_the_server_within_the_bound(
    tmp_path: Path,
) -> None:
    """The loops are retrying and the pools cannot reach PostgreSQL: the server still stops,
    and leaves no PostgreSQL behind."""
    server = start_server(tmp_path, free_port())
    try:
        assert _push(server, "before").json() == {"status": "success"}
        crash(server.data_dir / "postgres")
        assert _push(server, "during").status_code == 503
        _stopped_within_bound(server, signal.SIGTERM, postgres_up=False)
    finally:
        server.stop()


def test_a_data_dir_too_long_for_a_socket_address_starts_and_stops(tmp_path: Path) -> None:
    """pgserver gave up ("Could not find a suitable socket path") when the data dir's path and
    its runtime folder below it were both too long for a unix socket's 107-byte address."""
    deep = tmp_path / ("a-long-folder-name-" * 5)
    deep.mkdir()
    server = start_server(deep, free_port())
    try:
        assert _push(server, "deep").json() == {"status": "success"}
        socket_dir = Path(embedded_socket_dir(server.data_dir))
        assert len(str(socket_dir / ".s.PGSQL.5432")) <= 107
        _stopped_within_bound(server, signal.SIGTERM)
        assert not socket_dir.exists(), "the short runtime folder outlived the server"
    finally:
        server.stop()
