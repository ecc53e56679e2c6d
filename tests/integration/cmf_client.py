"""The real ``cmf`` client (cmflib from PyPI, in its own venv), driven from tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmf_testing.s3 import S3Server

REPO = Path(__file__).resolve().parents[2]
CLIENT_SCRIPTS = REPO / "tests" / "client"
COMMAND_TIMEOUT_S = 180


@dataclass(frozen=True)
class CmfClient:
    """Runs the cmflib venv's ``cmf`` and scripts with a private HOME and a git identity."""

    venv: Path
    env: dict[str, str]
    scratch: Path

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run a command; fail the test (showing its output) on a non-zero exit."""
        done = subprocess.run(
            args,
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{_output(done)}"
        return done

    def cmf(self, *args: str, cwd: Path) -> str:
        """``cmf <args>``; returns everything it printed."""
        return _output(self.run([str(self.venv / "bin" / "cmf"), *args], cwd))

    def script(self, name: str, *args: str, cwd: Path) -> Any:
        """A script of tests/client run with the cmflib python; returns its last stdout line
        parsed as JSON. It runs from a copy in ``cwd`` by its bare name, as a user's would, so
        the command the client records (and the UI's screenshots show) names no checkout."""
        shutil.copyfile(CLIENT_SCRIPTS / name, cwd / name)
        done = self.run([str(self.venv / "bin" / "python"), name, *args], cwd)
        lines = done.stdout.strip().splitlines()
        assert lines, f"{name} printed nothing:\n{_output(done)}"
        return json.loads(lines[-1])

    def init(self, folder: Path, server_url: str) -> None:
        """``cmf init local`` in ``folder``: a local DVC remote and a bare git remote."""
        folder.mkdir(parents=True, exist_ok=True)
        output = self.cmf(
            "init",
            "local",
            "--path",
            str(self.scratch / "storage"),
            "--git-remote-url",
            str(self.scratch / "remote.git"),
            "--cmf-server-url",
            server_url,
            cwd=folder,
        )
        assert "SUCCESS: cmf init complete." in output, output

    def init_minio(self, folder: Path, server_url: str, bucket: str, s3: S3Server) -> None:
        """``cmf init minioS3`` in ``folder``: ``bucket`` on the S3 server as the DVC remote."""
        folder.mkdir(parents=True, exist_ok=True)
        output = self.cmf(
            "init",
            "minioS3",
            "--url",
            f"s3://{bucket}",
            "--endpoint-url",
            s3.endpoint_url,
            "--access-key-id",
            s3.access_key_id,
            "--secret-key",
            s3.secret_access_key,
            "--git-remote-url",
            str(self.scratch / "remote.git"),
            "--cmf-server-url",
            server_url,
            cwd=folder,
        )
        assert "SUCCESS: cmf init complete." in output, output

    def summary(self, folder: Path) -> dict[str, Any]:
        """What ``CmfQuery`` sees in ``folder/mlmd``."""
        summary: dict[str, Any] = self.script("query.py", str(folder / "mlmd"), cwd=folder)
        return summary


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"{done.stdout}\n{done.stderr}"


@dataclass(frozen=True)
class Workspace:
    folder: Path
    pipeline: str
    executions: dict[str, str]  # stage -> Execution_uuid


def _client_env(venv: Path, home: Path) -> dict[str, str]:
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "CONFIG_FILE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv),
            "HOME": str(home),
            "GIT_AUTHOR_NAME": "cmf tests",
            "GIT_AUTHOR_EMAIL": "cmf-tests@example.invalid",
            "GIT_COMMITTER_NAME": "cmf tests",
            "GIT_COMMITTER_EMAIL": "cmf-tests@example.invalid",
            "GIT_CONFIG_NOSYSTEM": "1",
            "DVC_NO_ANALYTICS": "1",
        }
    )
    return env


def make_cmf_client(scratch: Path) -> CmfClient:
    """The cmflib venv (installed by scripts/cmflib-venv.sh if missing), a private HOME and a
    bare git remote in ``scratch``."""
    done = subprocess.run(
        [str(REPO / "scripts" / "cmflib-venv.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, f"scripts/cmflib-venv.sh failed:\n{done.stdout}\n{done.stderr}"
    venv = Path(done.stdout.strip().splitlines()[-1])
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    client = CmfClient(venv, _client_env(venv, home), scratch)
    client.run(["git", "init", "--quiet", "--bare", str(scratch / "remote.git")], cwd=scratch)
    return client
