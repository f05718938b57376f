"""Benchmarks run by `make bench` (python -m tests.perf.run); pytest collects none of them."""
