"""Benchmarks: never part of the test run. ``python -m bench [names...]`` runs them."""
