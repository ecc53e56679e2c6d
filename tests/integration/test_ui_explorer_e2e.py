"""The lineage explorer end to end: real headless Chromium against ``cmf-server up`` loaded by the
real ``cmf`` client (the same two pipelines as the pages' suite, test_ui_e2e.py, whose fixtures
this module shares: its own server, module-scoped).

The scenarios are services/ui/e2e/explorer.mjs (docs/ui-explorer.md): levels, a node's details,
expanding upstream, filters, search, the path between two nodes, collapsing a stage, a cap that
says what it hides, the canvas past the SVG limit, and the PNG, SVG and JSON exports. Their
screenshots go to services/ui/test-output/ (git-ignored).
"""

from __future__ import annotations

import json
import os

import pytest
from test_ui_e2e import OUT, UI, Loaded, _run, loaded, ui_built

pytestmark = pytest.mark.client

__all__ = ["loaded", "ui_built"]  # the shared fixtures, instantiated for this module
EXPLORER_TIMEOUT_S = 180


def test_explorer_in_chromium(loaded: Loaded) -> None:
    OUT.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CMF_UI_SCENARIOS": "./explorer.mjs",
        "CMF_UI_BASE_URL": loaded.base_url,
        "CMF_UI_FIXTURE": json.dumps(loaded.fixture),
        "CMF_UI_OUT": str(OUT),
    }
    output = _run(["node", "e2e/run.mjs"], UI, EXPLORER_TIMEOUT_S, env=env)
    print(output)
    assert " 0 failed" in output, output
