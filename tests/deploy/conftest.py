"""What the deployment tests share: the repository's files, the Makefile's pins, the kustomize
build (``make kustomize``, a Go module build cached outside the checkout) and the rendered
overlays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")


def makefile_variable(name: str) -> str:
    """A ``NAME := value`` of the Makefile."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        key, sep, value = line.partition(":=")
        if sep and key.strip() == name:
            return value.strip()
    raise AssertionError(f"the Makefile sets no {name}")


def makefile_uv() -> Path:
    """The Makefile's uv (``CACHE/uv-<version>``), beside this venv (``CACHE/venv-...``)."""
    uv = Path(sys.executable).parents[2] / f"uv-{makefile_variable('UV_VERSION')}" / "bin" / "uv"
    assert uv.is_file(), f"{uv}: run make install"
    return uv


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


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
