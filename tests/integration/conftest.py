"""Fixtures for tests that run the real stack; the helpers behind them are in ``support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port, start_server


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator[str]:
    """A fresh server on its own embedded PostgreSQL; yields its base URL."""
    with start_server(tmp_path, free_port()) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One fresh server shared by every test of a module; yields its base URL."""
    with start_server(tmp_path_factory.mktemp("server"), free_port()) as server:
        yield server.base_url
