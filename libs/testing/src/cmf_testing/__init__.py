"""Test support of CMF Server, for the tests and the benchmarks alike (a workspace package, so
it imports the same way from every test folder, ``bench/`` and mypy).

- ``cmf_testing.fixtures``: the bodies captured between the real ``cmf`` client and the
  reference server (``data/cmf/``).
- ``cmf_testing.generator``: client-shaped push payloads of any size.
- ``cmf_testing.waiting``: ``eventually`` (sync and async), the deadline every test waits with.
- ``cmf_testing.problems``: ``assert_problem``, the problem+json shape of our own routes.
- ``cmf_testing.databases``: throwaway databases on the shared test PostgreSQL, and
  ``run_blocking`` (a coroutine run to its end from sync or async code alike).
"""
