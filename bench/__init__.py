"""Benchmarks of the CMF push/pull routes: ``python -m bench.run`` (see ``bench/RESULTS.md``)."""
