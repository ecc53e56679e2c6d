"""The deployment tests' shared paths and helpers (not in conftest.py: every test folder's
conftest is a module named ``conftest``, so importing from one finds another's when the whole
suite runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
