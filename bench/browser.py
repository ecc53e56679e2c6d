"""What the benchmarks in headless Chromium (bench.ui, bench.explorer) share: the UI's bundle,
built as ``make test`` builds it, and a Node script of ``bench/`` run with its settings in the
environment, whose last line of output is its figures as JSON. The script launches Chromium as
``services/ui/e2e/chromium.mjs`` says (the UI's end-to-end tests launch it the same way)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
UI = REPO / "services" / "ui"
DIST = UI / "dist"


def progress(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", file=sys.stderr, flush=True)


def build_ui() -> None:
    """Build the bundle when it is missing or stale (scripts/ui.sh; Node is required here)."""
    subprocess.run([str(REPO / "scripts" / "ui.sh"), "build", "--required"], check=True)


def browser_figures(script: str, settings: dict[str, str], *, timeout: float) -> dict[str, Any]:
    """Run ``bench/<script>`` with ``settings`` added to the environment; its figures. Its
    standard error (progress, the page's errors) passes through."""
    done = subprocess.run(
        ["node", str(REPO / "bench" / script)],
        env={**os.environ, **settings},
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stdout[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures
