"""The web UI end to end: real headless Chromium (Debian's ``/usr/bin/chromium``, driven by
``playwright-core`` from services/ui) against ``cmf-server up`` loaded by the real ``cmf`` client.

The scenarios are services/ui/e2e/scenarios.mjs (docs/ui.md); their screenshots go to
services/ui/test-output/ (git-ignored). Nothing here skips: without Node, the bundle or Chromium
the test fails and says what is missing (``make test`` installs them: scripts/ui.sh).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cmf_client import CmfClient, make_cmf_client
from support import free_port, run_checked, start_server

pytestmark = pytest.mark.client

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "services" / "ui"
OUT = UI / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
E2E_TIMEOUT_S = 240
SWEEP_RUNS = 30


def _run(args: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    done = run_checked(args, cwd=cwd, timeout=timeout, env=env)
    return f"{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def ui_built() -> None:
    """The bundle (built now when stale), Chromium and playwright-core are there."""
    assert shutil.which("node"), "Node.js is missing: the UI tests need it (scripts/ui.sh)"
    _run([str(REPO / "scripts" / "ui.sh"), "build", "--required"], REPO, 600)
    assert CHROMIUM.exists(), "Debian's chromium is missing: scripts/ui.sh browser installs it"
    assert (UI / "node_modules" / "playwright-core").is_dir(), "playwright-core is not installed"


@dataclass(frozen=True)
class Loaded:
    base_url: str
    fixture: dict[str, object]


@pytest.fixture(scope="module")
def loaded(ui_built: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """``cmf-server up`` with two pipelines pushed by the real client, the sweep last. The
    client logs them while the server starts (logging needs no server), then pushes."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(start_server, tmp_path_factory.mktemp("ui-server"), port)
        try:
            client: CmfClient = make_cmf_client(tmp_path_factory.mktemp("ui-client"))
            folder = client.scratch / "workspace"
            client.init(folder, base_url)
            demo = client.script("pipeline.py", "--pipeline", "Client-Test", cwd=folder)
            runs = str(SWEEP_RUNS)
            client.script("sweep.py", "--pipeline", "Sweep", "--runs", runs, cwd=folder)
        finally:
            server = starting.result()
    with server:
        for name in ("Client-Test", "Sweep"):
            output = client.cmf("metadata", "push", "-p", name, cwd=folder)
            assert "successfully pushed" in output, output
        cards = httpx.get(f"{base_url}/api/native/v1/views/pipelines", timeout=10).json()
        yield Loaded(
            base_url,
            {
                "newest_first": [c["name"] for c in cards["items"]],
                "demo": demo,
                "sweep": {"pipeline": "Sweep", "stage": "Sweep/Train", "runs": SWEEP_RUNS},
            },
        )


def test_ui_in_chromium(loaded: Loaded) -> None:
    assert loaded.fixture["newest_first"] == ["Sweep", "Client-Test"]
    OUT.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CMF_UI_BASE_URL": loaded.base_url,
        "CMF_UI_FIXTURE": json.dumps(loaded.fixture),
        "CMF_UI_OUT": str(OUT),
    }
    output = _run(["node", "e2e/run.mjs"], UI, E2E_TIMEOUT_S, env=env)
    print(output)
    assert " 0 failed" in output, output


def test_ui_unit_tests(ui_built: None) -> None:
    """The data-shaping helpers' Vitest suite."""
    output = _run(["npx", "--no-install", "vitest", "run", "--reporter=dot"], UI, 180)
    assert " passed" in output, output
