"""Test support: harnesses and model zoo shared by the test suite and the benchmarks."""
