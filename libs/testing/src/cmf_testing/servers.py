"""``cmf-server`` as a subprocess, for tests: ``cmf-server up`` (:func:`start_server`) and its
workers (:func:`start_worker`), each waited for until its ``/livez`` answers.

``start_server`` is a plain function so a test can run several servers (for example two servers
sharing one ``DATABASE_URL``). The ambient ``DATABASE_URL`` (and any ``<SERVICE>_DATABASE_URL``)
of the shell running the tests never reaches a server: without an explicit one in ``env`` it
runs its embedded PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from cmf_testing.network import free_port
from cmf_testing.waiting import eventually

CMF_SERVER = Path(sys.executable).parent / "cmf-server"
START_DEADLINE_S = 60.0
STOP_GRACE_S = 30.0


class ServerExited(RuntimeError):
    """The server process ended while we waited for it."""


@dataclass
class ServerProcess:
    """A running ``cmf-server up``; its stderr goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    data_dir: Path
    log_path: Path

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        """SIGINT, then wait up to 30 s for a clean exit before killing it; returns its code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_GRACE_S)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _server_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """The test runner's environment without any database URL, without TensorBoard and without
    the runner's own ``XDG_RUNTIME_DIR`` (each server picks its own, as a user's does), then
    ``env`` on top."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "XDG_RUNTIME_DIR") and not key.endswith("_DATABASE_URL")
    }
    # No TensorBoard beside each server (seconds of CPU as it starts) unless a test asks.
    base["TENSORBOARD"] = "false"
    base.update(env or {})
    return base


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening socket on ``port``."""
    import psutil  # the embedded PostgreSQL's dependency; imported late like the server does

    try:
        sockets = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets)


def start_server(
    tmp_path: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    *,
    tls_ca: Path | None = None,
) -> ServerProcess:
    """Start ``cmf-server up`` on ``port`` with its data under ``tmp_path``; wait for ``/livez``.

    ``env`` is added to the environment (pass ``DATABASE_URL`` there to use a shared
    PostgreSQL). A server that serves TLS (``TLS_CERT_PATH`` in ``env``) is reached at
    ``https://`` and checked against ``tls_ca``. Raises ``RuntimeError`` with the server's
    stderr when it is not live within 60 s or exits first.
    """
    data_dir = tmp_path / f"server-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_cmf_process(
        ["up", "--port", str(port), "--data-dir", str(data_dir)],
        tmp_path,
        port,
        data_dir,
        env,
        tls_ca=tls_ca,
    )


def start_worker(name: str, tmp_path: Path, env: Mapping[str, str]) -> ServerProcess:
    """Start ``cmf-server worker <name>`` with its health routes on a free port; wait for them."""
    port = free_port()
    return start_cmf_process(["worker", name, "--port", str(port)], tmp_path, port, tmp_path, env)


def start_cmf_process(
    args: list[str],
    tmp_path: Path,
    port: int,
    data_dir: Path,
    env: Mapping[str, str] | None,
    *,
    tls_ca: Path | None = None,
    deadline_s: float = START_DEADLINE_S,
) -> ServerProcess:
    log_path = tmp_path / f"{args[0]}-{port}.stderr.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(CMF_SERVER), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_env(env),
        )
    scheme = "https" if tls_ca is not None else "http"
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(tls_ca)) if tls_ca is not None else True
    )
    server = ServerProcess(process, f"{scheme}://127.0.0.1:{port}", port, data_dir, log_path)

    def live() -> None:
        if process.poll() is not None:
            raise ServerExited(f"exited with code {process.returncode}")
        # Else a server already on the port would answer /livez for this one.
        assert _listens(process.pid, port), f"process {process.pid} is not listening yet"
        try:
            response = httpx.get(f"{server.base_url}/livez", timeout=2.0, verify=verify)
        except httpx.TransportError as exc:
            raise AssertionError(f"not answering yet: {exc!r}") from exc
        assert response.status_code == 200, f"/livez answered {response.status_code}"

    try:
        eventually(live, timeout=deadline_s, interval=0.2)
    except (AssertionError, ServerExited) as exc:
        server.stop()
        raise RuntimeError(
            f"cmf-server {' '.join(args)} did not become live in {deadline_s:g} s ({exc}); "
            f"its output:\n"
            f"{server.stderr()}"
        ) from exc
    return server
