"""The README's install: ``uv tool install ./server`` puts a working ``cmf-server`` on PATH,
built from the workspace's own packages (a scratch tool dir: nothing of the user's changes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deploy_paths import ROOT, makefile_uv

# What `cmf-server` installs from this checkout (never from an index).
WORKSPACE_PACKAGES = ("cmf-common", "cmf-metadata", "cmf-lineage", "cmf-artifacts", "cmf-gateway")


def test_uv_tool_install_puts_cmf_server_on_path(tmp_path: Path) -> None:
    uv = makefile_uv()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        "UV_PYTHON": "python3.11",
    }
    readme = (ROOT / "README.md").read_text()
    assert "uv tool install ./server" in readme
    # uv reuses a package it built from a folder until that folder's pyproject.toml changes, so
    # on a machine that installed an older checkout it would install the older code; the README
    # says to refresh our packages after an update, and so does the test.
    refresh = [f"--refresh-package={p}" for p in WORKSPACE_PACKAGES]
    done = subprocess.run(
        [str(uv), "tool", "install", "./server", *refresh],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Our packages come from this checkout, never from an index.
    for package in WORKSPACE_PACKAGES:
        assert f"+ {package}==0.1.0 (from file://" in done.stderr, package
    helped = subprocess.run(
        [str(tmp_path / "bin" / "cmf-server"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "up" in helped.stdout and "serve" in helped.stdout
