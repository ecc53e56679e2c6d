"""The web UI's token prompt in real headless Chromium (services/ui/e2e/auth.mjs) against
``cmf-server up`` with ``AUTH=on``: it asks for a token, refuses a wrong one, keeps a good one
and sends it as ``Authorization: Bearer`` (docs/access.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from support import drop_database, free_port, new_database, start_server
from test_auth_client import create_token
from test_ui_e2e import OUT, UI, _run, ui_built

from cmf_testing.fixtures import cmf_fixture

__all__ = ["ui_built"]  # the fixture, shared with test_ui_e2e
pytestmark = pytest.mark.client

WRONG = "cmf_000000000000_" + "W" * 43


def test_the_ui_asks_for_a_token_and_sends_it(ui_built: None, tmp_path: Path) -> None:
    url = new_database()
    try:
        with start_server(tmp_path, free_port(), {"DATABASE_URL": url, "AUTH": "on"}) as server:
            read = create_token(url, "--name", "ui", "--scope", "read")["token"]
            write = create_token(url, "--name", "loader", "--scope", "write")["token"]
            body = cmf_fixture("push_example.json")
            pushed = httpx.post(
                f"{server.base_url}/api/mlmd_push",
                json=body,
                headers={"Authorization": f"Bearer {write}"},
                timeout=60,
            )
            assert pushed.json() == {"status": "success"}, pushed.text
            OUT.mkdir(exist_ok=True)
            fixture = {"read": read, "wrong": WRONG, "pipeline": body["pipeline_name"]}
            env = {
                **os.environ,
                "CMF_UI_BASE_URL": server.base_url,
                "CMF_UI_FIXTURE": json.dumps(fixture),
                "CMF_UI_OUT": str(OUT),
                "CMF_UI_SCENARIOS": "./auth.mjs",
            }
            output = _run(["node", "e2e/run.mjs"], UI, 120, env=env)
            print(output)
            assert " 1 passed, 0 failed" in output, output
    finally:
        drop_database(url)
