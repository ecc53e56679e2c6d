"""The shared test Neo4j (``make services-up``): where it is, and which tests may use it.

Neo4j Community has one graph, and the tests that use it empty it, so they must run one at a
time while the rest of the suite runs in parallel (``make test`` runs pytest-xdist). Such a test
carries the ``neo4j`` marker (or a ``"neo4j"`` parameter), which ``cmf_testing.suite_split``
makes one unit of work, run by one worker in order. Every way to the shared Neo4j goes through
:func:`claim`, which refuses a test without the marker: a forgotten marker fails at once with
the fix in its message, instead of flaking now and then beside another Neo4j test.
"""

from __future__ import annotations

import os

NEO4J_URI = os.environ.get("CMF_TEST_NEO4J_URI", "bolt://127.0.0.1:7687")
NEO4J_USER = os.environ.get("CMF_TEST_NEO4J_USER", "neo4j")
NEO4J_PASSWORD = os.environ.get("CMF_TEST_NEO4J_PASSWORD", "cmf")
NEO4J_AUTH = (NEO4J_USER, NEO4J_PASSWORD)

# The test being run in this process, when it may use the shared Neo4j (set by
# cmf_testing.suite_split before each test's fixtures are set up).
_admitted: str | None = None


class Neo4jNotClaimed(AssertionError):
    """A test without the ``neo4j`` marker reached for the shared Neo4j."""


def admit(test_id: str | None) -> None:
    """The test about to run may use the shared Neo4j (``test_id``), or may not (None)."""
    global _admitted
    _admitted = test_id


def claim() -> str:
    """The shared Neo4j's URI, for a test that carries the ``neo4j`` marker."""
    if _admitted is None:
        raise Neo4jNotClaimed(
            "this test uses the shared Neo4j but is not marked for it: add"
            " `pytestmark = pytest.mark.neo4j` to its module (or the marker to the test), so it"
            " runs on the one xdist worker that runs the Neo4j tests, never beside another one"
        )
    return NEO4J_URI


def neo4j_env() -> dict[str, str]:
    """The shared Neo4j as a server process's environment (NEO4J_URI, _USER, _PASSWORD)."""
    return {"NEO4J_URI": claim(), "NEO4J_USER": NEO4J_USER, "NEO4J_PASSWORD": NEO4J_PASSWORD}
