"""Benchmarks: the harness (``bench.harness``) and the pytest-benchmark files that use it."""
