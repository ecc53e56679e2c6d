"""How ``make test`` splits the suite between pytest-xdist's workers (a pytest plugin, loaded by
the root conftest).

Every test module is one unit of work, so its module-scoped fixtures (a whole stack, a server)
are set up once, on one worker. The tests that use the shared Neo4j (``cmf_testing.neo4j``) are
together one unit, whatever their module: one worker runs them, one after another, since they
empty its one graph.

Only the workers collect, and only they see the markers; the controller, which schedules, sees
node ids. So each worker writes the ids of the Neo4j tests it collected to a file the controller
named in its input (all workers collect the same tests), and the scheduler reads it when it
first groups the ids. (xdist's own ``loadgroup`` renames node ids to carry the group, which
pytest 9.2's node ids no longer allow.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from cmf_testing import neo4j as shared_neo4j

NEO4J_GROUP = "shared-neo4j"
# Where the workers write the Neo4j tests' ids: its key in a worker's input, and the path as
# the controller keeps it.
_GROUPS_FILE = "cmf_neo4j_tests_file"
_groups_key = pytest.StashKey[Path]()


def uses_shared_neo4j(item: pytest.Item) -> bool:
    """The test carries the ``neo4j`` marker or runs with a ``"neo4j"`` parameter (as the
    lineage store contract's ``graph`` fixture has)."""
    if item.get_closest_marker("neo4j") is not None:
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(
        isinstance(value, str) and value == "neo4j" for value in callspec.params.values()
    )


class SharedNeo4jScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's scheduling by scope, with a module as the scope and the Neo4j tests as one."""

    def __init__(self, config: pytest.Config, log: Any, groups_file: Path) -> None:
        super().__init__(config, log)
        self._groups_file = groups_file
        self._neo4j_tests: set[str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._neo4j_tests is None:
            # Read once all workers have collected: xdist groups only after every collection.
            self._neo4j_tests = set(self._groups_file.read_text().splitlines())
        if nodeid in self._neo4j_tests:
            return NEO4J_GROUP
        return nodeid.split("::", 1)[0]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl
def pytest_configure(config: pytest.Config) -> None:
    if not _is_worker(config) and config.getoption("numprocesses", None):
        folder = Path(tempfile.mkdtemp(prefix="cmf-suite-split-"))
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        config.stash[_groups_key] = folder / "neo4j-tests.txt"


@pytest.hookimpl
def pytest_configure_node(node: Any) -> None:
    node.workerinput[_GROUPS_FILE] = str(node.config.stash[_groups_key])


@pytest.hookimpl
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SharedNeo4jScheduling:
    return SharedNeo4jScheduling(config, log, config.stash[_groups_key])


@pytest.hookimpl
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _is_worker(config):
        return
    target = Path(config.workerinput[_GROUPS_FILE])  # type: ignore[attr-defined]
    ids = "\n".join(item.nodeid for item in items if uses_shared_neo4j(item))
    # Written whole, then renamed, so the controller never reads half a file.
    partial = target.with_name(f"{target.name}.{os.getpid()}")
    partial.write_text(ids)
    partial.replace(target)


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures, module-scoped ones included
def pytest_runtest_setup(item: pytest.Item) -> None:
    shared_neo4j.admit(item.nodeid if uses_shared_neo4j(item) else None)
