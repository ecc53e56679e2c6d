"""The benchmarks, one module each (``python -m bench.<name>``; ``make bench`` runs them all):
``run`` (push/pull), ``listings``, ``api_v1``, ``upstream_v1``, ``lineage_queries``,
``projection``, ``relay`` and ``rebuild``; each rewrites its section of ``bench/RESULTS.md``.
``phases`` and ``projection_phases`` break a figure down; ``seed``, ``stack`` and ``results``
are shared parts. The payloads come from ``cmf_testing.generator``."""
