"""The benchmarks, one module each (``python -m bench.<name>``). ``make bench`` runs every one
that rewrites its section of ``bench/RESULTS.md`` (the Makefile's ``BENCHES``): ``run``
(push/pull), ``listings``, ``api_v1``, ``upstream_v1``, ``lineage_queries``, ``cmfquery``,
``projection``, ``relay``, ``rebuild``, ``ui``, ``explorer``, ``bigpush``, ``concurrent``,
``first_reads``, ``artifacts``, ``tokens`` and ``gateway``. ``phases`` and ``projection_phases``
break a figure down and write nothing; ``seed``, ``stack``, ``browser``, ``streaming`` and
``results`` are shared parts. The payloads come from ``cmf_testing.generator``."""
