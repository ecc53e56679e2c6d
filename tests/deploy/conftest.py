"""The deployment tests' fixtures: the kustomize build (``make kustomize``, a Go module build cached
outside the checkout) and the rendered overlays; their paths and helpers are in
``deploy_paths``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_paths import DEPLOY, OVERLAYS, ROOT


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The kustomize binary, built from its Go module on first use (``make kustomize``)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "kustomize"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"make kustomize failed:\n{done.stdout}\n{done.stderr}"
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered: its objects, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        done = subprocess.run(
            [str(kustomize), "build", str(DEPLOY / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"kustomize build overlays/{overlay}:\n{done.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return out
